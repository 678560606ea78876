//go:build linux

package icc

import (
	"syscall"
	"time"
)

// threadCPU is the calling thread's CPU time: on a shared machine it
// measures the work, where wall time measures the neighbours too.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
