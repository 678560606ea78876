package sched

import "syscall"

// lowerThreadPriority makes the calling OS thread nice 10. On Linux nice
// is per thread, so only the hashing thread yields: proxying, and the
// homeserver on the same machine, keep the CPU when both want it.
func lowerThreadPriority() {
	_ = syscall.Setpriority(syscall.PRIO_PROCESS, syscall.Gettid(), Nice)
}
