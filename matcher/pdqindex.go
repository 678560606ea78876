package matcher

import (
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// PDQHit is one banked hash within the threshold.
type PDQHit struct {
	// ID is the position of the hash in the slice given to NewPDQIndex (or
	// to LinearSearch).
	ID int32
	// Distance is the Hamming distance from the query (0..256).
	Distance int
}

// PDQIndex finds every banked PDQ hash within a Hamming distance of a query,
// with exactly the results of LinearSearch, by multi-index hashing.
//
// The 256 bits are cut into m contiguous chunks, each with a table from
// chunk value to the hashes holding it. By the pigeonhole principle, if
// Hamming(q,h) <= r then for any radii tau_i with sum(tau_i+1) = r+1 some
// chunk i of h is within tau_i of q's, so probing every value within tau_i
// of q's chunk in each table and verifying the candidates against the full
// hash finds every hit. The layout is chosen from the bank size at build
// time, the radii per threshold by a cost model that also decides when a
// plain scan is cheaper.
//
// A PDQIndex is immutable once built and safe for concurrent Search.
type PDQIndex struct {
	hashes []pdq.Hash
	tables []pdqTable
	// idBits is how many low bits of a table entry hold the id: 24 while
	// every id fits, leaving the top byte for chunk bits that filter
	// candidates before their hash is read.
	idBits uint
	// plans caches the radii per threshold, computed on first use: a plan
	// for every threshold up front would cost more than it saves.
	plans [pdqBits + 1]atomic.Pointer[pdqPlan]
}

// pdqBits is the length of a PDQ hash in bits.
const pdqBits = 256

// pdqTable indexes one chunk. Its top width-ext bits select a bucket,
// entries[offsets[v]:offsets[v+1]], whose entries hold an id in the low
// idBits and the chunk's low ext bits above it. Keeping some chunk bits in
// the entry makes a chunk wider (so fewer random candidates match it)
// without growing the offsets, which cost 4 bytes per possible value.
type pdqTable struct {
	start, width uint // bits [start, start+width) counted from the MSB of Hash[0]
	ext          uint // low chunk bits kept in entries, not in the bucket number
	offsets      []uint32
	entries      []uint32
}

// pdqPlan is how one threshold is searched: linear, or the radius tau per
// table (-1 skips the table).
type pdqPlan struct {
	linear bool
	tau    []int8
}

// Cost model, in units of one random memory access (~10-30 ns on a loaded
// server), calibrated on banks of 1M and 10M random hashes. A probe reads
// the offsets and the bucket at random; scanning the rest of a bucket is
// sequential; each candidate reads its 32-byte hash at random; the linear
// scan streams hashes at about a tenth of a random access each.
const (
	costProbe     = 2.0
	costScan      = 0.04
	costCandidate = 1.0
	costTable     = 4.0
	costLinear    = 0.1
	// minIndexed is the bank size below which no tables are built: a scan of
	// a few hundred hashes beats any probing.
	minIndexed = 512
	// maxTopBits bounds the offsets of one table (2^24 entries, 64MB).
	maxTopBits = 24
	// maxTables bounds the number of chunks; more only add entry bytes.
	maxTables = 16
	// tableBudget is the bytes per hash the tables may use so that, with
	// the 32-byte hash, the struct and slice headers, the whole index stays
	// under 80 bytes per hash.
	tableBudget = 47.5
)

// NewPDQIndex builds an index over hashes. It takes ownership of the slice:
// the caller must not modify it afterwards. IDs in results are positions in
// it. Tables are built in parallel, one goroutine per core.
func NewPDQIndex(hashes []pdq.Hash) *PDQIndex {
	n := len(hashes)
	tops, exts := chooseLayout(n, idBitsFor(n))
	return newPDQIndexLayout(hashes, tops, exts, idBitsFor(n))
}

// idBitsFor is the id width of table entries for a bank of n hashes.
func idBitsFor(n int) uint {
	if n > 1<<24 {
		return 32
	}
	return 24
}

// newPDQIndexLayout builds an index whose table i has tops[i] bucket bits
// and exts[i] entry bits, chunks taken in order from the most significant
// bit, and ids in the low idBits of entries; the chunk widths must sum to at
// most 256, ids fit idBits and exts the bits above.
func newPDQIndexLayout(hashes []pdq.Hash, tops, exts []uint, idBits uint) *PDQIndex {
	ix := &PDQIndex{hashes: hashes, idBits: idBits}
	n := len(hashes)
	var start uint
	for i, t := range tops {
		w := t + exts[i]
		ix.tables = append(ix.tables, pdqTable{start: start, width: w, ext: exts[i]})
		start += w
	}
	if len(ix.tables) == 0 {
		return ix
	}
	workers := min(runtime.GOMAXPROCS(0), len(ix.tables))
	var next atomic.Int32
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			// keys avoids extracting each chunk twice from 32-byte hashes.
			keys := make([]uint32, n)
			for {
				t := int(next.Add(1)) - 1
				if t >= len(ix.tables) {
					return
				}
				ix.tables[t].build(hashes, keys, ix.idBits)
			}
		})
	}
	wg.Wait()
	return ix
}

