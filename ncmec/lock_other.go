//go:build !unix

package ncmec

import "sync"

// held are the bank paths being synced in this process. Without flock, two
// processes syncing one bank are not kept apart here.
var held sync.Map

func tryLock(path string) (unlock func(), err error) {
	if _, busy := held.LoadOrStore(path, true); busy {
		return nil, ErrBusy
	}
	return func() { held.Delete(path) }, nil
}
