//go:build !linux

package worker

func probeSchedIdle() bool { return false }
