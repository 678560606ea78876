// Package testkit holds the small helpers mediaguard's tests and bench
// commands share: polling for a condition instead of sleeping, finding a
// free loopback port, and recording what a zap logger logs. It is for tests and test tools only; nothing in the
// shipped module imports it.
package testkit

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
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

// ObserveLogs returns a logger that records every entry at Info and above,
// and the record, for tests that assert on what was logged.
func ObserveLogs() (*zap.Logger, *observer.ObservedLogs) {
	core, logs := observer.New(zap.InfoLevel)
	return zap.New(core), logs
}

// LogLines renders each recorded entry as one line, its level, message and
// fields in the order logged: "WARN bank reload failed bank HOT error …".
func LogLines(logs *observer.ObservedLogs) []string {
	entries := logs.All()
	lines := make([]string, 0, len(entries))
	for _, e := range entries {
		var b strings.Builder
		b.WriteString(e.Level.CapitalString())
		b.WriteString(" ")
		b.WriteString(e.Message)
		for _, f := range e.Context {
			enc := zapcore.NewMapObjectEncoder()
			f.AddTo(enc)
			fmt.Fprintf(&b, " %s %v", f.Key, enc.Fields[f.Key])
		}
		lines = append(lines, b.String())
	}
	return lines
}

// LogText is LogLines joined by newlines.
func LogText(logs *observer.ObservedLogs) string {
	return strings.Join(LogLines(logs), "\n")
}

// LogCount returns how many recorded lines contain s.
func LogCount(logs *observer.ObservedLogs, s string) int {
	n := 0
	for _, line := range LogLines(logs) {
		if strings.Contains(line, s) {
			n++
		}
	}
	return n
}
