package matcher

// What a reload changed in a bank, as banks of their own that a retro-scan
// can match the media already judged against.

import (
	"cmp"
	"slices"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher/pdqindex"
)

// BankChange is what a reload changed in one bank.
type BankChange struct {
	// Bank is the bank's name.
	Bank string
	// Added holds the entries the new version has and the old one did
	// not, Removed those it lost (NCMEC tombstones, deleted lines, a
	// bank emptied), each with its label and the bank's name and source,
	// so that a verdict reached through one names it as Local.Match
	// does. Neither is nil. An entry is its type and digest: a line
	// whose label alone changed is no change. PDQ entries are counted
	// (a bank may list one hash twice), so a second copy of a hash is
	// an addition.
	Added, Removed *Bank
	// Fingerprint is the Local's Fingerprint once the change is in use
	// (set by Reload; "" from DiffBanks).
	Fingerprint string
	// From is the Local's Fingerprint before the reload that made the
	// change, and Last marks the reload's last change: one reload that
	// changes two banks reports two changes, and a retro-scan that
	// moves a ledger from From to Fingerprint must see both (set by
	// Reload).
	From string
	Last bool
}

// Empty reports whether nothing was added or removed.
func (c BankChange) Empty() bool {
	return c.Added.counts.Total() == 0 && c.Removed.counts.Total() == 0
}

// DiffBanks returns what changed from old to new, two versions of one
// bank; nil stands for a bank not loaded (say, disabled), so that the
// change of a bank enabled or disabled by a new configuration is all its
// entries. Both banks are only read. A bank of a million entries with a
// thousand changed diffs in well under a second (see BenchmarkDiffBanks).
func DiffBanks(old, new *Bank) BankChange {
	var none Bank
	if old == nil && new == nil {
		return BankChange{Added: &Bank{}, Removed: &Bank{}}
	}
	if old == nil {
		old = &none
		none.name, none.path, none.source, none.report, none.category, none.defLabel = new.name, new.path, new.source, new.report, new.category, new.defLabel
	}
	if new == nil {
		new = &none
		none.name, none.path, none.source, none.report, none.category, none.defLabel = old.name, old.path, old.source, old.report, old.category, old.defLabel
	}
	add, rem := subsetOf(new), subsetOf(old)
	// The PDQ diff sorts while the exact ones read maps: on two cores
	// they take the time of the longer.
	var addIDs, remIDs []int32
	done := make(chan struct{})
	go func() {
		defer close(done)
		if old.counts.PDQ != new.counts.PDQ || old.sums[kPDQ] != new.sums[kPDQ] {
			addIDs, remIDs = diffPDQ(old.pdq, new.pdq)
		}
	}()
	add.md5, rem.md5 = diffExact(old.md5, new.md5, old.sums[kMD5], new.sums[kMD5], &add.sums[kMD5], &rem.sums[kMD5], kMD5, words16)
	add.videoMD5, rem.videoMD5 = diffExact(old.videoMD5, new.videoMD5, old.sums[kVideoMD5], new.sums[kVideoMD5], &add.sums[kVideoMD5], &rem.sums[kVideoMD5], kVideoMD5, words16)
	add.sha1, rem.sha1 = diffExact(old.sha1, new.sha1, old.sums[kSHA1], new.sums[kSHA1], &add.sums[kSHA1], &rem.sums[kSHA1], kSHA1, words20)
	add.sha256, rem.sha256 = diffExact(old.sha256, new.sha256, old.sums[kSHA256], new.sums[kSHA256], &add.sums[kSHA256], &rem.sums[kSHA256], kSHA256, words32)
	<-done
	add.setPDQ(new, addIDs)
	rem.setPDQ(old, remIDs)
	return BankChange{Bank: new.name, Added: add, Removed: rem}
}

