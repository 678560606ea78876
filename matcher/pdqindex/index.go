package pdqindex

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

// Hit is one banked hash within the threshold.
type Hit struct {
	// ID is the position of the hash in the slice given to Build (or
	// to LinearSearch).
	ID int32
	// Distance is the Hamming distance from the query (0..256).
	Distance int
}

// Index finds every banked PDQ hash within a Hamming distance of a query,
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
// instructions; most candidates are ruled out unread by counting the
// tables that yield them (see pdqSearcher).
//
// An Index is immutable once built and safe for concurrent Search.
type Index struct {
	hashes []pdq.Hash
	tables []pdqTable
	// idBits is how many low bits of a table entry hold the id: 24 while
	// every id fits, leaving the top byte for chunk bits that filter
	// candidates before their hash is read.
	idBits uint
	// posMask extracts a position from a table's offsets: the low
	// pdqPosBits when tables keep half counts above them.
	posMask uint32
	// arena holds the hashes and the tables' arrays (see pdqArena).
	arena *pdqArena
	// plans caches the radii per threshold, computed on first use: a plan
	// for every threshold up front would cost more than it saves.
	plans [pdqBits + 1]atomic.Pointer[pdqPlan]
}

// pdqBits is the length of a PDQ hash in bits.
const pdqBits = 256

// DefaultThreshold is the largest PDQ distance that matches by default (as
// in HMA and the PDQ paper): the threshold Build chooses the layout for.
// matcher.DefaultPDQThreshold is this constant.
const DefaultThreshold = 31

// pdqTable indexes one chunk. Its top width-ext bits select a bucket,
// entries[offsets[v]:offsets[v+1]], whose entries hold an id in the low
// idBits and the chunk's low ext bits above it. Keeping some chunk bits in
// the entry makes a chunk wider (so fewer random candidates match it)
// without growing the offsets, which cost 4 bytes per possible value.
//
// When positions fit in 24 bits (halves), the top byte of offsets[v] is
// free and holds 1 + the number of bucket v's entries whose top entry bit is
// 0 (0 if that does not fit): the bucket's entries are sorted, so this
// splits it into the halves of either value of that bit. A probe that
// needs exactly q's entry bits (most do) then reads half a bucket, ~10
// entries, usually one cache line instead of two.
type pdqTable struct {
	start, width uint // bits [start, start+width) counted from the MSB of Hash[0]
	ext          uint // low chunk bits kept in entries, not in the bucket number
	halves       bool
	offsets      []uint32
	entries      []uint32
}

// pdqPosBits is the width of a position in offsets when the table has
// halves.
const pdqPosBits = 24

