package mediaproxy

import (
	"math/bits"
	"sync"
)

// Downloads are buffered whole to be judged, tens of them a second, each
// up to max_download_buffer. Allocated afresh, they were three quarters of
// the proxy's garbage under load, and each collection they set off takes
// one of the runtime's Ps for its mark phase: on a small machine, the
// moments known media waits behind. bodyBuffers recycles them by size
// class. Each class is a sync.Pool, so idle buffers go back to the
// collector within two cycles and the pool holds no memory at rest.
//
// Classes are 1, 1.25, 1.5 and 1.75 times each power of two from 64 KiB
// to 16 MiB: a buffer is at most a quarter larger than asked for.
const (
	minBodyClassShift = 16 // 64 KiB
	maxBodyClassShift = 24 // 16 MiB
	bodySubClasses    = 4
)

var bodyBuffers [(maxBodyClassShift-minBodyClassShift+1)*bodySubClasses + 1]sync.Pool

// bodyClass returns the class of a buffer of at least n bytes and its
// capacity, or -1 when n is outside the pooled range.
func bodyClass(n int) (class, size int) {
	if n <= 0 || n > 1<<maxBodyClassShift {
		return -1, 0
	}
	n = max(n, 1<<minBodyClassShift)
	e := bits.Len(uint(n-1)) - 1 // 2^e < n <= 2^(e+1)
	step := 1 << e / bodySubClasses
	for sub := 1; sub <= bodySubClasses; sub++ {
		if size = 1<<e + sub*step; size >= n {
			return (e-minBodyClassShift)*bodySubClasses + sub, size
		}
	}
	panic("unreachable")
}

// getBody returns an empty buffer with room for at least n bytes.
func getBody(n int) []byte {
	class, size := bodyClass(n)
	if class < 0 {
		return make([]byte, 0, n)
	}
	if b, ok := bodyBuffers[class].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return make([]byte, 0, size)
}

// putBody recycles b, which its user must no longer reference (nor any
// slice of it). Buffers not made by getBody are left to the collector.
func putBody(b []byte) {
	class, size := bodyClass(cap(b))
	if class < 0 || size != cap(b) {
		return
	}
	b = b[:0]
	bodyBuffers[class].Put(&b)
}