// subsetOf returns an empty bank with b's identity and label arena, to be
// filled with some of b's entries.
func subsetOf(b *Bank) *Bank {
	return &Bank{name: b.name, path: b.path, source: b.source, loadedAt: b.loadedAt, labels: b.labels,
		report: b.report, allow: b.allow, category: b.category, defLabel: b.defLabel}
}

// setPDQ gives s the PDQ entries of b with the given ids, in that order
// (ascending, as in b: Local ranks equal distances by position, so a
// retro-scan then names the entry a fresh load of the added lines would).
func (s *Bank) setPDQ(b *Bank, ids []int32) {
	hashes := make([]pdq.Hash, len(ids))
	for i, id := range ids {
		hashes[i] = b.pdq.Hash(id)
		s.sums[kPDQ].addPDQ(&hashes[i])
	}
	if b.pdqRefs != nil && len(ids) > 0 {
		s.pdqRefs = make([]entryRef, len(ids))
		for i, id := range ids {
			s.pdqRefs[i] = b.pdqRefs[id]
		}
	}
	s.pdq = pdqindex.Build(hashes)
	s.counts = Counts{
		MD5: len(s.md5), VideoMD5: len(s.videoMD5), SHA1: len(s.sha1),
		SHA256: len(s.sha256), PDQ: len(hashes),
	}
}

// diffExact returns the entries of new not in old and of old not in new,
// adding their keys to the sums. Equal sums say the two sets are equal
// (see contentSum) without reading them: a reload that changed only PDQ
// entries costs no pass over a million exact ones.
func diffExact[K comparable](old, new map[K]entryRef, oldSum, newSum contentSum, addSum, remSum *contentSum, k kind, words func(K) (a, b, c, d uint64)) (add, rem map[K]entryRef) {
	if len(old) == len(new) && oldSum == newSum {
		return nil, nil
	}
	for key, ref := range new {
		if _, ok := old[key]; !ok {
			if add == nil {
				add = make(map[K]entryRef)
			}
			add[key] = ref
			a, b, c, d := words(key)
			addSum.add(k, a, b, c, d)
		}
	}
	for key, ref := range old {
		if _, ok := new[key]; !ok {
			if rem == nil {
				rem = make(map[K]entryRef)
			}
			rem[key] = ref
			a, b, c, d := words(key)
			remSum.add(k, a, b, c, d)
		}
	}
	return add, rem
}

// sortByWord sorts a by key, stably: a 256-way scatter on the top byte,
// then within each part (cache-sized for a million entries) another on
// the next byte, then an insertion sort of each piece. Digests and PDQ
// hashes spread evenly over their top bits, so for a million entries the
// pieces hold ~15 each and the sort costs four passes over memory, each
// writing 256 streams the caches keep up with (a single 65,536-way pass
// measured slower: too many streams); a skewed bank only makes the pieces
// bigger, which a comparison sort then takes.
func sortByWord[T any](a []T, key func(*T) uint64) []T {
	tmp := make([]T, len(a))
	scatterByte(a, tmp, key, 56)
	var off [257]int
	for i := range tmp {
		off[key(&tmp[i])>>56+1]++
	}
	for v := 1; v < len(off); v++ {
		off[v] += off[v-1]
	}
	for v := range 256 {
		part, dst := tmp[off[v]:off[v+1]], a[off[v]:off[v+1]]
		scatterByte(part, dst, key, 48)
		var sub [257]int
		for i := range dst {
			sub[key(&dst[i])>>48&0xff+1]++
		}
		for u := 1; u < len(sub); u++ {
			sub[u] += sub[u-1]
		}
		for u := range 256 {
			piece := dst[sub[u]:sub[u+1]]
			if len(piece) > 32 {
				slices.SortStableFunc(piece, func(x, y T) int { return cmp.Compare(key(&x), key(&y)) })
				continue
			}
			for x := 1; x < len(piece); x++ {
				for y := x; y > 0 && key(&piece[y]) < key(&piece[y-1]); y-- {
					piece[y], piece[y-1] = piece[y-1], piece[y]
				}
			}
		}
	}
	return a
}