func (t *pdqTable) build(hashes []pdq.Hash, keys []uint32, idBits uint) {
	// off[v+1] first counts bucket v, then after the prefix sum holds its
	// start; filling advances it to v's end, which is v+1's start, so no
	// cursor array is needed.
	off := make([]uint32, 1<<(t.width-t.ext)+1)
	for i := range hashes {
		k := t.chunk(&hashes[i])
		keys[i] = k
		off[k>>t.ext+1]++
	}
	var sum uint32
	for v := 1; v < len(off); v++ {
		c := off[v]
		off[v] = sum
		sum += c
	}
	entries := make([]uint32, len(hashes)+1)
	extMask := uint32(1)<<t.ext - 1
	for i, k := range keys[:len(hashes)] {
		b := k >> t.ext
		entries[off[b+1]] = uint32(i) | (k&extMask)<<idBits
		off[b+1]++
	}
	if t.ext > 0 {
		// Sorted entries put the entry bits in order within a bucket,
		// which lets exact lookups binary-search instead of scan.
		for v := range len(off) - 1 {
			if b := entries[off[v]:off[v+1]]; len(b) > 1 {
				slices.Sort(b)
			}
		}
	}
	t.offsets, t.entries = off, entries
}

// chunk extracts the table's bits of h as an integer.
func (t *pdqTable) chunk(h *pdq.Hash) uint32 {
	return chunkBits(h, t.start, t.width)
}

// chunkBits returns bits [start, start+width) of h, numbered from the most
// significant bit of h[0], as an integer (1 <= width <= 32).
func chunkBits(h *pdq.Hash, start, width uint) uint32 {
	w, o := start>>6, start&63
	var v uint64
	if o+width <= 64 {
		v = h[w] >> (64 - o - width)
	} else {
		v = h[w]<<(o+width-64) | h[w+1]>>(128-o-width)
	}
	return uint32(v & (1<<width - 1))
}

// Len is the number of banked hashes.
func (ix *PDQIndex) Len() int { return len(ix.hashes) }

// Hash returns the banked hash with the given id.
func (ix *PDQIndex) Hash(id int32) pdq.Hash { return ix.hashes[id] }

// MemoryBytes is the memory the index holds, including the hashes.
func (ix *PDQIndex) MemoryBytes() int {
	m := int(unsafe.Sizeof(*ix)) + cap(ix.hashes)*int(unsafe.Sizeof(pdq.Hash{}))
	for i := range ix.tables {
		t := &ix.tables[i]
		m += int(unsafe.Sizeof(*t)) + 4*cap(t.offsets) + 4*cap(t.entries)
	}
	for i := range ix.plans {
		if p := ix.plans[i].Load(); p != nil {
			m += int(unsafe.Sizeof(*p)) + cap(p.tau)
		}
	}
	return m
}

// Search appends to dst every banked hash within threshold of q (0..256),
// each once, in no particular order: the same set as LinearSearch.
func (ix *PDQIndex) Search(dst []PDQHit, q pdq.Hash, threshold int) []PDQHit {
	if threshold < 0 || len(ix.hashes) == 0 {
		return dst
	}
	threshold = min(threshold, pdqBits)
	p := ix.plan(threshold)
	if p.linear {
		return LinearSearch(dst, ix.hashes, q, threshold)
	}
	return ix.searchPlan(dst, q, threshold, p.tau)
}

