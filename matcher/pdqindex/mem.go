package pdqindex

import (
	"unsafe"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// pdqArena holds the hashes and tables of one index in one block of
// memory outside the Go heap where the platform allows (see pdqMapHuge),
// so the kernel can back it with transparent huge pages: a search reads
// thousands of random lines in hundreds of megabytes, and with 4 KB pages
// each of them also misses the TLB, its page walk itself missing the cache
// once a scan or other work has evicted the page tables. The same index
// searched alternately from huge pages and from the heap took 0.76-0.89x
// the time at 10M hashes with the tables moved, and 0.86-0.91x again with
// the hashes. Neither holds pointers, so the garbage collector need not
// see them; the block is unmapped when the index is collected.
type pdqArena struct {
	mapped []byte // the whole mapping, nil on the heap
	size   int    // the bytes of it that may be touched
	free   []byte // what is not handed out yet
}

// pdqArenaAlign keeps each array on its own cache lines.
const pdqArenaAlign = 64

// newPDQArena maps a block for arrays of the given numbers of uint32s, or
// returns an arena that allocates them on the heap.
func newPDQArena(lens []int) *pdqArena {
	total := 0
	for _, n := range lens {
		total += (4*n + pdqArenaAlign - 1) &^ (pdqArenaAlign - 1)
	}
	a := &pdqArena{}
	a.mapped, a.free = pdqMapHuge(total)
	a.size = len(a.free)
	return a
}

// uint32s returns a zeroed array of n uint32s.
func (a *pdqArena) uint32s(n int) []uint32 {
	size := (4*n + pdqArenaAlign - 1) &^ (pdqArenaAlign - 1)
	if a.mapped == nil || size > len(a.free) || n == 0 {
		return make([]uint32, n)
	}
	b := a.free[:size:size]
	a.free = a.free[size:]
	return unsafe.Slice((*uint32)(unsafe.Pointer(unsafe.SliceData(b))), n)
}

// hashes returns a copy of src in the arena, or src itself on the heap.
func (a *pdqArena) hashes(src []pdq.Hash) []pdq.Hash {
	const size = int(unsafe.Sizeof(pdq.Hash{}))
	if a.mapped == nil || len(src) == 0 {
		return src
	}
	u := a.uint32s(len(src) * size / 4)
	dst := unsafe.Slice((*pdq.Hash)(unsafe.Pointer(unsafe.SliceData(u))), len(src))
	copy(dst, src)
	return dst
}

// bytes is the memory the arena holds outside the heap (arrays on the
// heap are counted where they are).
func (a *pdqArena) bytes() int { return a.size }
