//go:build !linux

package e2e

import "os/exec"

// setParentDeathSignal is Linux-only; elsewhere an aborted test run may leave
// Dendrite running until it is killed by hand.
func setParentDeathSignal(cmd *exec.Cmd) {}