// The search runs in three passes over batches so that the random reads of
// each pass are independent of one another and overlap in the memory
// system: locate buckets (offsets), filter their entries into candidate
// ids, read and compare the candidates' hashes. Interleaving them would
// chain each read on the previous one and stall on every bucket-length
// branch.
const (
	probeBatch = 512
	candBatch  = 2048
)

// searchPlan runs the multi-index search with radius tau[i] in table i.
// It is only correct when sum(tau[i]+1) > threshold.
func (ix *PDQIndex) searchPlan(dst []PDQHit, q pdq.Hash, threshold int, tau []int8) []PDQHit {
	var s searchState
	s.ix, s.q, s.threshold, s.tau = ix, &q, threshold, tau
	s.dst = dst
	for ti := range ix.tables {
		r := int(tau[ti])
		if r < 0 {
			continue
		}
		t := &ix.tables[ti]
		s.ti, s.t = ti, t
		qv := t.chunk(&q)
		s.qext = qv & (1<<t.ext - 1)
		qtop := uint64(qv >> t.ext)
		top := t.width - t.ext
		limit := uint64(1) << top
		// Every top mask of weight k <= r by Gosper's hack; the remaining
		// radius r-k is spent on the entry bits.
		for k := 0; k <= min(r, int(top)); k++ {
			rad := int8(r - k)
			x := uint64(1)<<k - 1
			for x < limit {
				v := qtop ^ x
				s.lo[s.nb], s.hi[s.nb], s.rad[s.nb] = t.offsets[v], t.offsets[v+1], rad
				s.nb++
				if s.nb == probeBatch {
					if expStop >= 1 {
						s.scan()
					} else {
						s.nb = 0
					}
				}
				if k == 0 {
					break
				}
				c := x & -x
				y := x + c
				x = (x^y)>>2>>bits.TrailingZeros64(c) | y
			}
		}
		if expStop >= 1 {
			s.scan()
		} else {
			s.nb = 0
		}
		if expStop >= 2 {
			s.check()
		} else {
			s.nc = 0
		}
	}
	return s.dst
}

// searchState is one search's batches, on the caller's stack.
type searchState struct {
	ix        *PDQIndex
	q         *pdq.Hash
	threshold int
	tau       []int8
	ti        int
	t         *pdqTable
	qext      uint32
	dst       []PDQHit

	nb     int
	lo, hi [probeBatch]uint32
	rad    [probeBatch]int8
	nc     int
	cand   [candBatch]uint32
	// touch keeps the warming loads of scan from being optimised away.
	touch uint32
}

// scan filters the entries of the located buckets by their chunk bits.
func (s *searchState) scan() {
	entries := s.t.entries
	// Touch both ends of every bucket first: these loads are independent
	// and a few instructions each, so dozens are in flight at once, while
	// the filter loop below, tens of instructions per bucket, would fill
	// the reorder window with work waiting on two or three of them.
	// entries has one spare element so that hi is always a valid index.
	var touch uint32
	for b := range s.nb {
		touch += entries[s.lo[b]] ^ entries[s.hi[b]]
	}
	s.touch += touch
	if expStop == 1 {
		s.nb = 0
		return
	}
	idBits := s.ix.idBits
	idMask := uint32(1)<<idBits - 1
	qext := s.qext
	ext := int(s.t.ext)
	// nc lives in a register: kept in s, every entry would wait on a
	// store-to-load round trip through memory.
	nc := s.nc
	for b := range s.nb {
		bucket := entries[s.lo[b]:s.hi[b]]
		rad := int(s.rad[b])
		if candBatch-nc < len(bucket) {
			s.nc = nc
			s.check()
			nc = 0
			if len(bucket) > candBatch {
				// A bucket bigger than the batch (a pile of near
				// duplicates) is taken in pieces.
				for len(bucket) > candBatch {
					nc = s.filter(bucket[:candBatch], rad, 0)
					s.nc = nc
					s.check()
					bucket = bucket[candBatch:]
				}
				nc = 0
			}
		}
		switch {
		case rad >= ext:
			// Every entry is within the radius: no filtering.
			for _, e := range bucket {
				s.cand[nc] = e & idMask
				nc++
			}
		case rad == 0:
			// Most buckets are probed with the whole radius spent on the
			// bucket bits, so only entries with exactly q's entry bits
			// qualify. Entries are sorted, entry bits on top, so they form
			// one run found by binary search instead of a scan.
			key := qext << idBits
			i, n := 0, len(bucket)
			for n > 1 {
				half := n >> 1
				if bucket[i+half] < key {
					i += half
				}
				n -= half
			}
			if i < len(bucket) && bucket[i] < key {
				i++
			}
			for ; i < len(bucket) && bucket[i]>>idBits == qext; i++ {
				s.cand[nc] = bucket[i] & idMask
				nc++
			}
		default:
			nc = s.filter(bucket, rad, nc)
		}
	}
	s.nc = nc
	s.nb = 0
}

