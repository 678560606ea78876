package ncmec

import (
	"errors"

	"github.com/mediaguard/mediaguard/internal/filelock"
)

// tryLock takes the exclusive lock of path+".lock" without waiting, so
// that two syncs of one bank (another process, or a Runner of another
// config) never write it at once.
func tryLock(path string) (unlock func(), err error) {
	unlock, err = filelock.TryLock(lockPath(path))
	if errors.Is(err, filelock.ErrBusy) {
		return nil, ErrBusy
	}
	return unlock, err
}
