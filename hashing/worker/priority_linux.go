package worker

import (
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"unsafe"
)

// schedIdle is Linux's SCHED_IDLE policy.
const schedIdle = 5

// lowerPriority puts every thread of the worker in SCHED_IDLE: it runs
// only on CPU time nothing else at normal priority wants, so proxying and
// the homeserver on the same machine never wait for decoding. Threads the
// runtime starts later are cloned from these and inherit the policy. Where
// SCHED_IDLE is refused, nice 19 is the next best.
func lowerPriority() {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		var param struct{ priority int32 }
		if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), schedIdle, uintptr(unsafe.Pointer(&param))); e != 0 {
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, 19)
		}
	}
}

// executable is the binary a worker runs: this one, even if its file has
// since been replaced or removed (an upgrade in place).
func executable() (string, error) { return "/proc/self/exe", nil }

// configure makes the kernel kill the worker if the proxy dies without
// closing its pipe.
func configure(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
