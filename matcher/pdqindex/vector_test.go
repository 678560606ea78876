package pdqindex

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// The vector kernels must leave exactly what the scalar loops leave: the
// same ids, tags and counts, nothing written past what they report in the
// weak list, and the same place to stop when room runs out.

func pdqNeedVector(t *testing.T) {
	t.Helper()
	if !pdqVector {
		t.Skip("SKIPPED: this CPU (or build) has no AVX-512 kernels; only the scalar search was tested")
	}
}

// pdqRandomBuckets returns sorted entries with ext bits above idBits, cut
// into buckets of 0..40 entries, many of them sharing entry bits.
func pdqRandomBuckets(rng *rand.Rand, idBits uint, ext uint) (entries, lo, hi []uint32) {
	for range 60 {
		n := rng.IntN(41)
		b := make([]uint32, n)
		for i := range b {
			b[i] = uint32(rng.IntN(1<<ext))<<idBits | pdqRandomID(rng, idBits)
		}
		slices.Sort(b)
		lo = append(lo, uint32(len(entries)))
		entries = append(entries, b...)
		hi = append(hi, uint32(len(entries)))
	}
	return append(entries, 0), lo, hi
}

// pdqRandomID returns an id of idBits bits, often one at either end.
func pdqRandomID(rng *rand.Rand, idBits uint) uint32 {
	max := uint32(1)<<idBits - 1
	switch rng.IntN(4) {
	case 0:
		return []uint32{0, 1, max - 1, max}[rng.IntN(4)]
	default:
		return uint32(rng.Uint64()) & max
	}
}

func TestRunsVectorMatchesScalar(t *testing.T) {
	pdqNeedVector(t)
	rng := rand.New(rand.NewPCG(21, 21))
	for _, idBits := range []uint{24, 20, 28} {
		ext := min(32-idBits, 3)
		for round := range 200 {
			entries, lo, hi := pdqRandomBuckets(rng, idBits, ext)
			qext := uint32(rng.IntN(1 << ext))
			size := 16 + rng.IntN(100)
			if round%4 == 0 {
				size = rng.IntN(16) // too small for the kernel
			}
			start := rng.IntN(size + 1)
			var got, want []uint32
			var gotT, wantT []uint8
			var gotN, wantN, gotD, wantD int
			for _, vec := range []bool{true, false} {
				cand, ct := make([]uint32, size), make([]uint8, size)
				pdqVector = vec
				n, d := pdqRuns(entries, lo, hi, qext, idBits, 5, cand, ct, start)
				if vec {
					got, gotT, gotN, gotD = cand[:n], ct[:n], n, d
				} else {
					want, wantT, wantN, wantD = cand[:n], ct[:n], n, d
				}
			}
			pdqVector = true
			if gotN != wantN || gotD != wantD || !slices.Equal(got[start:], want[start:]) || !slices.Equal(gotT[start:], wantT[start:]) {
				t.Fatalf("idBits %d round %d: vector (%d, %d) %v %v, scalar (%d, %d) %v %v",
					idBits, round, gotN, gotD, got[start:], gotT[start:], wantN, wantD, want[start:], wantT[start:])
			}
		}
	}
}

func TestTakeSplitVectorMatchesScalar(t *testing.T) {
	pdqNeedVector(t)
	rng := rand.New(rand.NewPCG(22, 22))
	for _, idBits := range []uint{24, 16, 31} {
		ext := min(32-idBits, 8)
		for round := range 500 {
			n := rng.IntN(50)
			bucket := make([]uint32, n)
			for i := range bucket {
				bucket[i] = uint32(rng.IntN(1<<ext))<<idBits | pdqRandomID(rng, idBits)
			}
			qext := uint32(rng.IntN(1 << ext))
			rad := rng.IntN(int(ext) + 2)
			nc, nw := rng.IntN(8), rng.IntN(8)
			var out [2][4]any
			var counts [2][2]int
			for k, vec := range []bool{true, false} {
				// A sentinel past the room shows any stray write.
				cand, ct := make([]uint32, nc+n+1), make([]uint8, nc+n+1)
				weak, wt := make([]uint32, nw+n+1), make([]uint8, nw+n+1)
				cand[nc+n], weak[nw+n] = 0xdeadbeef, 0xdeadbeef
				pdqVector = vec
				c, w := pdqTakeSplit(cand[:nc+n], ct[:nc+n], nc, weak[:nw+n], wt[:nw+n], nw, bucket, 3, qext, rad, idBits)
				if cand[nc+n] != 0xdeadbeef || weak[nw+n] != 0xdeadbeef {
					t.Fatalf("idBits %d round %d vector %v: wrote past the room", idBits, round, vec)
				}
				counts[k] = [2]int{c, w}
				out[k] = [4]any{cand[:c], ct[:c], weak[:w], wt[:w]}
			}
			pdqVector = true
			if counts[0] != counts[1] {
				t.Fatalf("idBits %d round %d: vector counts %v, scalar %v", idBits, round, counts[0], counts[1])
			}
			for i := range 4 {
				switch a := out[0][i].(type) {
				case []uint32:
					if !slices.Equal(a, out[1][i].([]uint32)) {
						t.Fatalf("idBits %d round %d: output %d differs: %v vs %v", idBits, round, i, a, out[1][i])
					}
				case []uint8:
					if !slices.Equal(a, out[1][i].([]uint8)) {
						t.Fatalf("idBits %d round %d: output %d differs: %v vs %v", idBits, round, i, a, out[1][i])
					}
				}
			}
		}
	}
}
