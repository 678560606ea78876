//go:build !linux

package worker

import (
	"os"
	"os/exec"
)

// lowerPriority is a no-op where a process cannot lower only itself
// portably.
func lowerPriority() {}

func executable() (string, error) { return os.Executable() }

func configure(*exec.Cmd) {}