// filter appends to s.cand from nc the ids of the entries whose entry bits
// are within rad of the query's and returns the new count. It is
// branch-free: a mispredicted branch on an entry that is still being
// loaded would discard the loads issued behind it.
func (s *searchState) filter(bucket []uint32, rad, nc int) int {
	idBits := s.ix.idBits
	idMask := uint32(1)<<idBits - 1
	qext := s.qext
	cand := s.cand[nc:]
	j := 0
	for _, e := range bucket {
		pc := bits.OnesCount32(e>>idBits ^ qext)
		cand[j] = e & idMask
		j += 1 + (rad-pc)>>63
	}
	return nc + j
}

// check verifies the candidates against the full hashes.
func (s *searchState) check() {
	hashes := s.ix.hashes
	q := s.q
	q0, q1, q2, q3 := q[0], q[1], q[2], q[3]
	for _, id := range s.cand[:s.nc] {
		h := &hashes[id]
		d := bits.OnesCount64(h[0]^q0) + bits.OnesCount64(h[1]^q1) +
			bits.OnesCount64(h[2]^q2) + bits.OnesCount64(h[3]^q3)
		if d <= s.threshold && !s.ix.foundEarlier(h, q, s.tau, s.ti) {
			s.dst = append(s.dst, PDQHit{ID: int32(id), Distance: d})
		}
	}
	s.nc = 0
}

// foundEarlier reports whether an earlier table of the plan also yields h,
// so each hit is appended by the first table that finds it and by no other;
// within one table an id lies in one bucket and each bucket is probed once.
func (ix *PDQIndex) foundEarlier(h, q *pdq.Hash, tau []int8, ti int) bool {
	x := pdq.Hash{h[0] ^ q[0], h[1] ^ q[1], h[2] ^ q[2], h[3] ^ q[3]}
	for j := range ti {
		if tau[j] >= 0 && bits.OnesCount32(ix.tables[j].chunk(&x)) <= int(tau[j]) {
			return true
		}
	}
	return false
}

// plan returns the cached plan for threshold (0..256), computing it once.
func (ix *PDQIndex) plan(threshold int) *pdqPlan {
	if p := ix.plans[threshold].Load(); p != nil {
		return p
	}
	p := &pdqPlan{linear: true}
	if len(ix.tables) > 0 {
		tau, cost, ok := planRadii(ix.layout(), len(ix.hashes), threshold)
		if ok && cost < costLinear*float64(len(ix.hashes)) {
			p = &pdqPlan{tau: tau}
		}
	}
	// Racing first searches compute the same plan; either store is fine.
	ix.plans[threshold].Store(p)
	return p
}

// tableShape is what the cost model needs of a table.
type tableShape struct{ width, ext uint }

func (ix *PDQIndex) layout() []tableShape {
	l := make([]tableShape, len(ix.tables))
	for i := range ix.tables {
		l[i] = tableShape{ix.tables[i].width, ix.tables[i].ext}
	}
	return l
}

// binom[n][k] is n choose k as a float64, for chunk widths up to 32 bits.
var binom = func() (c [33][33]float64) {
	for n := range c {
		c[n][0] = 1
		for k := 1; k <= n; k++ {
			c[n][k] = c[n-1][k-1] + c[n-1][k]
		}
	}
	return c
}()

// ball is the size of the Hamming ball of radius r in n bits.
func ball(n uint, r int) float64 {
	var v float64
	for k := 0; k <= min(r, int(n)); k++ {
		v += binom[n][k]
	}
	return v
}

