package worker

import (
	"os"
	"os/exec"
	"syscall"
	"unsafe"
)

// probeEnv makes this test binary, started as a child, only try SCHED_IDLE
// and exit 0 if it was allowed.
const probeEnv = "MEDIAGUARD_TEST_PROBE_SCHED_IDLE"

func init() {
	if os.Getenv(probeEnv) != "1" {
		return
	}
	var param struct{ priority int32 }
	if _, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, 0, schedIdle, uintptr(unsafe.Pointer(&param))); e != 0 {
		os.Exit(3)
	}
	os.Exit(0)
}

// probeSchedIdle reports whether a process may enter SCHED_IDLE here. It
// asks a child: a thread of this process, once idle, could not be
// brought back.
func probeSchedIdle() bool {
	cmd := exec.Command("/proc/self/exe")
	cmd.Env = []string{probeEnv + "=1"}
	return cmd.Run() == nil
}
