//go:build !linux

package e2e

import "os/exec"

// SetParentDeathSignal is Linux-only; elsewhere an aborted run may leave
// the process it started running until it is killed by hand.
func SetParentDeathSignal(cmd *exec.Cmd) {}