// tableCost is the expected cost of searching a table within radius tau for
// a bank of n uniformly distributed hashes.
func tableCost(s tableShape, tau int, n int) float64 {
	if tau < 0 {
		return 0
	}
	top := s.width - s.ext
	buckets := ball(top, tau)
	perBucket := float64(n) / float64(uint64(1)<<top)
	cands := float64(n) * ball(s.width, tau) / float64(uint64(1)<<s.width)
	return costTable + buckets*(costProbe+costScan*perBucket) + costCandidate*cands
}

// planRadii chooses the radius of each table minimising the expected cost
// for threshold r, by dynamic programming over the tables and the r+1
// units (tau+1) the pigeonhole bound needs. ok is false when the tables
// cannot supply r+1 units.
func planRadii(tables []tableShape, n, r int) (tau []int8, cost float64, ok bool) {
	units := r + 1
	m := len(tables)
	// best[i][u]: cheapest cost of tables i.. supplying u units.
	inf := math.Inf(1)
	best := make([][]float64, m+1)
	choice := make([][]int16, m+1)
	for i := range best {
		best[i] = make([]float64, units+1)
		choice[i] = make([]int16, units+1)
	}
	for u := 1; u <= units; u++ {
		best[m][u] = inf
	}
	for i := m - 1; i >= 0; i-- {
		maxU := int(tables[i].width) + 1 // tau = width admits every value
		costs := make([]float64, min(maxU, units)+1)
		for c := range costs {
			costs[c] = tableCost(tables[i], c-1, n)
		}
		for u := 0; u <= units; u++ {
			best[i][u] = inf
			for c := 0; c <= min(maxU, u); c++ {
				if s := costs[c] + best[i+1][u-c]; s < best[i][u] {
					best[i][u], choice[i][u] = s, int16(c)
				}
			}
		}
	}
	if math.IsInf(best[0][units], 1) {
		return nil, inf, false
	}
	tau = make([]int8, m)
	u := units
	for i := range m {
		c := int(choice[i][u])
		tau[i] = int8(c - 1)
		u -= c
	}
	return tau, best[0][units], true
}

// chooseLayout picks the tables for a bank of n hashes: the layout with
// the cheapest plan at the default threshold whose tables fit the memory
// budget. It returns each table's bucket bits and entry bits; none means a
// scan is cheaper.
func chooseLayout(n int, idBits uint) (tops, exts []uint) {
	if n < minIndexed {
		return nil, nil
	}
	maxExt := 32 - idBits
	budget := tableBudget * float64(n)
	bestCost := costLinear * float64(n)
	offBytes := func(top uint) float64 { return 4 * float64(uint64(1)<<top+1) }
	for m := uint(1); m <= maxTables; m++ {
		entryBytes := float64(4 * m * uint(n))
		for top := uint(4); top <= maxTopBits && m*top <= pdqBits; top++ {
			if entryBytes+float64(m)*offBytes(top) > budget {
				break
			}
			// Entry bits cost nothing, so take all there are; bits left
			// over widen the first tables' entry bits where they fit.
			ext := min(maxExt, pdqBits/m-top)
			left := pdqBits - m*(top+ext)
			shapes := make([]tableShape, m)
			t, e := make([]uint, m), make([]uint, m)
			for i := range shapes {
				t[i], e[i] = top, ext
				if uint(i) < left && ext < maxExt {
					e[i]++
				}
				shapes[i] = tableShape{t[i] + e[i], e[i]}
			}
			if _, cost, ok := planRadii(shapes, n, DefaultPDQThreshold); ok && cost < bestCost {
				bestCost, tops, exts = cost, t, e
			}
		}
	}
	return tops, exts
}

// LinearSearch appends every hash in hashes within threshold of q, in
// order: the reference the index must agree with.
func LinearSearch(dst []PDQHit, hashes []pdq.Hash, q pdq.Hash, threshold int) []PDQHit {
	if threshold < 0 {
		return dst
	}
	for i := range hashes {
		h := &hashes[i]
		d := bits.OnesCount64(h[0]^q[0]) + bits.OnesCount64(h[1]^q[1]) +
			bits.OnesCount64(h[2]^q[2]) + bits.OnesCount64(h[3]^q[3])
		if d <= threshold {
			dst = append(dst, PDQHit{ID: int32(i), Distance: d})
		}
	}
	return dst
}

var expStop = 3
