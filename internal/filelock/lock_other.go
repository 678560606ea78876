//go:build !unix

package filelock

import "sync"

// held are the lock files held in this process. Without flock, two
// processes are not kept apart here.
var held sync.Map

// TryLock takes the lock of lockFile within this process, or answers
// ErrBusy.
func TryLock(lockFile string) (unlock func(), err error) {
	if _, busy := held.LoadOrStore(lockFile, true); busy {
		return nil, ErrBusy
	}
	return func() { held.Delete(lockFile) }, nil
}
