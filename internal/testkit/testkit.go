// Package testkit holds the small helpers mediaguard's tests and bench
// commands share: polling for a condition instead of sleeping, and finding
// a free loopback port. It is for tests and test tools only; nothing in the
// shipped module imports it.
package testkit

import (
	"net"
	"testing"
	"time"
)

// DefaultWithin is how long Eventually waits.
const DefaultWithin = 5 * time.Second

// Eventually polls cond until it holds, failing tb if it has not within
// DefaultWithin. Tests use it instead of fixed sleeps, so they are fast when
// things work and still bounded when they do not.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	EventuallyWithin(tb, DefaultWithin, what, cond)
}

// EventuallyWithin polls cond until it holds, failing tb if it has not
// within d; it returns how long cond took to hold. It checks at once, then
// every 1 ms at first, backing off to every 10 ms.
func EventuallyWithin(tb testing.TB, d time.Duration, what string, cond func() bool) time.Duration {
	tb.Helper()
	start := time.Now()
	wait := time.Millisecond
	for !cond() {
		if time.Since(start) >= d {
			tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(wait)
		wait = min(2*wait, 10*time.Millisecond)
	}
	return time.Since(start)
}

// Port returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0 and closes the listener. Another process can take the
// port before the caller binds it; callers that can retry should.
func Port() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// FreePort is Port for a test: it fails tb if no port can be had.
func FreePort(tb testing.TB) int {
	tb.Helper()
	p, err := Port()
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	return p
}
