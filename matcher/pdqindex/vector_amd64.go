//go:build amd64 && !purego

package pdqindex

import "golang.org/x/sys/cpu"

// pdqVector is whether the AVX-512 kernels may be used. They pick the
// qualifying entries out of 16 at a time in a handful of instructions with
// no branch on them; the scalar loops mispredict at each run's end and
// each bucket's, which made picking a third of a search's time at 10M
// hashes. A variable so tests can compare both.
var pdqVector = cpu.X86.HasAVX512F && cpu.X86.HasAVX512VL && cpu.X86.HasAVX512BW &&
	cpu.X86.HasAVX512VPOPCNTDQ && cpu.X86.HasAVX2 && cpu.X86.HasPOPCNT

// pdqRunsAVX512 does what pdqRunsScalar does for buckets lo[i]:hi[i], i <
// nb, of at most 16 entries, while cand has room for 16 more from nc on
// (nc <= limit): it appends to cand and ct each entry e with first <= e <=
// first+idMask, as e&idMask tagged tag, and returns the new nc and the
// number of buckets done. It stops at the first bucket longer than 16
// entries or when room runs out. It writes all 16 slots from nc on.
//
//go:noescape
func pdqRunsAVX512(entries, lo, hi *uint32, nb int, first, idMask uint32, tag uint8, cand *uint32, ct *uint8, nc, limit int) (int, int)

// pdqTakeSplitAVX512 does what pdqTakeSplitScalar does for the n entries
// at bucket, writing only the slots it fills.
//
//go:noescape
func pdqTakeSplitAVX512(bucket *uint32, n int, qext uint32, idBits uint32, rad uint32, ti uint8, cand *uint32, ct *uint8, nc int, weak *uint32, wt *uint8, nw int) (int, int)
