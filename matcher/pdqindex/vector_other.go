//go:build !amd64 || purego

package pdqindex

var pdqVector = false

func pdqRunsAVX512(entries, lo, hi *uint32, nb int, first, idMask uint32, tag uint8, cand *uint32, ct *uint8, nc, limit int) (int, int) {
	panic("pdqindex: no vector kernels on this platform")
}

func pdqTakeSplitAVX512(bucket *uint32, n int, qext uint32, idBits uint32, rad uint32, ti uint8, cand *uint32, ct *uint8, nc int, weak *uint32, wt *uint8, nw int) (int, int) {
	panic("pdqindex: no vector kernels on this platform")
}
