package matcher

import (
	"math"
	"math/bits"
	"runtime"
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
// time within 80 bytes per hash (for millions of hashes: 11 chunks of 23-24
// bits, 4-byte entries), the radii per threshold by a cost model that also
// decides when a plain scan is cheaper. Each probe and each candidate is a
// random memory read, so the design minimises those rather than
// instructions.
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

// Cost model, in units of one candidate check: a random read of a 32-byte
// hash, ~15-35 ns on a loaded virtual machine with 10M hashes. Calibrated
// on banks of 1M and 10M random hashes: a bucket costs a random read of
// its bounds and of its first line, more lines cost less (same page,
// prefetched together), finding q's entry bits in a bucket is a short
// binary search or a scan, and the linear scan streams hashes at about a
// twentieth of a random read each.
const (
	pdqCostProbe     = 1.2
	pdqCostLine      = 0.25
	pdqCostSearch    = 0.05 // per binary search step
	pdqCostScan      = 0.03 // per entry filtered
	pdqCostCandidate = 1.0
	pdqCostTable     = 2.0
	pdqCostLinear    = 0.06
	// pdqMinIndexed is the bank size below which no tables are built: a scan of
	// a few hundred hashes beats any probing.
	pdqMinIndexed = 512
	// pdqMaxTopBits bounds the offsets of one table (2^24 entries, 64MB).
	pdqMaxTopBits = 24
	// pdqMaxTables bounds the number of chunks; more only add entry bytes.
	pdqMaxTables = 16
	// pdqTableBudget is the bytes per hash the tables may use so that, with
	// the 32-byte hash, the struct and slice headers, the whole index stays
	// under 80 bytes per hash.
	pdqTableBudget = 47.5
)

// NewPDQIndex builds an index over hashes. It takes ownership of the slice:
// the caller must not modify it afterwards. IDs in results are positions in
// it. Tables are built in parallel, one goroutine per core.
func NewPDQIndex(hashes []pdq.Hash) *PDQIndex {
	n := len(hashes)
	tops, exts := pdqChooseLayout(n, pdqIDBits(n))
	return newPDQIndexLayout(hashes, tops, exts, pdqIDBits(n))
}

// pdqIDBits is the id width of table entries for a bank of n hashes.
func pdqIDBits(n int) uint {
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
	if len(tops) > pdqMaxTables {
		panic("matcher: too many PDQ index tables")
	}
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
			tmp := &pdqBuildScratch{make([]uint32, n), make([]uint32, n), make([]uint32, n)}
			for {
				t := int(next.Add(1)) - 1
				if t >= len(ix.tables) {
					return
				}
				ix.tables[t].build(hashes, tmp, ix.idBits)
			}
		})
	}
	wg.Wait()
	return ix
}

// build fills the table with a counting sort. Within a bucket entries are
// in ascending order, which puts equal entry bits together: entries are
// first distributed by entry bits (ordE, with their buckets in ordB), then
// stably by bucket.
func (t *pdqTable) build(hashes []pdq.Hash, tmp *pdqBuildScratch, idBits uint) {
	n := len(hashes)
	keys := tmp.keys[:n]
	// off[v+1] first counts bucket v, then after the prefix sum holds its
	// start; filling advances it to v's end, which is v+1's start, so no
	// cursor array is needed.
	off := make([]uint32, 1<<(t.width-t.ext)+1)
	var extPos [256]uint32
	extMask := uint32(1)<<t.ext - 1
	for i := range hashes {
		k := t.chunk(&hashes[i])
		keys[i] = k
		off[k>>t.ext+1]++
		extPos[k&extMask]++
	}
	var sum uint32
	for v := 1; v < len(off); v++ {
		c := off[v]
		off[v] = sum
		sum += c
	}
	sum = 0
	for e, c := range extPos {
		extPos[e] = sum
		sum += c
	}
	ordE, ordB := tmp.ordE[:n], tmp.ordB[:n]
	for i, k := range keys {
		p := extPos[k&extMask]
		extPos[k&extMask]++
		ordE[p] = uint32(i) | (k&extMask)<<idBits
		ordB[p] = k >> t.ext
	}
	entries := make([]uint32, n+1)
	for j, b := range ordB {
		entries[off[b+1]] = ordE[j]
		off[b+1]++
	}
	t.offsets, t.entries = off, entries
}

