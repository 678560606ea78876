//go:build unix

package mediaproxy

import (
	"io"

	"golang.org/x/sys/unix"
)

// mapSpooled maps a spooled body read-only, so that it can be searched for
// embedded files without a copy on the heap (a 100 MB spooled upload
// costs page cache, not memory the proxy holds). ok is false for bodies
// not in a spool file.
func mapSpooled(r io.ReadSeeker) (data []byte, release func(), ok bool) {
	sr, isSection := r.(*io.SectionReader)
	if !isSection {
		return nil, nil, false
	}
	outer, off, n := sr.Outer()
	f, isFile := outer.(interface{ Fd() uintptr })
	if !isFile || off != 0 || n <= 0 || n != int64(int(n)) {
		return nil, nil, false
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(n), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, false
	}
	return b, func() { unix.Munmap(b) }, true
}
