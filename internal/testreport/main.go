// Command testreport runs `go test -json` with the arguments it is given
// and prints what `go test` would (one line per package, the output of
// whatever failed), then one line per package that skipped tests, with
// the reason each gave. `go test` shows nothing of the skips of a package
// that passed, so a missing homeserver or tool would otherwise go unseen.
//
//	go run ./internal/testreport -tags nodynamic -race ./...
//
// Its exit status is go test's.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"
)

// event is one line of `go test -json` (cmd/test2json's TestEvent,
// https://pkg.go.dev/cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

func main() {
	args := append([]string{"test", "-json"}, os.Args[1:]...)
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	r := newReport(os.Stdout)
	r.read(out)
	werr := cmd.Wait()
	r.summary()
	if werr != nil {
		if ee, ok := werr.(*exec.ExitError); ok {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "testreport:", werr)
		os.Exit(2)
	}
}

type key struct{ pkg, test string }

type report struct {
	w io.Writer
	// output holds each running test's (and package's) lines until it
	// ends: printed only if it failed.
	output map[key][]string
	// skips are the skipped tests per package, with their reason.
	skips map[string][]string
	start time.Time
}

func newReport(w io.Writer) *report {
	return &report{w: w, output: map[key][]string{}, skips: map[string][]string{}, start: time.Now()}
}

func (r *report) read(in io.Reader) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Action == "" {
			fmt.Fprintln(r.w, sc.Text()) // not an event: pass it on
			continue
		}
		r.event(e)
	}
}

func (r *report) event(e event) {
	k := key{e.Package, e.Test}
	switch e.Action {
	case "output", "build-output":
		r.output[k] = append(r.output[k], e.Output)
	case "fail", "build-fail":
		for _, l := range r.output[k] {
			fmt.Fprint(r.w, l)
		}
		delete(r.output, k)
	case "skip":
		if e.Test != "" {
			r.skips[e.Package] = append(r.skips[e.Package], e.Test+": "+skipReason(r.output[k]))
		}
		delete(r.output, k)
	case "pass":
		if e.Test == "" {
			// The package line ("ok  pkg 1.2s") is its last output.
			if lines := r.output[k]; len(lines) > 0 {
				fmt.Fprint(r.w, lines[len(lines)-1])
			}
		}
		delete(r.output, k)
	}
}

// skipReason is the message a test gave t.Skip: its output line that is
// not the "--- SKIP" header.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		// "file_test.go:12: message": keep the message.
		if i := strings.Index(t, ".go:"); i > 0 {
			if j := strings.Index(t[i+4:], ": "); j >= 0 {
				t = t[i+4+j+2:]
			}
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "no reason given"
	}
	return strings.Join(msg, " ")
}

// summary prints one line per package that skipped tests.
func (r *report) summary() {
	if len(r.skips) == 0 {
		fmt.Fprintf(r.w, "testreport: no test skipped (%s)\n", time.Since(r.start).Round(time.Second))
		return
	}
	pkgs := make([]string, 0, len(r.skips))
	n := 0
	for p, s := range r.skips {
		pkgs = append(pkgs, p)
		n += len(s)
	}
	sort.Strings(pkgs)
	fmt.Fprintf(r.w, "testreport: %d test(s) SKIPPED in %d package(s):\n", n, len(pkgs))
	for _, p := range pkgs {
		s := r.skips[p]
		fmt.Fprintf(r.w, "  SKIPPED %s: %d test(s), first: %s\n", strings.TrimPrefix(p, "github.com/mediaguard/mediaguard/"), len(s), clip(s[0], 200))
	}
}

func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
