package pdqindex

import (
	"syscall"
	"unsafe"
)

const (
	pdqHugePage  = 2 << 20
	pdqSmallPage = 4 << 10
	// pdqMinMapped is the smallest block worth its own mapping: below it
	// (banks of under ~100k hashes) the heap is as fast.
	pdqMinMapped = 8 << 20
	// madvHugepage is MADV_HUGEPAGE from <linux/mman.h>, absent from
	// package syscall.
	madvHugepage = 14
)

// pdqMapHuge maps an anonymous block of at least size bytes, starting on a
// 2 MB boundary, and asks for transparent huge pages for it before any of
// it is touched, so each fault takes a whole huge page. The block is not
// rounded up to 2 MB, which would cost up to 2 MB more: its last partial
// huge page stays in small pages. Where THP is off the advice fails
// harmlessly and the block is used with small pages. It returns the
// mapping and the block in it, or nil to allocate on the heap.
func pdqMapHuge(size int) (mapped, block []byte) {
	if size < pdqMinMapped {
		return nil, nil
	}
	size = (size + pdqSmallPage - 1) &^ (pdqSmallPage - 1)
	// One extra huge page of address space (never touched, so never
	// resident) lets the block start on a 2 MB boundary.
	m, err := syscall.Mmap(-1, 0, size+pdqHugePage, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return nil, nil
	}
	off := (pdqHugePage - int(uintptr(unsafe.Pointer(unsafe.SliceData(m))))%pdqHugePage) % pdqHugePage
	block = m[off : off+size : off+size]
	_ = syscall.Madvise(block, madvHugepage)
	return m, block
}

// pdqUnmap releases a mapping from pdqMapHuge.
func pdqUnmap(mapped []byte) { _ = syscall.Munmap(mapped) }
