// Command mgdemo is `make demo`: mediaguard in front of a real Matrix
// homeserver on this machine, to try in a minute. It starts Dendrite
// (installed by scripts/install-dendrite.sh) on a free loopback port and
// registers four accounts: mediaguard's bot, which posts the notices; a
// moderator, who owns the management room the bot is invited to (Mjolnir's
// room in a real deployment); and two users, alice and bob. It then runs
// bin/caddy (make build) with mediaguard and the demo bank
// (examples/demo.bank, which lists examples/demo-listed.png) in front of
// the homeserver, and the lookup API beside it. It prints the addresses,
// the accounts and curl lines to paste into another terminal, then follows
// the management room and prints each message as it arrives, until
// Ctrl-C.
//
// Everything lives in one temporary directory: Dendrite's data and log,
// the Caddyfile, Caddy's log and state, the audit log and the copy of the
// bank Caddy reads (edit it: changes are live within 2 s). Ctrl-C (or
// SIGTERM) stops Caddy and Dendrite and removes the directory; a second
// Ctrl-C exits at once.
//
// -check runs the scenario itself instead of waiting: it runs the printed
// curl lines (through sh and curl where both exist, else the same requests
// through Go's HTTP client) and requires the listed picture refused with
// 403 M_FORBIDDEN, the clean picture stored and served back unchanged, the
// lookup API blocking the listed hash, and the notice naming alice in the
// management room. Then everything stops and is removed; the exit status
// says whether all of it held. `make test` runs it (TestCheck).
//
//	go run ./cmd/mgdemo [-caddy bin/caddy] [-bank examples/demo.bank] [-listed examples/demo-listed.png] [-check]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
)

func main() {
	var o options
	flag.StringVar(&o.Caddy, "caddy", "bin/caddy", "Caddy binary built with mediaguard (make build)")
	flag.StringVar(&o.Bank, "bank", "examples/demo.bank", "hash bank mediaguard matches against (copied into the temporary directory)")
	flag.StringVar(&o.Listed, "listed", "examples/demo-listed.png", "a picture the bank lists: the one the curl lines upload to see a refusal")
	flag.BoolVar(&o.Check, "check", false, "run the scenario, report, stop and clean up (exit status 0 when everything held) instead of waiting for Ctrl-C")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "mgdemo: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	out := &syncWriter{w: os.Stdout}
	o.Out, o.Log = out, out

	ctx, stop := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	var dir atomic.Pointer[string] // the temporary directory, once it exists
	o.OnDir = func(d string) { dir.Store(&d) }
	go func() {
		<-sigs
		fmt.Fprintln(out, "\nmgdemo: stopping Caddy and Dendrite and removing the temporary directory (Ctrl-C again to exit at once)")
		stop()
		<-sigs
		// Dendrite and Caddy die with this process (parent-death signal);
		// files they are still writing may outlive the removal.
		if d := dir.Load(); d != nil {
			os.RemoveAll(*d)
			fmt.Fprintf(out, "mgdemo: exiting at once; removed what could be removed of %s\n", *d)
		}
		os.Exit(130)
	}()

	_, err := run(ctx, o)
	switch {
	case err == nil:
	case errors.Is(err, context.Canceled):
		// Ctrl-C is how the interactive demo ends; a check cut short has not passed.
		if o.Check {
			fmt.Fprintln(out, "mgdemo: check interrupted")
			os.Exit(130)
		}
	default:
		fmt.Fprintf(out, "mgdemo: %v\n", err)
		os.Exit(1)
	}
}
