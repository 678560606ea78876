package pdqindex

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// pdqRandomHashes returns n uniformly random hashes from a fixed seed.
func pdqRandomHashes(n int, seed uint64) []pdq.Hash {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	hs := make([]pdq.Hash, n)
	for i := range hs {
		hs[i] = pdq.Hash{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
	}
	return hs
}

// pdqFlipBits returns h with k distinct random bits flipped.
func pdqFlipBits(rng *rand.Rand, h pdq.Hash, k int) pdq.Hash {
	for _, b := range rng.Perm(256)[:k] {
		h[b>>6] ^= 1 << (b & 63)
	}
	return h
}

// pdqBankWithDuplicates is a random bank where about a tenth of the entries
// are exact copies or near copies of others, as real banks have.
func pdqBankWithDuplicates(n int, seed uint64) []pdq.Hash {
	hs := pdqRandomHashes(n, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 1; i < n; i++ {
		if rng.IntN(10) == 0 {
			hs[i] = pdqFlipBits(rng, hs[rng.IntN(i)], rng.IntN(4))
		}
	}
	return hs
}

// pdqQueries mixes hashes near banked ones (0..40 bits flipped) with random
// ones far from all of them.
func pdqQueries(rng *rand.Rand, bank []pdq.Hash, count int) []pdq.Hash {
	qs := make([]pdq.Hash, count)
	for i := range qs {
		if len(bank) > 0 && i%3 != 0 {
			qs[i] = pdqFlipBits(rng, bank[rng.IntN(len(bank))], rng.IntN(41))
		} else {
			qs[i] = pdq.Hash{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
		}
	}
	return qs
}

func pdqSortHits(h []Hit) []Hit {
	slices.SortFunc(h, func(a, b Hit) int { return int(a.ID) - int(b.ID) })
	return h
}

// pdqCheckSame fails unless got and want hold the same hits, each once.
func pdqCheckSame(t *testing.T, what string, got, want []Hit) {
	t.Helper()
	pdqSortHits(got)
	pdqSortHits(want)
	if !slices.Equal(got, want) {
		if len(got) > 10 || len(want) > 10 {
			t.Fatalf("%s: got %d hits, want %d", what, len(got), len(want))
		}
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestIndexMatchesLinear(t *testing.T) {
	big, bigQueries := 200_000, 40
	if testing.Short() {
		big, bigQueries = 30_000, 10
	}
	allThresholds := make([]int, 0, 258)
	for r := -1; r <= 256; r++ {
		allThresholds = append(allThresholds, r)
	}
	someThresholds := []int{0, 1, 2, 3, 5, 8, 12, 16, 20, 24, 28, 30, 31, 32, 40, 48, 63, 64, 70, 90, 128, 200, 256, 300}
	cases := []struct {
		n, queries int
		thresholds []int
	}{
		{0, 5, allThresholds},
		{1, 20, allThresholds},
		{7, 20, allThresholds},
		{600, 20, allThresholds},
		{5000, 20, someThresholds},
		{big, bigQueries, someThresholds},
	}
	for _, c := range cases {
		bank := pdqBankWithDuplicates(c.n, uint64(c.n)+1)
		ix := Build(slices.Clone(bank))
		if ix.Len() != c.n {
			t.Fatalf("Len() = %d, want %d", ix.Len(), c.n)
		}
		rng := rand.New(rand.NewPCG(uint64(c.n), 99))
		for qi, q := range pdqQueries(rng, bank, c.queries) {
			for _, r := range c.thresholds {
				got := ix.Search(nil, q, r)
				want := LinearSearch(nil, bank, q, r)
				pdqCheckSame(t, fmt.Sprintf("n=%d query %d threshold %d", c.n, qi, r), got, want)
			}
		}
		for id := range min(c.n, 100) {
			if ix.Hash(int32(id)) != bank[id] {
				t.Fatalf("Hash(%d) differs from the banked hash", id)
			}
		}
	}
}

// TestIndexForcedPlans runs the multi-index search itself, not the scan
// the cost model may prefer, at thresholds 0..256 with several layouts
// (chunks straddling words, uncovered bits, entry bits or none, 32-bit
// ids), with both the cheapest radii and lopsided ones that skip tables.
func TestIndexForcedPlans(t *testing.T) {
	n, step, maxProbes := 20_000, 1, 100_000.0
	if testing.Short() {
		n, step, maxProbes = 5_000, 6, 20_000
	}
	bank := pdqBankWithDuplicates(n, 5)
	layouts := []struct {
		tops, exts []uint
		idBits     uint
	}{
		{pdqRep(11, 15), pdqRep(11, 4), 24},
		{pdqRep(12, 13), pdqRep(12, 8), 24},
		{pdqRep(12, 17), pdqRep(12, 0), 24},
		{pdqRep(16, 8), pdqRep(16, 8), 24},
		{[]uint{5, 17, 23, 11, 20, 1, 24, 9}, []uint{0, 8, 1, 3, 0, 7, 0, 2}, 24},
		{[]uint{12}, []uint{0}, 24},
		{pdqRep(10, 14), pdqRep(10, 0), 32},
	}
	rng := rand.New(rand.NewPCG(5, 5))
	qs := pdqQueries(rng, bank, 4)
	for _, l := range layouts {
		ix := buildLayout(slices.Clone(bank), l.tops, l.exts, l.idBits)
		shapes := ix.layout()
		for r := 0; r <= 256; r += step + r/8 {
			for excess := range 2 {
				tau, _, ok := pdqPlanRadii(shapes, n, r, excess)
				for _, p := range [][]int8{tau, pdqLopsided(shapes, r+excess)} {
					if !ok || p == nil || !pdqCoversPlan(p, r+excess) || pdqProbes(shapes, p) > maxProbes {
						continue
					}
					for qi, q := range qs {
						got := ix.searchPlan(nil, q, r, p, excess)
						want := LinearSearch(nil, bank, q, r)
						pdqCheckSame(t, fmt.Sprintf("layout %v plan %v excess %d threshold %d query %d", shapes, p, excess, r, qi), got, want)
					}
				}
			}
		}
	}
}

// TestIndexWeakSpill makes the weak list so short that it spills, at
// its smallest length and below it, and checks that no hit is lost or
// doubled: hits found at exactly the radius in several tables, of which
// some spill and some are sifted.
func TestIndexWeakSpill(t *testing.T) {
	defer func(m int) { pdqWeakMax = m }(pdqWeakMax)
	rng := rand.New(rand.NewPCG(13, 13))
	bank := pdqRandomHashes(30_000, 13)
	q := bank[0]
	tops, exts := pdqRep(11, 15), pdqRep(11, 8)
	ix := buildLayout(slices.Clone(bank), tops, exts, 24)
	tau := make([]int8, len(tops))
	for i := range tau {
		tau[i] = 2 // 33 units: excess 1 at threshold 31
	}
	// Every fourth hash lies exactly tau bits from q in each chunk: 22
	// bits in all, a hit every table yields weakly.
	for i := 1; i < len(bank); i += 4 {
		h := q
		for j, tb := range ix.tables {
			for _, b := range rng.Perm(int(tb.width))[:tau[j]] {
				p := int(tb.start) + b
				h[p>>6] ^= 1 << (63 - p&63)
			}
		}
		bank[i] = h
	}
	ix = buildLayout(slices.Clone(bank), tops, exts, 24)
	for _, m := range []int{1 << 18, pdqWeakMin, 1000} {
		pdqWeakMax = m
		for _, r := range []int{22, 31} {
			for _, k := range []int{0, 3} {
				qq := pdqFlipBits(rng, q, k)
				got := ix.searchPlan(nil, qq, r, tau, 1)
				want := LinearSearch(nil, bank, qq, r)
				pdqCheckSame(t, fmt.Sprintf("weak max %d threshold %d flips %d", m, r, k), got, want)
			}
		}
	}
}

// TestIndexPiles banks thousands of copies of one hash, more than a
// candidate batch, so buckets overflow the batch and are taken in pieces.
func TestIndexPiles(t *testing.T) {
	bank := pdqRandomHashes(20_000, 9)
	rng := rand.New(rand.NewPCG(9, 9))
	pile := bank[0]
	for i := 1; i < 9000; i++ {
		bank[i] = pile
		if i%3 == 0 {
			bank[i] = pdqFlipBits(rng, pile, 1+rng.IntN(3))
		}
	}
	rng.Shuffle(len(bank), func(i, j int) { bank[i], bank[j] = bank[j], bank[i] })
	ix := buildLayout(slices.Clone(bank), pdqRep(11, 15), pdqRep(11, 8), 24)
	shapes := ix.layout()
	for _, r := range []int{0, 1, 2, 5, 10, 31, 40} {
		for excess := range 2 {
			tau, _, ok := pdqPlanRadii(shapes, len(bank), r, excess)
			if !ok {
				t.Fatalf("no plan for threshold %d", r)
			}
			for _, k := range []int{0, 1, 2, 4, 30} {
				q := pdqFlipBits(rng, pile, k)
				got := ix.searchPlan(nil, q, r, tau, excess)
				want := LinearSearch(nil, bank, q, r)
				pdqCheckSame(t, fmt.Sprintf("pile threshold %d excess %d flips %d", r, excess, k), got, want)
			}
		}
	}
}

func pdqRep(n int, v uint) []uint {
	s := make([]uint, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// pdqLopsided puts as many units as possible in the first tables and skips
// the rest, so that skipped tables and wide radii are exercised.
func pdqLopsided(shapes []pdqShape, r int) []int8 {
	tau := make([]int8, len(shapes))
	units := r + 1
	for i, s := range shapes {
		c := min(units, int(s.width)+1, 5)
		tau[i] = int8(c - 1)
		units -= c
	}
	if units > 0 {
		return nil
	}
	return tau
}

// pdqProbes counts the buckets a plan reads, to keep the test quick.
func pdqProbes(shapes []pdqShape, tau []int8) float64 {
	var v float64
	for i, s := range shapes {
		v += pdqBall(s.width-s.ext, int(tau[i]))
	}
	return v
}

func pdqCoversPlan(tau []int8, r int) bool {
	s := 0
	for _, t := range tau {
		s += int(t) + 1
	}
	return s >= r+1
}

func TestIndexPlansCover(t *testing.T) {
	for _, n := range []int{600, 10_000, 1 << 20, 10_000_000, 20_000_000} {
		idBits := pdqIDBits(n)
		tops, exts := pdqChooseLayout(n, idBits)
		if len(tops) == 0 && n >= 100_000 {
			t.Fatalf("n=%d: no layout", n)
		}
		total := uint(0)
		shapes := make([]pdqShape, len(tops))
		for i := range tops {
			if exts[i] > 32-idBits {
				t.Fatalf("n=%d: %d entry bits do not fit beside %d-bit ids", n, exts[i], idBits)
			}
			shapes[i] = pdqShape{tops[i] + exts[i], exts[i]}
			total += tops[i] + exts[i]
		}
		if total > 256 {
			t.Fatalf("n=%d: layout %v covers %d bits", n, shapes, total)
		}
		for r := 0; r <= 256; r++ {
			for excess := range 2 {
				tau, _, ok := pdqPlanRadii(shapes, n, r, excess)
				if ok && !pdqCoversPlan(tau, r+excess) {
					t.Fatalf("n=%d r=%d: plan %v does not cover the threshold with excess %d", n, r, tau, excess)
				}
			}
		}
	}
}

func TestChunkBits(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		h := pdq.Hash{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
		w := uint(1 + rng.IntN(32))
		s := uint(rng.IntN(257 - int(w)))
		var want uint32
		for k := s; k < s+w; k++ {
			// Bit numbers position p from the MSB of h[0] as bit 255-p.
			want <<= 1
			if h.Bit(255 - int(k)) {
				want |= 1
			}
		}
		if got := pdqChunk(&h, s, w); got != want {
			t.Fatalf("pdqChunk(%v, %d, %d) = %#x, want %#x", h, s, w, got, want)
		}
	}
}

func TestIndexConcurrent(t *testing.T) {
	bank := pdqBankWithDuplicates(30_000, 11)
	ix := Build(slices.Clone(bank))
	rng := rand.New(rand.NewPCG(11, 11))
	qs := pdqQueries(rng, bank, 16)
	want := make([][]Hit, len(qs))
	for i, q := range qs {
		want[i] = pdqSortHits(LinearSearch(nil, bank, q, 40))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range qs {
				j := (i + g) % len(qs)
				if got := pdqSortHits(ix.Search(nil, qs[j], 40)); !slices.Equal(got, want[j]) {
					t.Errorf("goroutine %d query %d: %d hits, want %d", g, j, len(got), len(want[j]))
				}
			}
		})
	}
	wg.Wait()
}

// TestIndexMemory checks the bound of 80 bytes per banked hash at a size
// where the tables, not the fixed overheads, dominate.
func TestIndexMemory(t *testing.T) {
	n := 2_000_000
	if testing.Short() {
		n = 1_000_000
	}
	hs := pdqRandomHashes(n, 3)
	start := time.Now()
	ix := Build(hs)
	t.Logf("built %d hashes in %v, %d tables", n, time.Since(start), len(ix.tables))
	per := float64(ix.MemoryBytes()) / float64(ix.Len())
	t.Logf("%.2f bytes per hash", per)
	if per > 80 {
		t.Fatalf("index uses %.2f bytes per hash, want <= 80", per)
	}
	if min := 32 * n; ix.MemoryBytes() < min {
		t.Fatalf("MemoryBytes() = %d, less than the hashes alone (%d)", ix.MemoryBytes(), min)
	}
}

// TestIndexKeepsNoSlack hands Build slices whose capacity a
// loader guessed high: the index must not keep the slack for the bank's
// lifetime, whether it keeps the hashes on the heap (no tables, small
// tables) or copies them into its mapping, and ids must not move.
func TestIndexKeepsNoSlack(t *testing.T) {
	for _, n := range []int{100, 5_000, 300_000} {
		hs := make([]pdq.Hash, n, 10*n+2048)
		copy(hs, pdqRandomHashes(n, uint64(n)))
		want := slices.Clone(hs)
		ix := Build(hs)
		if got := cap(ix.hashes); got > n+n/8+1024 {
			t.Errorf("n=%d: the index keeps a capacity of %d", n, got)
		}
		for _, id := range []int{0, n / 2, n - 1} {
			if ix.Hash(int32(id)) != want[id] {
				t.Fatalf("n=%d: Hash(%d) moved", n, id)
			}
		}
		if mb := ix.MemoryBytes(); mb > 80*n+1<<20 {
			t.Errorf("n=%d: MemoryBytes %d counts the slack", n, mb)
		}
	}
}
