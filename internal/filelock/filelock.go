// Package filelock keeps two writers of one file apart, across processes
// where the system has flock(2): the bank files mediaguard writes (an
// NCMEC sync, a learned bank) must have one writer, or one overwrites the
// other's entries.
package filelock

import "errors"

// ErrBusy is a lock another holder has.
var ErrBusy = errors.New("filelock: held by another writer")
