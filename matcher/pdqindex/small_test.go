package pdqindex

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// TestSmallMatchesLinear checks Small against LinearSearch for sets from
// empty to past the size handed to an Index, with duplicates and near
// copies, at thresholds below, at and above the one it was built for.
func TestSmallMatchesLinear(t *testing.T) {
	for _, n := range []int{0, 1, 2, 17, 600, 3000, 20_000} {
		for _, built := range []int{0, 15, 16, 31, 47, 63, 64, 256} {
			if built > 63 && n > 600 {
				continue // a plain scan, as slow as the reference it is checked against
			}
			t.Run(fmt.Sprintf("n%d/built%d", n, built), func(t *testing.T) {
				hashes := pdqBankWithDuplicates(n, uint64(n+built))
				s := BuildSmall(hashes, built)
				if s.Len() != n {
					t.Fatalf("Len %d, want %d", s.Len(), n)
				}
				rng := rand.New(rand.NewPCG(uint64(n), uint64(built)))
				qs := pdqQueries(rng, hashes, 300)
				for qi, q := range qs {
					for _, th := range []int{-1, 0, built / 2, built, built + 1, 40} {
						want := LinearSearch(nil, hashes, q, th)
						got := s.Search(nil, q, th)
						pdqCheckSame(t, fmt.Sprintf("query %d threshold %d", qi, th), got, want)
						if any := s.Any(q, th); any != (len(want) > 0) {
							t.Fatalf("query %d threshold %d: Any %v with %d hits", qi, th, any, len(want))
						}
					}
				}
			})
		}
	}
}

// TestSmallChunkEdges puts every difference in one chunk and at chunk
// borders, where an off-by-one in the chunk arithmetic would hide hits.
func TestSmallChunkEdges(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	base := pdqRandomHashes(1, 5)[0]
	var hashes []pdq.Hash
	for start := 0; start < 256; start += 8 {
		for k := 1; k <= 40; k += 3 {
			h := base
			for b := start; b < start+k && b < 256; b++ {
				h[b>>6] ^= 1 << (63 - b&63)
			}
			hashes = append(hashes, h)
		}
	}
	s := BuildSmall(hashes, 31)
	for _, q := range []pdq.Hash{base, pdqFlipBits(rng, base, 3), pdqFlipBits(rng, base, 20)} {
		pdqCheckSame(t, "edge", s.Search(nil, q, 31), LinearSearch(nil, hashes, q, 31))
	}
}

func TestSmallAnyAllocs(t *testing.T) {
	s := BuildSmall(pdqRandomHashes(1000, 3), 31)
	q := pdqRandomHashes(1, 4)[0]
	if n := testing.AllocsPerRun(100, func() { s.Any(q, 31) }); n != 0 {
		t.Errorf("Any allocates %v times", n)
	}
}

// BenchmarkSmall compares, per query at threshold 31 against small random
// sets, Small.Any and Small.Search with an Index and a plain scan: the
// retro-scan's question (most queries miss).
func BenchmarkSmall(b *testing.B) {
	for _, n := range []int{100, 1000, 4096, 16384} {
		hashes := pdqRandomHashes(n, 42)
		rng := rand.New(rand.NewPCG(42, 43))
		qs := pdqRandomHashes(4096, 44)
		near := pdqQueries(rng, hashes, 4096)
		s := BuildSmall(hashes, DefaultThreshold)
		ix := Build(hashes)
		var dst []Hit
		b.Run(fmt.Sprintf("n%d/SmallAny/miss", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				s.Any(qs[i&4095], DefaultThreshold)
			}
		})
		b.Run(fmt.Sprintf("n%d/SmallSearch/miss", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				dst = s.Search(dst[:0], qs[i&4095], DefaultThreshold)
			}
		})
		b.Run(fmt.Sprintf("n%d/SmallSearch/mixed", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				dst = s.Search(dst[:0], near[i&4095], DefaultThreshold)
			}
		})
		b.Run(fmt.Sprintf("n%d/Index/miss", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				dst = ix.Search(dst[:0], qs[i&4095], DefaultThreshold)
			}
		})
		b.Run(fmt.Sprintf("n%d/Linear/miss", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				dst = LinearSearch(dst[:0], hashes, qs[i&4095], DefaultThreshold)
			}
		})
	}
}
