package main

import (
	"fmt"
	"io"
	"os"
	"sync"
)

// runner lets the e2e harness, written for tests, run inside a command: it
// is the harness's e2e.T. A Fatal or a Skip (a test skips when Dendrite is
// not installed; a demo cannot do without it) panics with an abort, which
// run recovers into its error; cleanups run last-registered first when
// the demo ends, then the directory goes. Only the goroutine running the
// demo may call Fatal or Skip: a panic elsewhere would not be recovered.
type runner struct {
	dir string    // the one temporary directory everything lives in
	log io.Writer // Logf's lines: progress and diagnostics

	mu       sync.Mutex
	cleanups []func()
	failed   bool
}

// abort is the panic value of runner's Fatal and Skip.
type abort struct{ msg string }

func (a abort) Error() string { return a.msg }

// Helper does nothing: there is no test output to attribute lines in.
func (r *runner) Helper() {}

// Logf prints a progress line of the harness, indented under the step.
func (r *runner) Logf(format string, args ...any) {
	fmt.Fprintf(r.log, "    "+format+"\n", args...)
}

// Fatal aborts the demo with msg.
func (r *runner) Fatal(args ...any) { r.fail(fmt.Sprint(args...)) }

// Fatalf aborts the demo with a formatted message.
func (r *runner) Fatalf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }

// Skip aborts the demo: what a test may skip for, the demo needs.
func (r *runner) Skip(args ...any) { r.fail(fmt.Sprint(args...)) }

// Skipf aborts the demo with a formatted message.
func (r *runner) Skipf(format string, args ...any) { r.fail(fmt.Sprintf(format, args...)) }

func (r *runner) fail(msg string) {
	r.mu.Lock()
	r.failed = true
	r.mu.Unlock()
	panic(abort{msg})
}

// Failed reports whether the demo has aborted (the harness then shows the
// tail of Dendrite's log while stopping it).
func (r *runner) Failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failed
}

// Cleanup registers f to run when the demo ends.
func (r *runner) Cleanup(f func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cleanups = append(r.cleanups, f)
}

// TempDir makes a new directory inside the demo's. Only StartDendrite
// asks for one, for the homeserver's data, hence the name.
func (r *runner) TempDir() string {
	d, err := os.MkdirTemp(r.dir, "dendrite-")
	if err != nil {
		r.Fatalf("%v", err)
	}
	return d
}

// close runs the cleanups, last registered first, then removes the
// directory. A cleanup that panics (a harness Fatalf while stopping) is
// reported and the rest still run, so nothing is left running.
func (r *runner) close() error {
	r.mu.Lock()
	fs := r.cleanups
	r.cleanups = nil
	r.mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		func() {
			defer func() {
				if p := recover(); p != nil {
					fmt.Fprintf(r.log, "    stopping: %v\n", p)
				}
			}()
			fs[i]()
		}()
	}
	return os.RemoveAll(r.dir)
}

// syncWriter serialises writes: the transcript arrives on its own
// goroutine while the check prints its steps.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
