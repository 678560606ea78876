//go:build !linux

package mediaproxy

// lowerThreadPriority is a no-op where nice is not per thread.
func lowerThreadPriority() {}