// pdqBuildScratch is one build worker's temporary arrays.
type pdqBuildScratch struct{ keys, ordE, ordB []uint32 }

// chunk extracts the table's bits of h as an integer.
func (t *pdqTable) chunk(h *pdq.Hash) uint32 {
	return pdqChunk(h, t.start, t.width)
}

// pdqChunk returns bits [start, start+width) of h, numbered from the most
// significant bit of h[0], as an integer (1 <= width <= 32).
func pdqChunk(h *pdq.Hash, start, width uint) uint32 {
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

// The search runs in passes over batches of buckets gathered from all
// tables, so that the random reads of each pass are independent of one
// another and overlap in the memory system, and so that a branch on loaded
// data finds it arrived instead of discarding the reads issued behind it:
// locate buckets (offsets), pull their cache lines in, pick candidates from
// them, then read and compare the candidates' hashes.
const (
	pdqBucketBatch = 1024
	pdqCandBatch   = 4096
)

// pdqSearchScratch holds one search's batches; pooled because it is too big
// for a fresh goroutine's stack and searches are frequent.
type pdqSearchScratch struct {
	bt     [pdqBucketBatch]uint8 // table of each bucket
	rad    [pdqBucketBatch]int8  // radius left for the entry bits
	lo, hi [pdqBucketBatch]uint32
	ct     [pdqCandBatch]uint8 // table that yielded each candidate
	cand   [pdqCandBatch]uint32
	qext   [pdqMaxTables]uint32 // q's entry bits per table
	// touch receives the loads that pull data into cache, so that the
	// compiler cannot drop them as unused.
	touch uint32
}

var pdqSearchPool = sync.Pool{New: func() any { return new(pdqSearchScratch) }}

// pdqSearcher is the state of one multi-index search.
type pdqSearcher struct {
	ix        *PDQIndex
	q         *pdq.Hash
	threshold int
	tau       []int8
	dst       []PDQHit
	sc        *pdqSearchScratch
	nb, nc    int
}

// searchPlan runs the multi-index search with radius tau[i] in table i.
// It is only correct when sum(tau[i]+1) > threshold.
func (ix *PDQIndex) searchPlan(dst []PDQHit, q pdq.Hash, threshold int, tau []int8) []PDQHit {
	sc := pdqSearchPool.Get().(*pdqSearchScratch)
	s := pdqSearcher{ix: ix, q: &q, threshold: threshold, tau: tau, dst: dst, sc: sc}
	for ti := range ix.tables {
		r := int(tau[ti])
		if r < 0 {
			continue
		}
		t := &ix.tables[ti]
		qv := t.chunk(&q)
		sc.qext[ti] = qv & (1<<t.ext - 1)
		qtop := uint64(qv >> t.ext)
		top := t.width - t.ext
		limit := uint64(1) << top
		off := t.offsets
		nb := s.nb
		// Every bucket mask of weight k <= r by Gosper's hack; the
		// remaining radius r-k is spent on the entry bits.
		for k := 0; k <= min(r, int(top)); k++ {
			rad := int8(r - k)
			x := uint64(1)<<k - 1
			for x < limit {
				v := qtop ^ x
				sc.bt[nb], sc.rad[nb], sc.lo[nb], sc.hi[nb] = uint8(ti), rad, off[v], off[v+1]
				nb++
				if nb == pdqBucketBatch {
					s.nb = nb
					s.buckets()
					nb = 0
				}
				if k == 0 {
					break
				}
				c := x & -x
				y := x + c
				x = (x^y)>>2>>bits.TrailingZeros64(c) | y
			}
		}
		s.nb = nb
	}
	s.buckets()
	s.check()
	pdqSearchPool.Put(sc)
	return s.dst
}

// buckets turns the located buckets into candidates.
func (s *pdqSearcher) buckets() {
	sc, tables := s.sc, s.ix.tables
	// Touch the cache lines of every bucket first (up to four lines; a
	// bucket holds ~20 entries): a few instructions per line, so many
	// reads are in flight at once, and the lookups below then run on data
	// already arrived. entries has one spare element, so hi is a valid
	// index.
	var touch uint32
	for b := range s.nb {
		entries := tables[sc.bt[b]].entries
		lo, hi := sc.lo[b], sc.hi[b]
		touch += entries[lo] + entries[min(lo+16, hi)] + entries[min(lo+32, hi)] +
			entries[min(lo+48, hi)] + entries[hi]
	}
	sc.touch += touch
	idBits := s.ix.idBits
	idMask := uint32(1)<<idBits - 1
	nc := s.nc
	for b := range s.nb {
		ti := sc.bt[b]
		t := &tables[ti]
		bucket := t.entries[sc.lo[b]:sc.hi[b]]
		rad := int(sc.rad[b])
		qext := sc.qext[ti]
		if pdqCandBatch-nc < len(bucket) {
			s.nc = nc
			s.check()
			nc = 0
			// A bucket bigger than the batch (a pile of near duplicates)
			// is taken in pieces.
			for len(bucket) > pdqCandBatch {
				s.nc = s.filter(bucket[:pdqCandBatch], ti, rad, 0)
				s.check()
				bucket = bucket[pdqCandBatch:]
			}
		}
		switch {
		case rad >= int(t.ext):
			// Every entry is within the radius: no filtering.
			for _, e := range bucket {
				sc.cand[nc], sc.ct[nc] = e&idMask, ti
				nc++
			}
		case rad == 0:
			// Most buckets are probed with the whole radius spent on the
			// bucket bits, so only entries with exactly q's entry bits
			// qualify. Entries are sorted, entry bits on top, so these
			// form one run, found by binary search instead of a scan.
			key := qext << idBits
			i, n := 0, len(bucket)
			for n > 1 {
				// Branch-free step: whether an entry is below the key is a
				// coin toss that a branch would mispredict half the time.
				half := n >> 1
				below := int((uint64(bucket[i+half]) - uint64(key)) >> 63)
				i += half & -below
				n -= half
			}
			if i < len(bucket) && bucket[i] < key {
				i++
			}
			for ; i < len(bucket) && bucket[i]>>idBits == qext; i++ {
				sc.cand[nc], sc.ct[nc] = bucket[i]&idMask, ti
				nc++
			}
		default:
			nc = s.filter(bucket, ti, rad, nc)
		}
	}
	s.nc = nc
	s.nb = 0
}

// filter appends from candidate nc the ids of the entries of table ti
// whose entry bits are within rad of q's and returns the new count. It is
// branch-free: a mispredicted branch on an entry still being loaded would
// discard the loads issued behind it.
func (s *pdqSearcher) filter(bucket []uint32, ti uint8, rad, nc int) int {
	idBits := s.ix.idBits
	idMask := uint32(1)<<idBits - 1
	qext := s.sc.qext[ti]
	cand, ct := s.sc.cand[nc:], s.sc.ct[nc:]
	j := 0
	for _, e := range bucket {
		pc := bits.OnesCount32(e>>idBits ^ qext)
		cand[j], ct[j] = e&idMask, ti
		j += 1 + (rad-pc)>>63
	}
	return nc + j
}

// check verifies the candidates against the full hashes.
func (s *pdqSearcher) check() {
	hashes := s.ix.hashes
	q := s.q
	q0, q1, q2, q3 := q[0], q[1], q[2], q[3]
	threshold := s.threshold
	sc := s.sc
	// As for buckets: a loop of a few instructions per candidate keeps
	// several times more hash reads in flight than the comparison below.
	var touch uint64
	for _, id := range sc.cand[:s.nc] {
		touch += hashes[id][0]
	}
	sc.touch += uint32(touch)
	for i, id := range sc.cand[:s.nc] {
		h := &hashes[id]
		d := bits.OnesCount64(h[0]^q0) + bits.OnesCount64(h[1]^q1) +
			bits.OnesCount64(h[2]^q2) + bits.OnesCount64(h[3]^q3)
		if d <= threshold && !s.ix.foundEarlier(h, q, s.tau, int(sc.ct[i])) {
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
		tau, cost, ok := pdqPlanRadii(ix.layout(), len(ix.hashes), threshold)
		if ok && cost < pdqCostLinear*float64(len(ix.hashes)) {
			p = &pdqPlan{tau: tau}
		}
	}
	// Racing first searches compute the same plan; either store is fine.
	ix.plans[threshold].Store(p)
	return p
}

// pdqShape is what the cost model needs of a table.
type pdqShape struct{ width, ext uint }

func (ix *PDQIndex) layout() []pdqShape {
	l := make([]pdqShape, len(ix.tables))
	for i := range ix.tables {
		l[i] = pdqShape{ix.tables[i].width, ix.tables[i].ext}
	}
	return l
}

// pdqBinom[n][k] is n choose k as a float64, for chunk widths up to 32 bits.
var pdqBinom = func() (c [33][33]float64) {
	for n := range c {
		c[n][0] = 1
		for k := 1; k <= n; k++ {
			c[n][k] = c[n-1][k-1] + c[n-1][k]
		}
	}
	return c
}()

// pdqBall is the size of the Hamming ball of radius r in n bits.
func pdqBall(n uint, r int) float64 {
	var v float64
	for k := 0; k <= min(r, int(n)); k++ {
		v += pdqBinom[n][k]
	}
	return v
}

// pdqTableCost is the expected cost of searching a table within radius tau for
// a bank of n uniformly distributed hashes.
func pdqTableCost(s pdqShape, tau int, n int) float64 {
	if tau < 0 {
		return 0
	}
	top := s.width - s.ext
	perBucket := float64(n) / float64(uint64(1)<<top)
	bucket := pdqCostProbe + pdqCostLine*perBucket/16
	cost := pdqCostTable
	for k := 0; k <= min(tau, int(top)); k++ {
		lookup := 0.0 // entry bits need no look when there are none or all pass
		switch rad := tau - k; {
		case s.ext > 0 && rad == 0:
			lookup = pdqCostSearch * math.Log2(perBucket+1)
		case s.ext > 0 && rad < int(s.ext):
			lookup = pdqCostScan * perBucket
		}
		cost += pdqBinom[top][k] * (bucket + lookup)
	}
	cands := float64(n) * pdqBall(s.width, tau) / float64(uint64(1)<<s.width)
	return cost + pdqCostCandidate*cands
}

// pdqPlanRadii chooses the radius of each table minimising the expected cost
// for threshold r, by dynamic programming over the tables and the r+1
// units (tau+1) the pigeonhole bound needs. ok is false when the tables
// cannot supply r+1 units.
func pdqPlanRadii(tables []pdqShape, n, r int) (tau []int8, cost float64, ok bool) {
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
			costs[c] = pdqTableCost(tables[i], c-1, n)
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

// pdqChooseLayout picks the tables for a bank of n hashes: the layout with
// the cheapest plan at the default threshold whose tables fit the memory
// budget. It returns each table's bucket bits and entry bits; none means a
// scan is cheaper.
func pdqChooseLayout(n int, idBits uint) (tops, exts []uint) {
	if n < pdqMinIndexed {
		return nil, nil
	}
	maxExt := 32 - idBits
	budget := pdqTableBudget * float64(n)
	bestCost := pdqCostLinear * float64(n)
	offBytes := func(top uint) float64 { return 4 * float64(uint64(1)<<top+1) }
	for m := uint(1); m <= pdqMaxTables; m++ {
		entryBytes := float64(4 * m * uint(n))
		for top := uint(4); top <= pdqMaxTopBits && m*top <= pdqBits; top++ {
			if entryBytes+float64(m)*offBytes(top) > budget {
				break
			}
			// Entry bits cost nothing, so take all there are; bits left
			// over widen the first tables' entry bits where they fit.
			ext := min(maxExt, pdqBits/m-top)
			left := pdqBits - m*(top+ext)
			shapes := make([]pdqShape, m)
			t, e := make([]uint, m), make([]uint, m)
			for i := range shapes {
				t[i], e[i] = top, ext
				if uint(i) < left && ext < maxExt {
					e[i]++
				}
				shapes[i] = pdqShape{t[i] + e[i], e[i]}
			}
			if _, cost, ok := pdqPlanRadii(shapes, n, DefaultPDQThreshold); ok && cost < bestCost {
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