// scatterByte copies src to dst ordered by the byte of key at shift,
// stably.
func scatterByte[T any](src, dst []T, key func(*T) uint64, shift uint) {
	var next [256]int
	for i := range src {
		next[byte(key(&src[i])>>shift)]++
	}
	sum := 0
	for v, c := range next {
		next[v] = sum
		sum += c
	}
	for i := range src {
		b := byte(key(&src[i]) >> shift)
		dst[next[b]] = src[i]
		next[b]++
	}
}

// pdqKey is a PDQ entry sorted by its first word, which almost always
// tells hashes apart; ties are settled on the whole hash.
type pdqKey struct {
	w  uint64
	id int32
}

// diffPDQ returns, ascending, the ids of the hashes of new that old lacks
// and of old that new lacks, counting copies, by sorting both and merging.
func diffPDQ(old, new *pdqindex.Index) (add, rem []int32) {
	ok, nk := sortedPDQ(old), sortedPDQ(new)
	i, j := 0, 0
	for i < len(ok) || j < len(nk) {
		switch {
		case j == len(nk) || i < len(ok) && ok[i].w < nk[j].w:
			rem = append(rem, ok[i].id)
			i++
		case i == len(ok) || nk[j].w < ok[i].w:
			add = append(add, nk[j].id)
			j++
		default:
			i2, j2 := i+1, j+1
			for i2 < len(ok) && ok[i2].w == ok[i].w {
				i2++
			}
			for j2 < len(nk) && nk[j2].w == nk[j].w {
				j2++
			}
			add, rem = diffPDQGroup(old, new, ok[i:i2], nk[j:j2], add, rem)
			i, j = i2, j2
		}
	}
	slices.Sort(add)
	slices.Sort(rem)
	return add, rem
}

// diffPDQGroup diffs entries that share their first word by the whole
// hash: sorted, then merged. The groups come in id order (the radix sort is
// stable) and stay so among copies of one hash, so the copies a bank gained
// are its last ones, as a reader of the file would say.
func diffPDQGroup(old, new *pdqindex.Index, og, ng []pdqKey, add, rem []int32) ([]int32, []int32) {
	if len(og) == 1 && len(ng) == 1 {
		if old.Hash(og[0].id) != new.Hash(ng[0].id) {
			add, rem = append(add, ng[0].id), append(rem, og[0].id)
		}
		return add, rem
	}
	cmp := func(ix *pdqindex.Index) func(a, b pdqKey) int {
		return func(a, b pdqKey) int { return cmpHash(ix.Hash(a.id), ix.Hash(b.id)) }
	}
	slices.SortStableFunc(og, cmp(old))
	slices.SortStableFunc(ng, cmp(new))
	i, j := 0, 0
	for i < len(og) || j < len(ng) {
		c := 0
		switch {
		case j == len(ng):
			c = -1
		case i == len(og):
			c = 1
		default:
			c = cmpHash(old.Hash(og[i].id), new.Hash(ng[j].id))
		}
		switch {
		case c < 0:
			rem = append(rem, og[i].id)
			i++
		case c > 0:
			add = append(add, ng[j].id)
			j++
		default:
			i++
			j++
		}
	}
	return add, rem
}

func cmpHash(a, b pdq.Hash) int {
	for k := range a {
		if a[k] != b[k] {
			if a[k] < b[k] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// sortedPDQ returns the index's entries sorted by first word, ids in
// order among equal words.
func sortedPDQ(ix *pdqindex.Index) []pdqKey {
	if ix == nil || ix.Len() == 0 {
		return nil
	}
	a := make([]pdqKey, ix.Len())
	for i := range a {
		a[i] = pdqKey{w: ix.Hash(int32(i))[0], id: int32(i)}
	}
	return sortByWord(a, func(k *pdqKey) uint64 { return k.w })
}
