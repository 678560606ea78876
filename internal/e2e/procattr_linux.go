package e2e

import (
	"os/exec"
	"syscall"
)

// setParentDeathSignal has the kernel kill Dendrite if the test binary dies
// without running its cleanups (a panic, or go test's -timeout), so no
// homeserver is left behind holding a port and CPU.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
