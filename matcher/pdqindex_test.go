package matcher

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// randomHashes returns n uniformly random hashes from a fixed seed.
func randomHashes(n int, seed uint64) []pdq.Hash {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	hs := make([]pdq.Hash, n)
	for i := range hs {
		hs[i] = pdq.Hash{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
	}
	return hs
}

// flipBits returns h with k distinct random bits flipped.
func flipBits(rng *rand.Rand, h pdq.Hash, k int) pdq.Hash {
	for _, b := range rng.Perm(256)[:k] {
		h[b>>6] ^= 1 << (b & 63)
	}
	return h
}

// bankWithDuplicates is a random bank where about a tenth of the entries
// are exact copies or near copies of others, as real banks have.
func bankWithDuplicates(n int, seed uint64) []pdq.Hash {
	hs := randomHashes(n, seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for i := 1; i < n; i++ {
		if rng.IntN(10) == 0 {
			hs[i] = flipBits(rng, hs[rng.IntN(i)], rng.IntN(4))
		}
	}
	return hs
}

// queries mixes hashes near banked ones (0..40 bits flipped) with random
// ones far from all of them.
func queries(rng *rand.Rand, bank []pdq.Hash, count int) []pdq.Hash {
	qs := make([]pdq.Hash, count)
	for i := range qs {
		if len(bank) > 0 && i%3 != 0 {
			qs[i] = flipBits(rng, bank[rng.IntN(len(bank))], rng.IntN(41))
		} else {
			qs[i] = pdq.Hash{rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()}
		}
	}
	return qs
}

func sortHits(h []PDQHit) []PDQHit {
	slices.SortFunc(h, func(a, b PDQHit) int { return int(a.ID) - int(b.ID) })
	return h
}

// checkSame fails unless got and want hold the same hits, each once.
func checkSame(t *testing.T, what string, got, want []PDQHit) {
	t.Helper()
	sortHits(got)
	sortHits(want)
	if !slices.Equal(got, want) {
		if len(got) > 10 || len(want) > 10 {
			t.Fatalf("%s: got %d hits, want %d", what, len(got), len(want))
		}
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func TestPDQIndexMatchesLinear(t *testing.T) {
	big, bigQueries := 200_000, 40
	if testing.Short() {
		big, bigQueries = 50_000, 15
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
		bank := bankWithDuplicates(c.n, uint64(c.n)+1)
		ix := NewPDQIndex(slices.Clone(bank))
		if ix.Len() != c.n {
			t.Fatalf("Len() = %d, want %d", ix.Len(), c.n)
		}
		rng := rand.New(rand.NewPCG(uint64(c.n), 99))
		for qi, q := range queries(rng, bank, c.queries) {
			for _, r := range c.thresholds {
				got := ix.Search(nil, q, r)
				want := LinearSearch(nil, bank, q, r)
				checkSame(t, fmt.Sprintf("n=%d query %d threshold %d", c.n, qi, r), got, want)
			}
		}
		for id := range min(c.n, 100) {
			if ix.Hash(int32(id)) != bank[id] {
				t.Fatalf("Hash(%d) differs from the banked hash", id)
			}
		}
	}
}

// TestPDQIndexForcedPlans runs the multi-index search itself, not the scan
// the cost model may prefer, at thresholds 0..256 with several layouts
// (chunks straddling words, uncovered bits, entry bits or none, 32-bit
// ids), with both the cheapest radii and lopsided ones that skip tables.
func TestPDQIndexForcedPlans(t *testing.T) {
	n := 20_000
	step := 1
	if testing.Short() {
		n, step = 5_000, 3
	}
	bank := bankWithDuplicates(n, 5)
	layouts := []struct {
		tops, exts []uint
		idBits     uint
	}{
		{rep(11, 19), rep(11, 4), 24},
		{rep(12, 21), rep(12, 0), 24},
		{rep(16, 8), rep(16, 8), 24},
		{[]uint{5, 17, 23, 11, 20, 1, 24, 9}, []uint{0, 8, 1, 3, 0, 7, 0, 2}, 24},
		{[]uint{12}, []uint{0}, 24},
		{rep(12, 20), rep(12, 0), 32},
	}
	rng := rand.New(rand.NewPCG(5, 5))
	qs := queries(rng, bank, 4)
	for _, l := range layouts {
		ix := newPDQIndexLayout(slices.Clone(bank), l.tops, l.exts, l.idBits)
		shapes := ix.layout()
		for r := 0; r <= 256; r += step + r/8 {
			tau, _, ok := planRadii(shapes, n, r)
			for _, p := range [][]int8{tau, lopsided(shapes, r)} {
				if !ok || p == nil || !coversPlan(p, r) || probes(shapes, p) > 100_000 {
					continue
				}
				for qi, q := range qs {
					got := ix.searchPlan(nil, q, r, p)
					want := LinearSearch(nil, bank, q, r)
					checkSame(t, fmt.Sprintf("layout %v plan %v threshold %d query %d", shapes, p, r, qi), got, want)
				}
			}
		}
	}
}

func rep(n int, v uint) []uint {
	s := make([]uint, n)
	for i := range s {
		s[i] = v
	}
	return s
}

// lopsided puts as many units as possible in the first tables and skips
// the rest, so that skipped tables and wide radii are exercised.
func lopsided(shapes []tableShape, r int) []int8 {
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

// probes counts the buckets a plan reads, to keep the test quick.
func probes(shapes []tableShape, tau []int8) float64 {
	var v float64
	for i, s := range shapes {
		v += ball(s.width-s.ext, int(tau[i]))
	}
	return v
}

func coversPlan(tau []int8, r int) bool {
	s := 0
	for _, t := range tau {
		s += int(t) + 1
	}
	return s >= r+1
}

func TestPDQIndexPlansCover(t *testing.T) {
	for _, n := range []int{600, 10_000, 1 << 20, 10_000_000, 20_000_000} {
		idBits := idBitsFor(n)
		tops, exts := chooseLayout(n, idBits)
		if len(tops) == 0 && n >= 100_000 {
			t.Fatalf("n=%d: no layout", n)
		}
		total := uint(0)
		shapes := make([]tableShape, len(tops))
		for i := range tops {
			if exts[i] > 32-idBits {
				t.Fatalf("n=%d: %d entry bits do not fit beside %d-bit ids", n, exts[i], idBits)
			}
			shapes[i] = tableShape{tops[i] + exts[i], exts[i]}
			total += tops[i] + exts[i]
		}
		if total > 256 {
			t.Fatalf("n=%d: layout %v covers %d bits", n, shapes, total)
		}
		for r := 0; r <= 256; r++ {
			tau, _, ok := planRadii(shapes, n, r)
			if ok && !coversPlan(tau, r) {
				t.Fatalf("n=%d r=%d: plan %v does not cover the threshold", n, r, tau)
			}
		}
	}
}

func TestPDQChunkBits(t *testing.T) {
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
		if got := chunkBits(&h, s, w); got != want {
			t.Fatalf("chunkBits(%v, %d, %d) = %#x, want %#x", h, s, w, got, want)
		}
	}
}

func TestPDQIndexConcurrent(t *testing.T) {
	bank := bankWithDuplicates(30_000, 11)
	ix := NewPDQIndex(slices.Clone(bank))
	rng := rand.New(rand.NewPCG(11, 11))
	qs := queries(rng, bank, 16)
	want := make([][]PDQHit, len(qs))
	for i, q := range qs {
		want[i] = sortHits(LinearSearch(nil, bank, q, 40))
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range qs {
				j := (i + g) % len(qs)
				if got := sortHits(ix.Search(nil, qs[j], 40)); !slices.Equal(got, want[j]) {
					t.Errorf("goroutine %d query %d: %d hits, want %d", g, j, len(got), len(want[j]))
				}
			}
		})
	}
	wg.Wait()
}

// TestPDQIndexMemory checks the bound of 80 bytes per banked hash at a size
// where the tables, not the fixed overheads, dominate.
func TestPDQIndexMemory(t *testing.T) {
	n := 2_000_000
	if testing.Short() {
		n = 1_000_000
	}
	hs := randomHashes(n, 3)
	start := time.Now()
	ix := NewPDQIndex(hs)
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
