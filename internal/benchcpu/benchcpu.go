// Package benchcpu reports a benchmark's CPU time beside its wall time.
// On a shared machine (two cores, other builds running) wall time
// measures the neighbours too; the CPU time of the benchmark's own
// thread measures the work.
package benchcpu

import (
	"runtime"
	"testing"
)

// Loop runs f for b.Loop on one locked OS thread and reports that
// thread's CPU time per op as "cpu-ns/op" (nothing where the platform
// cannot tell). f should do its work on the calling goroutine.
func Loop(b *testing.B, f func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	start := Thread()
	n := 0
	for b.Loop() {
		f()
		n++
	}
	if c := Thread() - start; c > 0 && n > 0 {
		b.ReportMetric(float64(c.Nanoseconds())/float64(n), "cpu-ns/op")
	}
}