// pdqPlan is how one threshold is searched: linear, or the radius tau per
// table (-1 skips the table) with the excess the radii supply (see
// pdqSearcher.excess).
type pdqPlan struct {
	linear bool
	tau    []int8
	excess int8
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
	// pdqCostWeak is an entry set aside unread: stored, then passed twice
	// through a filter that stays in cache.
	pdqCostWeak   = 0.1
	pdqCostTable  = 2.0
	pdqCostLinear = 0.06
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

// Build builds an index over hashes. It takes ownership of the slice:
// the caller must not modify it afterwards (for big banks the index keeps
// a copy and the slice may be dropped). IDs in results are positions in
// it. Tables are built in parallel, one goroutine per core.
func Build(hashes []pdq.Hash) *Index {
	n := len(hashes)
	tops, exts := pdqChooseLayout(n, pdqIDBits(n))
	return buildLayout(hashes, tops, exts, pdqIDBits(n))
}

// pdqIDBits is the id width of table entries for a bank of n hashes.
func pdqIDBits(n int) uint {
	if n > 1<<24 {
		return 32
	}
	return 24
}

// buildLayout builds an index whose table i has tops[i] bucket bits
// and exts[i] entry bits, chunks taken in order from the most significant
// bit, and ids in the low idBits of entries; the chunk widths must sum to at
// most 256, ids fit idBits and exts the bits above.
func buildLayout(hashes []pdq.Hash, tops, exts []uint, idBits uint) *Index {
	if len(tops) > pdqMaxTables {
		panic("pdqindex: too many PDQ index tables")
	}
	ix := &Index{hashes: hashes, idBits: idBits, posMask: ^uint32(0)}
	n := len(hashes)
	if n < 1<<pdqPosBits {
		ix.posMask = 1<<pdqPosBits - 1
	}
	var start uint
	for i, t := range tops {
		w := t + exts[i]
		ix.tables = append(ix.tables, pdqTable{start: start, width: w, ext: exts[i]})
		start += w
	}
	if len(ix.tables) == 0 {
		return ix.clip()
	}
	lens := []int{8 * n} // the hashes, as uint32s
	for _, t := range ix.tables {
		lens = append(lens, 1<<(t.width-t.ext)+1, n+1)
	}
	ix.arena = newPDQArena(lens)
	// Candidates are random reads too: the hashes move into the arena
	// (one copy; the caller's slice is garbage once it lets go of it).
	ix.hashes = ix.arena.hashes(hashes)
	ix.clip()
	hashes = ix.hashes
	lens = lens[1:]
	for i := range ix.tables {
		t := &ix.tables[i]
		t.offsets, t.entries = ix.arena.uint32s(lens[2*i]), ix.arena.uint32s(lens[2*i+1])
	}
	if m := ix.arena.mapped; m != nil {
		runtime.AddCleanup(ix, pdqUnmap, m)
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

// clip gives back the slack of a hashes slice the index keeps on the heap
// for its lifetime (a loader's capacity guessed high).
func (ix *Index) clip() *Index {
	if h := ix.hashes; cap(h)-len(h) > len(h)/8+1024 {
		ix.hashes = slices.Clip(slices.Clone(h))
	}
	return ix
}

// build fills the table, whose zeroed arrays are allocated, with a
// counting sort. Within a bucket entries are in ascending order, which
// puts equal entry bits together: entries are first distributed by entry
// bits (ordE, with their buckets in ordB), then stably by bucket.
func (t *pdqTable) build(hashes []pdq.Hash, tmp *pdqBuildScratch, idBits uint) {
	n := len(hashes)
	keys := tmp.keys[:n]
	// off[v+1] first counts bucket v, then after the prefix sum holds its
	// start; filling advances it to v's end, which is v+1's start, so no
	// cursor array is needed.
	off := t.offsets
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
	entries := t.entries
	for j, b := range ordB {
		entries[off[b+1]] = ordE[j]
		off[b+1]++
	}
	if t.ext > 0 && n < 1<<pdqPosBits {
		t.halves = true
		// Entries below split have the top entry bit 0. A count that
		// does not fit the byte (a pile) is left 0: the whole bucket.
		split := uint32(1) << (t.ext - 1) << idBits
		for v := range len(off) - 1 {
			lo, hi := off[v], off[v+1]&(1<<pdqPosBits-1)
			low := uint32(0)
			for _, e := range entries[lo:hi] {
				low += (e - split) >> 31
			}
			if low < 255 {
				off[v] |= (low + 1) << pdqPosBits
			}
		}
	}
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
func (ix *Index) Len() int { return len(ix.hashes) }

// Hash returns the banked hash with the given id.
func (ix *Index) Hash(id int32) pdq.Hash {
	h := ix.hashes[id]
	// The hashes may live outside the heap, unmapped once ix is collected.
	runtime.KeepAlive(ix)
	return h
}

// MemoryBytes is the memory the index holds, including the hashes.
func (ix *Index) MemoryBytes() int {
	m := int(unsafe.Sizeof(*ix))
	if ix.arena == nil || ix.arena.mapped == nil {
		m += cap(ix.hashes) * int(unsafe.Sizeof(pdq.Hash{}))
	}
	for i := range ix.tables {
		t := &ix.tables[i]
		m += int(unsafe.Sizeof(*t))
		if ix.arena == nil || ix.arena.mapped == nil {
			m += 4*cap(t.offsets) + 4*cap(t.entries)
		}
	}
	if ix.arena != nil {
		m += int(unsafe.Sizeof(*ix.arena)) + ix.arena.bytes()
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
func (ix *Index) Search(dst []Hit, q pdq.Hash, threshold int) []Hit {
	if threshold < 0 || len(ix.hashes) == 0 {
		return dst
	}
	threshold = min(threshold, pdqBits)
	p := ix.plan(threshold)
	if p.linear {
		dst = LinearSearch(dst, ix.hashes, q, threshold)
		runtime.KeepAlive(ix) // see Hash
		return dst
	}
	return ix.searchPlan(dst, q, threshold, p.tau, int(p.excess))
}

// The search is bound by random memory reads: at 10M hashes and threshold
// 31 a query probes ~2,100 buckets (~1,300 cache lines of offsets, ~3,000
// of entries once halves narrow them), sets ~2,900 ids aside and reads
// ~310 candidate hashes, each a random line in ~800 MB that takes ~300 ns
// on the machine measured (a TLB miss under nested paging, then DRAM).
// Such reads only overlap when each one's address is known without
// waiting for another, so the search runs in passes over a batch of
// probes (up to pdqProbeBatch, from one or more tables), each pass a tight
// loop whose loads depend neither on one another nor on a branch:
//
//  1. enumerate the batch's probes (bucket, radius left): no reads;
//  2. read every probed bucket's bounds (locate);
//  3. touch the cache lines of every bucket;
//  4. pick the candidates from the buckets, now cached, setting weak ids
//     aside (collect);
//  5. touch the hash of every candidate, per candidate batch;
//  6. compare the candidates with the query (check);
//
// and, once every table is probed, picks the weak ids found twice (sift)
// for passes 5 and 6.
//
// Batches are small enough that what passes 3 and 5 pulled in is still
// cached, its pages still in the TLB, when passes 4 and 6 use it. Each
// inner loop is its own small function with the table's values hoisted
// out of it: inside one big function the compiler kept loop counters on
// the stack, which made pass 4 cost as much as a memory pass. Fusing
// passes (touching a batch while picking from the one before, or touching
// hashes a few candidates ahead of comparing) measured slower: a load that
// misses holds up retirement, so compute between the loads cuts how many
// misses are in flight.
const (
	pdqProbeBatch = 512
	pdqCandBatch  = 512
	// pdqRunScan is the bucket size up to which the start of q's run of
	// entry bits is found by counting rather than binary search.
	pdqRunScan = 64
)

// pdqSearchScratch holds one search's batches; pooled because it is too big
// for a fresh goroutine's stack and searches are frequent.
type pdqSearchScratch struct {
	// The batch's probes: bucket number and radius left for the entry
	// bits, then the bucket's bounds.
	pv     [pdqProbeBatch]uint32
	prad   [pdqProbeBatch]int8
	lo, hi [pdqProbeBatch]uint32
	cand   [pdqCandBatch]uint32
	ct     [pdqCandBatch]uint8 // table that yielded each candidate, maybe pdqWeak
	// weak holds the ids set aside (see pdqSearcher.excess) and wt their
	// tables, tagged pdqWeak; both are as long as their capacity.
	weak []uint32
	wt   []uint8
	// seen and twice are the bitmaps that sift weak ids, kept clear
	// between searches.
	seen, twice []uint64
	// touch receives the loads that pull data into cache, so that the
	// compiler cannot drop them as unused.
	touch uint32
}

const (
	// pdqWeak tags the table of a candidate that was set aside.
	pdqWeak = 0x80
	// pdqWeakMin is the weak list's first length.
	pdqWeakMin = 1 << 12
	// pdqSiftBits is log2 of the sifting bitmaps' bits per weak id: at 64,
	// about one id in 64 is read needlessly because another shares its bit.
	pdqSiftBits = 6
	// pdqSiftMaxLog bounds the sifting bitmaps (2^22 bits, 512 KB each).
	pdqSiftMaxLog = 22
)

// pdqWeakPlanMax is the most weak entries a plan may expect, well below
// pdqWeakMax: at 10M hashes threshold 63 would set ~280k aside and spill,
// and measured 9% slower than the linear scan the model then prefers.
const pdqWeakPlanMax = 1 << 17

// pdqWeakMax bounds the weak list: past it (a pile of near duplicates)
// the ids set aside are read at once. A variable so tests can make it
// small.
var pdqWeakMax = 1 << 18

var pdqSearchPool = sync.Pool{New: func() any {
	return &pdqSearchScratch{weak: make([]uint32, pdqWeakMin), wt: make([]uint8, pdqWeakMin)}
}}

// pdqSegment is the part of a probe batch from one table, with q's bucket
// number and entry bits in it: probes [from, to), of which those from full
// on have no radius left for the entry bits.
type pdqSegment struct {
	t              *pdqTable
	ti             uint8
	qtop           uint64
	qext           uint32
	from, full, to int
}

// pdqSearcher is the state of one multi-index search.
//
// Most candidates need not be read. Let S be the units the plan supplies,
// sum(tau[i]+1). A hash h within threshold of q is, in each table that does
// not yield it, at least tau[i]+1 bits from q's chunk, so
//
//	threshold >= d(q,h) >= S - sum over the tables yielding h of (tau[i]+1-d[i]),
//
// where d[i] <= tau[i] is its chunk's distance, known from the probe that
// found it. Each table that yields h thus brings a slack tau[i]+1-d[i] of at
// least 1, and a hit needs S-threshold in all. When the plan supplies one
// unit more than the threshold needs (excess 1), an entry found at exactly
// its table's radius, slack 1, is a hit only if another table yields it
// too. Those are most entries, a ball's outer shell holding most of its
// volume, so they are set aside as weak, and only the ids that come up
// twice are read once every table has been probed. The rest (strong) are
// read as before. At 10M hashes and threshold 31 this trades one more
// table probed at radius 2 for ~90% of the ~3,000 candidate reads.
//
// A hit is appended once: by the first table yielding it strongly, or, if
// none does, by the first table yielding it at all (see owns).
type pdqSearcher struct {
	ix        *Index
	q         *pdq.Hash
	threshold int
	tau       []int8
	excess    int
	dst       []Hit
	sc        *pdqSearchScratch
	nc        int // candidates in sc.cand
	nw        int // weak ids in sc.weak
	segs      [pdqMaxTables]pdqSegment
	nseg      int
	// The probe enumeration: table cur.ti while active (next is the table
	// after it), bucket masks of weight k (up to kmax) in Gosper order, x
	// the next one.
	cur        pdqSegment
	active     bool
	next       int
	r, k, kmax int
	x, limit   uint64
}

// searchPlan runs the multi-index search with radius tau[i] in table i.
// It is only correct when sum(tau[i]+1) > threshold+excess, excess being
// 0 or 1.
func (ix *Index) searchPlan(dst []Hit, q pdq.Hash, threshold int, tau []int8, excess int) []Hit {
	sc := pdqSearchPool.Get().(*pdqSearchScratch)
	if len(sc.weak) > pdqWeakMax {
		sc.weak, sc.wt = sc.weak[:pdqWeakMax], sc.wt[:pdqWeakMax]
	}
	s := pdqSearcher{ix: ix, q: &q, threshold: threshold, tau: tau, excess: excess, dst: dst, sc: sc}
	for s.fill() {
		segs := s.segs[:s.nseg]
		for i := range segs {
			s.locate(&segs[i])
		}
		for i := range segs {
			g := &segs[i]
			sc.touch += pdqTouchBuckets(g.t.entries, sc.lo[g.from:g.to], sc.hi[g.from:g.to])
		}
		for i := range segs {
			s.collect(&segs[i])
		}
	}
	s.sift()
	s.check()
	dst = s.dst
	pdqSearchPool.Put(sc)
	// The tables may live outside the heap, unmapped once ix is collected.
	runtime.KeepAlive(ix)
	return dst
}

// fill gathers the next batch of probes, from as many tables as fit, and
// reports whether there were any.
func (s *pdqSearcher) fill() bool {
	n := 0
	s.nseg = 0
	for n < pdqProbeBatch && (s.active || s.nextTable()) {
		g := &s.segs[s.nseg]
		s.nseg++
		*g = s.cur
		g.from = n
		n, g.full = s.probes(n)
		g.to = n
	}
	return s.nseg > 0
}

// nextTable starts the enumeration of the next table the plan probes,
// reporting false when there is none.
func (s *pdqSearcher) nextTable() bool {
	for ; s.next < len(s.ix.tables); s.next++ {
		ti := s.next
		if s.tau[ti] < 0 {
			continue
		}
		s.next++
		t := &s.ix.tables[ti]
		qv := t.chunk(s.q)
		top := t.width - t.ext
		s.cur = pdqSegment{t: t, ti: uint8(ti), qtop: uint64(qv >> t.ext), qext: qv & (1<<t.ext - 1)}
		s.r = int(s.tau[ti])
		s.kmax, s.limit = min(s.r, int(top)), uint64(1)<<top
		s.k, s.x = 0, 0
		s.active = true
		return true
	}
	return false
}

// probes appends to the batch from position n buckets of the current
// table, until the batch is full or the table done: every bucket whose
// number differs from q's in k <= r bits, by Gosper's hack over the masks
// of each weight k, the remaining radius r-k spent on the entry bits.
// Masks come by increasing weight, so the probes with no radius left
// (k == r, most of them) are a tail, from full on. It returns the new
// batch size and full.
func (s *pdqSearcher) probes(n int) (int, int) {
	sc := s.sc
	full := pdqProbeBatch
	x, k, qtop := s.x, s.k, s.cur.qtop
	for n < pdqProbeBatch {
		if k == s.r {
			full = min(full, n)
		}
		sc.pv[n], sc.prad[n] = uint32(qtop^x), int8(s.r-k)
		n++
		if k > 0 {
			c := x & -x
			y := x + c
			x = (x^y)>>2>>bits.TrailingZeros64(c) | y
		}
		if k == 0 || x >= s.limit {
			if k++; k > s.kmax {
				s.active = false
				break
			}
			x = uint64(1)<<k - 1
		}
	}
	s.x, s.k = x, k
	return n, min(full, n)
}

// locate reads the bounds of the segment's buckets. The probes from full
// on need only q's entry bits; where the table records halves (see
// pdqTable) their bounds are narrowed to the half with q's top entry bit.
func (s *pdqSearcher) locate(g *pdqSegment) {
	sc, t, mask := s.sc, g.t, s.ix.posMask
	off := t.offsets
	lo, hi := sc.lo[:g.to], sc.hi[:g.to]
	for i := g.from; i < g.full; i++ {
		v := sc.pv[i]
		lo[i], hi[i] = off[v]&mask, off[v+1]&mask
	}
	switch {
	case !t.halves:
		for i := g.full; i < g.to; i++ {
			v := sc.pv[i]
			lo[i], hi[i] = off[v]&mask, off[v+1]&mask
		}
	case g.qext>>(t.ext-1) == 0:
		for i := g.full; i < g.to; i++ {
			v := sc.pv[i]
			a, b := off[v], off[v+1]
			l, h := a&mask, b&mask
			// A select, not a branch: half (0 when unrecorded) is
			// still being loaded.
			if half := a >> pdqPosBits; half != 0 {
				h = l + half - 1
			}
			lo[i], hi[i] = l, h
		}
	default:
		for i := g.full; i < g.to; i++ {
			v := sc.pv[i]
			a, b := off[v], off[v+1]
			l, h := a&mask, b&mask
			if half := a >> pdqPosBits; half != 0 {
				l += half - 1
			}
			lo[i], hi[i] = l, h
		}
	}
}

// pdqTouchBuckets reads the cache lines of each bucket (three reads, which
// cover any bucket of up to 33 entries; a bucket averages ~20 at 10M
// hashes, a half ~10) and returns their sum. entries has one spare
// element, so l is a valid index for an empty bucket.
func pdqTouchBuckets(entries []uint32, lo, hi []uint32) uint32 {
	var touch uint32
	for i, l := range lo {
		last := max(hi[i], l+1) - 1
		touch += entries[l] + entries[min(l+16, last)] + entries[last]
	}
	return touch
}

// collect appends the candidates of the segment's buckets, checking the
// candidates gathered whenever the candidate batch fills.
func (s *pdqSearcher) collect(g *pdqSegment) {
	sc, t, idBits := s.sc, g.t, s.ix.idBits
	for i := g.from; i < g.full; i++ {
		s.take(g, t.entries[sc.lo[i]:sc.hi[i]], int(sc.prad[i]))
	}
	if t.ext == 0 {
		// No entry bits: every entry qualifies.
		for i := g.full; i < g.to; i++ {
			s.take(g, t.entries[sc.lo[i]:sc.hi[i]], 0)
		}
		return
	}
	// Only entries with exactly q's entry bits qualify: one run per
	// bucket, as entries are sorted with the entry bits on top. They lie
	// at exactly the table's radius, so with excess they are weak.
	for i := g.full; i < g.to; {
		var done int
		if s.excess == 0 {
			s.nc, done = pdqRuns(t.entries, sc.lo[i:g.to], sc.hi[i:g.to], g.qext, idBits, g.ti, sc.cand[:], sc.ct[:], s.nc)
		} else {
			s.nw, done = pdqRuns(t.entries, sc.lo[i:g.to], sc.hi[i:g.to], g.qext, idBits, g.ti|pdqWeak, sc.weak, sc.wt, s.nw)
		}
		if i += done; i < g.to {
			if s.makeRoom() {
				// Bucket i might not fit in the room left.
				continue
			}
			// A pile bigger than the room there can be: take its run in
			// pieces.
			bucket := t.entries[sc.lo[i]:sc.hi[i]]
			a, b := pdqRunSearch(bucket, g.qext, idBits)
			s.take(g, bucket[a:b], 0)
			i++
		}
	}
}

// makeRoom empties or grows the list that runs go to, reporting false when
// it is empty and as big as it may be.
func (s *pdqSearcher) makeRoom() bool {
	if s.excess == 0 {
		if s.nc == 0 {
			return false
		}
		s.check()
		return true
	}
	if s.nw == 0 && len(s.sc.weak) >= pdqWeakMax {
		return false
	}
	s.weakRoom()
	return true
}

// weakRoom doubles the weak list or, at its maximum, reads the ids in it.
func (s *pdqSearcher) weakRoom() {
	sc := s.sc
	if n := len(sc.weak); n < pdqWeakMax {
		more := min(n, pdqWeakMax-n)
		sc.weak = append(sc.weak, make([]uint32, more)...)
		sc.wt = append(sc.wt, make([]uint8, more)...)
		return
	}
	s.spill()
}

// spill reads every id set aside so far. They are not sifted, because an id
// among them may come up again only after them; the ids set aside later
// may be, as each of those has all its later findings with it.
func (s *pdqSearcher) spill() {
	sc := s.sc
	for i := range s.nw {
		if s.nc == pdqCandBatch {
			s.check()
		}
		sc.cand[s.nc], sc.ct[s.nc] = sc.weak[i], sc.wt[i]
		s.nc++
	}
	s.nw = 0
}

// pdqRuns appends to cand and ct from position nc the run of q's entry
// bits (qext) of each bucket entries[lo[i]:hi[i]], tagged tag, and returns
// the new count and the number of buckets done: it stops at the first
// bucket whose entries from the run on would not fit. This loop is most of
// the search's instructions: it counts the entries below the run (no
// branch on the entries, each a coin toss) and then copies the run until
// its end, whose one mispredicted branch costs less than counting the end
// as well.
func pdqRuns(entries, lo, hi []uint32, qext uint32, idBits uint, tag uint8, cand []uint32, ct []uint8, nc int) (int, int) {
	if !pdqVector || idBits >= 32 || len(cand) < 16 || len(ct) < len(cand) || len(lo) == 0 {
		return pdqRunsScalar(entries, lo, hi, qext, idBits, tag, cand, ct, nc)
	}
	// The kernel reads hi[:len(lo)] unchecked; bounds come from the table.
	_ = hi[len(lo)-1]
	idMask := uint32(1)<<idBits - 1
	i := 0
	for {
		var done int
		nc, done = pdqRunsAVX512(&entries[0], &lo[i], &hi[i], len(lo)-i, qext<<idBits, idMask, tag, &cand[0], &ct[0], nc, len(cand)-16)
		if i += done; i == len(lo) {
			return nc, i
		}
		// Bucket i has more than 16 entries, or cand less than 16 slots.
		if nc, done = pdqRunsScalar(entries, lo[i:i+1], hi[i:i+1], qext, idBits, tag, cand, ct, nc); done == 0 {
			return nc, i
		}
		if i++; i == len(lo) {
			return nc, i
		}
	}
}

// pdqRunsScalar is pdqRuns in plain Go.
func pdqRunsScalar(entries, lo, hi []uint32, qext uint32, idBits uint, tag uint8, cand []uint32, ct []uint8, nc int) (int, int) {
	idMask := uint32(1)<<idBits - 1
	first := uint64(qext) << idBits
	end := first + 1<<idBits
	for i, l := range lo {
		bucket := entries[l:hi[i]]
		a := 0
		if len(bucket) > pdqRunScan {
			a, _ = slices.BinarySearch(bucket, uint32(first))
		} else {
			for _, e := range bucket {
				a += int((uint64(e) - first) >> 63)
			}
		}
		if len(bucket)-a > len(cand)-nc {
			return nc, i
		}
		for _, e := range bucket[a:] {
			if uint64(e) >= end {
				break
			}
			cand[nc], ct[nc] = e&idMask, tag
			nc++
		}
	}
	return nc, len(lo)
}

// take appends the ids of the bucket's entries whose entry bits are within
// rad of q's, strong or weak, checking the candidates gathered or growing
// the weak list whenever either fills: a bucket bigger than the room left
// (a pile of near duplicates) is taken in pieces.
func (s *pdqSearcher) take(g *pdqSegment, bucket []uint32, rad int) {
	sc, idBits := s.sc, s.ix.idBits
	for len(bucket) > 0 {
		// Spilling fills cand, so it goes first.
		if s.excess > 0 && s.nw == len(sc.weak) {
			s.weakRoom()
		}
		if s.nc == pdqCandBatch {
			s.check()
		}
		room := pdqCandBatch - s.nc
		if s.excess > 0 {
			room = min(room, len(sc.weak)-s.nw)
		}
		part := bucket[:min(len(bucket), room)]
		if s.excess == 0 {
			s.nc = pdqTake(sc.cand[:], sc.ct[:], s.nc, part, g.ti, g.qext, rad, idBits)
		} else {
			s.nc, s.nw = pdqTakeSplit(sc.cand[:], sc.ct[:], s.nc, sc.weak, sc.wt, s.nw, part, g.ti, g.qext, rad, idBits)
		}
		bucket = bucket[len(part):]
	}
}

// pdqRunSearch returns the run bucket[a:b] of entries whose entry bits
// (above idBits) equal qext, by binary search: for piles.
func pdqRunSearch(bucket []uint32, qext uint32, idBits uint) (a, b int) {
	end := uint64(qext+1) << idBits
	a, _ = slices.BinarySearch(bucket, qext<<idBits)
	b = a
	for b < len(bucket) && uint64(bucket[b]) < end {
		b++
	}
	return a, b
}

// pdqTake appends to cand and ct from position n the ids of the entries
// whose entry bits are within rad of qext, with their table ti, and
// returns the new count; the caller guarantees room for every entry. It is
// branch-free: whether an entry qualifies is a coin toss a branch would
// often mispredict.
func pdqTake(cand []uint32, ct []uint8, n int, bucket []uint32, ti uint8, qext uint32, rad int, idBits uint) int {
	idMask := uint32(1)<<idBits - 1
	c, t := cand[n:n+len(bucket)], ct[n:n+len(bucket)]
	j := 0
	for _, e := range bucket {
		pc := bits.OnesCount32(e>>idBits ^ qext)
		c[j], t[j] = e&idMask, ti
		j += 1 + (rad-pc)>>63
	}
	return n + j
}

// pdqTakeSplit is pdqTake for a plan with excess: the entries whose entry
// bits are exactly rad from qext lie at the table's radius and go to the
// weak list, tagged, those nearer to cand. The caller guarantees room in
// both for every entry.
func pdqTakeSplit(cand []uint32, ct []uint8, nc int, weak []uint32, wt []uint8, nw int, bucket []uint32, ti uint8, qext uint32, rad int, idBits uint) (int, int) {
	if !pdqVector || idBits >= 32 || len(bucket) == 0 {
		return pdqTakeSplitScalar(cand, ct, nc, weak, wt, nw, bucket, ti, qext, rad, idBits)
	}
	// The kernel writes only what it fills; the checks keep it in bounds.
	_, _, _, _ = cand[nc+len(bucket)-1], ct[nc+len(bucket)-1], weak[nw+len(bucket)-1], wt[nw+len(bucket)-1]
	return pdqTakeSplitAVX512(&bucket[0], len(bucket), qext, uint32(idBits), uint32(rad), ti, &cand[0], &ct[0], nc, &weak[0], &wt[0], nw)
}

// pdqTakeSplitScalar is pdqTakeSplit in plain Go.
func pdqTakeSplitScalar(cand []uint32, ct []uint8, nc int, weak []uint32, wt []uint8, nw int, bucket []uint32, ti uint8, qext uint32, rad int, idBits uint) (int, int) {
	idMask := uint32(1)<<idBits - 1
	c, t := cand[nc:nc+len(bucket)], ct[nc:nc+len(bucket)]
	w, u := weak[nw:nw+len(bucket)], wt[nw:nw+len(bucket)]
	j, k := 0, 0
	for _, e := range bucket {
		pc := bits.OnesCount32(e>>idBits ^ qext)
		id := e & idMask
		c[j], t[j] = id, ti
		w[k], u[k] = id, ti|pdqWeak
		j += 1 + (rad-1-pc)>>63
		k += int(uint(pc^rad-1) >> 63)
	}
	return nc + j, nw + k
}

// sift reads, once every table has been probed, the weak ids that came up
// at least twice. Two bitmaps indexed by a hash of the id record which
// came up once and which again; an id that shares its bit with another is
// read needlessly, harmless as owns decides.
func (s *pdqSearcher) sift() {
	n := s.nw
	if n == 0 {
		return
	}
	s.nw = 0
	sc := s.sc
	lg := min(max(bits.Len(uint(n))+pdqSiftBits, 12), pdqSiftMaxLog)
	words := 1 << (lg - 6)
	if len(sc.seen) < words {
		sc.seen, sc.twice = make([]uint64, words), make([]uint64, words)
	}
	seen, twice := sc.seen[:words], sc.twice[:words]
	shift := 32 - lg
	ids := sc.weak[:n]
	for _, id := range ids {
		h := id * 0x9e3779b1 >> shift
		w, b := h>>6, uint64(1)<<(h&63)
		twice[w] |= seen[w] & b
		seen[w] |= b
	}
	for i, id := range ids {
		h := id * 0x9e3779b1 >> shift
		if twice[h>>6]&(1<<(h&63)) != 0 {
			if s.nc == pdqCandBatch {
				s.check()
			}
			sc.cand[s.nc], sc.ct[s.nc] = id, sc.wt[i]
			s.nc++
		}
	}
	clear(seen)
	clear(twice)
}

// check verifies the gathered candidates against the full hashes.
func (s *pdqSearcher) check() {
	hashes, sc := s.ix.hashes, s.sc
	cand := sc.cand[:s.nc]
	s.nc = 0
	q := s.q
	q0, q1, q2, q3 := q[0], q[1], q[2], q[3]
	sc.touch += pdqTouchHashes(hashes, cand)
	for i, id := range cand {
		h := &hashes[id]
		d := bits.OnesCount64(h[0]^q0) + bits.OnesCount64(h[1]^q1) +
			bits.OnesCount64(h[2]^q2) + bits.OnesCount64(h[3]^q3)
		if d <= s.threshold && s.owns(h, sc.ct[i]) {
			s.dst = append(s.dst, Hit{ID: int32(id), Distance: d})
		}
	}
}

// pdqTouchHashes reads the first word of each candidate's hash (a hash is
// one cache line) and returns their sum: a loop of a few instructions per
// candidate keeps several times more reads in flight than the comparison.
func pdqTouchHashes(hashes []pdq.Hash, cand []uint32) uint32 {
	var touch uint64
	for _, id := range cand {
		touch += hashes[id][0]
	}
	return uint32(touch)
}

// owns reports whether the table tagged tag appends the hit h, so that each
// hit is appended once: a strong finding appends it unless an earlier table
// yields it strongly too, a weak one only if no table yields it strongly
// and no earlier one at all. Within one table an id lies in one bucket and
// each bucket is probed once.
func (s *pdqSearcher) owns(h *pdq.Hash, tag uint8) bool {
	q := s.q
	x := pdq.Hash{h[0] ^ q[0], h[1] ^ q[1], h[2] ^ q[2], h[3] ^ q[3]}
	ti, weak := int(tag&^pdqWeak), tag&pdqWeak != 0
	last := ti
	if weak {
		last = len(s.tau)
	}
	for j := range last {
		if s.tau[j] < 0 {
			continue
		}
		d := bits.OnesCount32(s.ix.tables[j].chunk(&x))
		if d <= int(s.tau[j])-s.excess || weak && j < ti && d <= int(s.tau[j]) {
			return false
		}
	}
	return true
}

// plan returns the cached plan for threshold (0..256), computing it once.
func (ix *Index) plan(threshold int) *pdqPlan {
	if p := ix.plans[threshold].Load(); p != nil {
		return p
	}
	p := &pdqPlan{linear: true}
	best := pdqCostLinear * float64(len(ix.hashes))
	for excess := range 2 {
		if len(ix.tables) == 0 {
			break
		}
		tau, cost, ok := pdqPlanRadii(ix.layout(), len(ix.hashes), threshold, excess)
		if ok && cost < best {
			best, p = cost, &pdqPlan{tau: tau, excess: int8(excess)}
		}
	}
	// Racing first searches compute the same plan; either store is fine.
	ix.plans[threshold].Store(p)
	return p
}

// pdqShape is what the cost model needs of a table.
type pdqShape struct{ width, ext uint }

func (ix *Index) layout() []pdqShape {
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
// a bank of n uniformly distributed hashes, with a plan's excess (0 or 1).
func pdqTableCost(s pdqShape, tau, n, excess int) float64 {
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
	per := float64(n) / float64(uint64(1)<<s.width)
	strong := per * pdqBall(s.width, tau-excess)
	weak := per*pdqBall(s.width, tau) - strong
	return cost + pdqCostCandidate*strong + pdqCostWeak*weak
}

// pdqPlanRadii chooses the radius of each table minimising the expected cost
// for threshold r, by dynamic programming over the tables and the
// r+1+excess units (tau+1) the pigeonhole bound needs with that excess (0
// or 1, see pdqSearcher). ok is false when the tables cannot supply them.
func pdqPlanRadii(tables []pdqShape, n, r, excess int) (tau []int8, cost float64, ok bool) {
	units := r + 1 + excess
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
			costs[c] = pdqTableCost(tables[i], c-1, n, excess)
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
	weak := 0.0
	for i := range m {
		c := int(choice[i][u])
		tau[i] = int8(c - 1)
		u -= c
		s := tables[i]
		weak += float64(n) * (pdqBall(s.width, c-1) - pdqBall(s.width, c-1-excess)) / float64(uint64(1)<<s.width)
	}
	if weak > pdqWeakPlanMax {
		// The weak list would spill, reading what was set aside: the
		// model's cheap weak entries would not be.
		return nil, inf, false
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
			for excess := range 2 {
				if _, cost, ok := pdqPlanRadii(shapes, n, DefaultThreshold, excess); ok && cost < bestCost {
					bestCost, tops, exts = cost, t, e
				}
			}
		}
	}
	return tops, exts
}

// LinearSearch appends every hash in hashes within threshold of q, in
// order: the reference the index must agree with.
func LinearSearch(dst []Hit, hashes []pdq.Hash, q pdq.Hash, threshold int) []Hit {
	if threshold < 0 {
		return dst
	}
	for i := range hashes {
		h := &hashes[i]
		d := bits.OnesCount64(h[0]^q[0]) + bits.OnesCount64(h[1]^q[1]) +
			bits.OnesCount64(h[2]^q[2]) + bits.OnesCount64(h[3]^q[3])
		if d <= threshold {
			dst = append(dst, Hit{ID: int32(i), Distance: d})
		}
	}
	return dst
}
