package benchcpu

import (
	"syscall"
	"time"
)

// Thread is the calling OS thread's user and system CPU time.
func Thread() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
