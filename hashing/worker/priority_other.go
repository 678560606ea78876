//go:build !linux

package worker

import (
	"os"
	"os/exec"
	"time"
)

// lowerPriority is a no-op where a process cannot lower only itself
// portably.
func lowerPriority() {}

func executable() (string, error) { return os.Executable() }

func configure(*exec.Cmd) {}

// cpuTime is not read here: jobs are bounded by wall time.
func cpuTime(int) (time.Duration, bool) { return 0, false }
