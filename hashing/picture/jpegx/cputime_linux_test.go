package jpegx

import "syscall"

// threadCPU is this OS thread's user+system CPU time in ns: benchmarks on
// a shared machine report it next to wall time, which other load skews.
func threadCPU() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
