package worker

import (
	"runtime"
	"syscall"
	"unsafe"
)

// probeSchedIdle reports whether a thread of this process may enter
// SCHED_IDLE, trying it on a thread that then ends with its goroutine (a
// goroutine that exits locked takes its thread with it).
func probeSchedIdle() bool {
	ok := make(chan bool)
	go func() {
		runtime.LockOSThread()
		var param struct{ priority int32 }
		_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(syscall.Gettid()), schedIdle, uintptr(unsafe.Pointer(&param)))
		ok <- e == 0
	}()
	return <-ok
}
