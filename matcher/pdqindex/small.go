package pdqindex

import (
	"math/bits"
	"slices"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// Small finds the hashes of a small set (up to some thousands) within a
// threshold of a query, with exactly the results of LinearSearch, in tens
// of nanoseconds: the other side of Index's trade-off. Index is built for
// one query against millions of hashes and its memory reads; a retro-scan
// asks millions of queries about a few new bank entries, where an Index
// over 1,000 hashes scans them all (~1 µs a query: its cost model rightly
// finds no table layout cheaper) and a plain scan is just as slow.
//
// It is multi-index hashing over the 16 chunks of 16 bits: if
// Hamming(q,h) <= 16*(tau+1)-1 some chunk of h is within tau of q's (the
// pigeonhole principle), so with tau chosen from the largest threshold at
// build time (1 for the default 31) every hit shares a near chunk with the
// query. Per chunk a 65,536-bit bitmap marks every value within tau of some
// hash's chunk, so a query first reads one bit per chunk, 16 reads in 128
// KB that stay in cache, and only the chunks whose bit is set (each a
// probability of about n*17/65,536 for n hashes at tau 1) probe the chunk's
// values within tau in a second bitmap of the values present and read the
// hashes that hold them.
//
// Sets too large for the bitmaps to filter are searched by an Index, so
// BuildSmall is correct and never much slower than Build at any size.
//
// A Small is immutable once built and safe for concurrent use.
type Small struct {
	hashes []pdq.Hash
	// maxThreshold is the largest threshold the tables answer; larger
	// ones scan.
	maxThreshold int
	// tau is the chunk radius; ball is how many masks of smallMasks a
	// probe tries: the values within tau of a chunk.
	tau, ball int
	tables    *[smallChunks]smallTable
	// big searches sets the bitmaps would not filter.
	big *Index
}

const (
	smallChunks = 16
	smallWords  = 1 << 16 / 64
	// smallMaxTau bounds the chunk radius: tau 3 covers threshold 63,
	// the largest a matcher may configure.
	smallMaxTau = 3
	// smallMaxFill is the expected share of near bits set above which
	// the bitmaps stop paying and the set is left to an Index. Measured
	// on random sets at threshold 31: Small at 4,096 hashes (fill 1.06)
	// is still faster than an Index; at 16,384 it is not.
	smallMaxFill = 1.5
)

// smallTable is one chunk's tables.
type smallTable struct {
	// near has bit v set when some hash's chunk is within tau of v; rank[w]
	// counts the bits set in near's words before w, so that the rank r of
	// a set bit among them indexes slot.
	near [smallWords]uint64
	rank [smallWords]uint32
	// slot[r] lists the hashes whose chunk is within tau of the value of
	// near's r-th set bit: the id itself when there is one (most: at
	// 1,000 hashes a value near one chunk is rarely near another), else
	// smallMore|k with more[k] their number and the ids after it. A query
	// whose chunk has its bit set thus finds its candidate in one slot
	// rather than by probing each value around its chunk: on the path
	// from the bitmap to the hash that is one dependent read instead of
	// two or three, and those reads are what a set near bit costs.
	slot []uint32
	more []uint32
}

// smallMore marks a slot that points into more.
const smallMore = 1 << 31

// smallMasks are the 16-bit masks by popcount (0, then the 16 of one bit,
// ...), up to smallMaxTau bits; smallBall[tau] is how many have at most tau.
var smallMasks, smallBall = func() ([]uint16, [smallMaxTau + 1]int) {
	var m []uint16
	var ball [smallMaxTau + 1]int
	for k := 0; k <= smallMaxTau; k++ {
		for v := 0; v < 1<<16; v++ {
			if bits.OnesCount16(uint16(v)) == k {
				m = append(m, uint16(v))
			}
		}
		ball[k] = len(m)
	}
	return m, ball
}()

// smallChunk is chunk i (0 = most significant 16 bits of h[0]).
func smallChunk(h *pdq.Hash, i int) uint32 {
	return uint32(uint16(h[i>>2] >> (48 - 16*(i&3))))
}

// BuildSmall indexes hashes for searches up to maxThreshold (0..256;
// larger thresholds still answer, by a scan). IDs in results are positions
// in hashes, which the Small keeps: the caller must not modify it.
func BuildSmall(hashes []pdq.Hash, maxThreshold int) *Small {
	s := &Small{hashes: hashes, maxThreshold: -1}
	maxThreshold = min(max(maxThreshold, 0), pdqBits)
	tau := (maxThreshold+1+smallChunks-1)/smallChunks - 1
	if tau > smallMaxTau || len(hashes) == 0 {
		return s
	}
	if fill := float64(len(hashes)) * float64(smallBall[tau]) / (1 << 16); fill > smallMaxFill || len(hashes) >= 1<<31 {
		s.big = Build(hashes)
		s.hashes = nil
		return s
	}
	s.maxThreshold, s.tau, s.ball = maxThreshold, tau, smallBall[tau]
	s.tables = new([smallChunks]smallTable)
	masks := smallMasks[:s.ball]
	// pairs holds (near value, id) with the value in the high bits, so
	// sorting groups each value's ids in ascending order.
	pairs := make([]uint64, 0, len(hashes)*len(masks))
	for i := range s.tables {
		t := &s.tables[i]
		pairs = pairs[:0]
		for j := range hashes {
			c := smallChunk(&hashes[j], i)
			for _, m := range masks {
				v := c ^ uint32(m)
				t.near[v>>6] |= 1 << (v & 63)
				pairs = append(pairs, uint64(v)<<32|uint64(j))
			}
		}
		slices.Sort(pairs)
		var r uint32
		for w := range t.near {
			t.rank[w] = r
			r += uint32(bits.OnesCount64(t.near[w]))
		}
		t.slot = make([]uint32, 0, r)
		for k := 0; k < len(pairs); {
			e := k + 1
			for e < len(pairs) && pairs[e]>>32 == pairs[k]>>32 {
				e++
			}
			if e-k == 1 {
				t.slot = append(t.slot, uint32(pairs[k]))
			} else {
				t.slot = append(t.slot, smallMore|uint32(len(t.more)))
				t.more = append(t.more, uint32(e-k))
				for _, p := range pairs[k:e] {
					t.more = append(t.more, uint32(p))
				}
			}
			k = e
		}
	}
	return s
}

// Len is the number of hashes.
func (s *Small) Len() int {
	if s.big != nil {
		return s.big.Len()
	}
	return len(s.hashes)
}

// nearMask has bit i set when q's chunk i has its near bit set. The 16
// reads depend neither on one another nor on a branch, so they overlap.
func (s *Small) nearMask(q *pdq.Hash) uint32 {
	var m uint32
	for i := range s.tables {
		c := smallChunk(q, i)
		m |= uint32(s.tables[i].near[c>>6&(smallWords-1)]>>(c&63)&1) << i
	}
	return m
}

// slotOf returns the table's slot for chunk value c, whose near bit is set.
func (t *smallTable) slotOf(c uint32) uint32 {
	w := c >> 6 & (smallWords - 1)
	return t.slot[t.rank[w]+uint32(bits.OnesCount64(t.near[w]&(1<<(c&63)-1)))]
}

// moreOf returns the ids of a slot marked smallMore.
func (t *smallTable) moreOf(slot uint32) []uint32 {
	k := slot &^ smallMore
	return t.more[k+1 : k+1+t.more[k]]
}

// Search appends every hash within threshold of q, each once, in no
// particular order: the same set as LinearSearch.
func (s *Small) Search(dst []Hit, q pdq.Hash, threshold int) []Hit {
	if s.big != nil {
		return s.big.Search(dst, q, threshold)
	}
	if threshold > s.maxThreshold || s.tables == nil {
		return LinearSearch(dst, s.hashes, q, threshold)
	}
	for m := s.nearMask(&q); m != 0; m &= m - 1 {
		i := bits.TrailingZeros32(m)
		t := &s.tables[i]
		slot := t.slotOf(smallChunk(&q, i))
		if slot&smallMore == 0 {
			dst = s.appendHit(dst, &q, threshold, i, slot)
			continue
		}
		for _, id := range t.moreOf(slot) {
			dst = s.appendHit(dst, &q, threshold, i, id)
		}
	}
	return dst
}

// appendHit appends hash id, found through table i, if it is a hit that
// table owns.
func (s *Small) appendHit(dst []Hit, q *pdq.Hash, threshold, i int, id uint32) []Hit {
	h := &s.hashes[id]
	if d := pdqDistance(h, q); d <= threshold && s.owns(h, q, i) {
		dst = append(dst, Hit{ID: int32(id), Distance: d})
	}
	return dst
}

// owns reports whether table i is the first whose chunk of h is within
// tau of q's, so that a hit found through several chunks is appended once.
func (s *Small) owns(h, q *pdq.Hash, i int) bool {
	for j := range i {
		if bits.OnesCount32(smallChunk(h, j)^smallChunk(q, j)) <= s.tau {
			return false
		}
	}
	return true
}

// Any reports whether some hash is within threshold of q: Search without
// the results, which stops at the first and never allocates.
func (s *Small) Any(q pdq.Hash, threshold int) bool {
	if s.big != nil {
		// An Index search appends hits: a Small only delegates sets too
		// big to filter, where a search costs far more than its rare
		// allocation.
		var buf [4]Hit
		return len(s.big.Search(buf[:0], q, threshold)) > 0
	}
	if threshold > s.maxThreshold || s.tables == nil {
		for i := range s.hashes {
			if pdqDistance(&s.hashes[i], &q) <= threshold {
				return true
			}
		}
		return false
	}
	for m := s.nearMask(&q); m != 0; m &= m - 1 {
		i := bits.TrailingZeros32(m)
		t := &s.tables[i]
		slot := t.slotOf(smallChunk(&q, i))
		if slot&smallMore == 0 {
			if pdqDistance(&s.hashes[slot], &q) <= threshold {
				return true
			}
			continue
		}
		for _, id := range t.moreOf(slot) {
			if pdqDistance(&s.hashes[id], &q) <= threshold {
				return true
			}
		}
	}
	return false
}

// MemoryBytes is the memory the Small holds, including the hashes.
func (s *Small) MemoryBytes() int {
	if s.big != nil {
		return s.big.MemoryBytes()
	}
	m := 32 * cap(s.hashes)
	if s.tables != nil {
		for i := range s.tables {
			t := &s.tables[i]
			m += 12*smallWords + 4*cap(t.slot) + 4*cap(t.more)
		}
	}
	return m
}

func pdqDistance(h, q *pdq.Hash) int {
	return bits.OnesCount64(h[0]^q[0]) + bits.OnesCount64(h[1]^q[1]) +
		bits.OnesCount64(h[2]^q[2]) + bits.OnesCount64(h[3]^q[3])
}
