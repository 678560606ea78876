package e2e

import (
	"os/exec"
	"syscall"
)

// SetParentDeathSignal has the kernel kill cmd's process if the process
// that started it dies without stopping it (a test binary's panic or go
// test's -timeout, a command killed with SIGKILL), so no homeserver or
// Caddy is left behind holding a port and CPU. Call it before cmd.Start.
func SetParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
