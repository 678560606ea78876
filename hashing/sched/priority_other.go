//go:build !linux

package sched

// lowerThreadPriority is a no-op where nice is not per thread.
func lowerThreadPriority() {}
