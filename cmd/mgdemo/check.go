package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
)

// noticeTimeout bounds the wait for the notice of the refused upload: it
// is posted off the request path, with retries, usually within a second.
const noticeTimeout = 20 * time.Second

// check runs the banner's lines in order and requires each to show what
// its comment promises, the management room's notice of the refused
// upload included. It returns the first failure.
func (w *world) check(ctx context.Context, events <-chan event) error {
	fmt.Fprintf(w.o.Out, "\n=== Check: running the lines above; the management room's messages show as they arrive\n")
	vars := map[string]string{}
	for _, kv := range w.shellVars() {
		vars[kv[0]] = kv[1]
	}
	runner := "sh and curl"
	_, errSh := exec.LookPath("sh")
	_, errCurl := exec.LookPath("curl")
	if errSh != nil || errCurl != nil {
		runner = "Go's HTTP client (no sh or curl here)"
	}
	fmt.Fprintf(w.o.Out, "(running them with %s)\n", runner)

	for _, c := range w.calls() {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(w.o.Out, "\n$ %s\n", c.render())
		run := c.runShell
		if errSh != nil || errCurl != nil {
			run = c.runGo
		}
		res, err := run(ctx, vars)
		for line := range strings.SplitSeq(strings.TrimRight(res.output, "\n"), "\n") {
			fmt.Fprintf(w.o.Out, "  %s\n", line)
		}
		step, _, _ := strings.Cut(c.title, ".") // titles start with their number
		switch {
		case err != nil:
			return fmt.Errorf("step %s: %v", step, err)
		case res.status != c.want:
			return fmt.Errorf("step %s: HTTP %d, want %d", step, res.status, c.want)
		case !strings.Contains(res.output, c.wantBody):
			return fmt.Errorf("step %s: the answer lacks %s", step, c.wantBody)
		case c.capture != "" && vars[c.capture] == "":
			return fmt.Errorf("step %s: no content_uri to keep in %s", step, c.capture)
		}
		if c.notice {
			if err := w.awaitNotice(ctx, events, w.users[0].ID); err != nil {
				return fmt.Errorf("step %s: %v", step, err)
			}
		}
		if c.output != "" {
			got, err1 := os.ReadFile(c.output)
			want, err2 := os.ReadFile(w.cleanPath)
			if err := errors.Join(err1, err2); err != nil || !bytes.Equal(got, want) {
				return fmt.Errorf("step %s: downloaded %d bytes, not the %d uploaded (%v)", step, len(got), len(want), err)
			}
		}
	}

	fmt.Fprintf(w.o.Out, "\nmgdemo: check passed: the listed picture was refused (403 M_FORBIDDEN) and the notice naming %s reached %s; the clean one was stored and served back unchanged; the lookup API blocks the listed hash\n", w.users[0].ID, w.roomAlias)
	return nil
}

// awaitNotice waits for the bot's notice of a blocked upload by user.
// The follower prints it before passing it on, so it shows under the line
// that caused it.
func (w *world) awaitNotice(ctx context.Context, events <-chan event, user string) error {
	timeout := time.After(noticeTimeout)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timeout:
			return fmt.Errorf("no notice naming %s arrived in %s within %v; the last lines of %s:\n%s",
				user, w.roomAlias, noticeTimeout, w.caddyLog, e2e.FileTail(w.caddyLog, 30))
		case ev := <-events:
			d := ev.Detection
			if ev.Sender == w.bot.ID && ev.MsgType == "m.notice" && d["user"] == user && d["direction"] == "upload" {
				return nil
			}
		}
	}
}
