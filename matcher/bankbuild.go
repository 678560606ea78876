package matcher

// The bank builder: entries from every format are validated, labelled and
// collected here, then built into an immutable Bank.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher/pdqindex"
)

// MaxLabelLen bounds a bank entry's label in bytes. Labels end up in log
// lines, notices and lookup answers, so an unbounded one is refused rather
// than carried into every verdict.
const MaxLabelLen = 256

// maxKeptProblems bounds the problems a Bank keeps: a garbage file of ten
// million lines must not hold ten million messages. All are still counted.
const maxKeptProblems = 100

// kind is HashType as a small integer for the hot parse paths.
type kind uint8

const (
	kMD5 kind = iota
	kSHA1
	kSHA256
	kPDQ
	kVideoMD5
)

var kindTypes = [...]HashType{kMD5: MD5, kSHA1: SHA1, kSHA256: SHA256, kPDQ: PDQ, kVideoMD5: VideoMD5}

// kindHexLen is the hex length of each kind's digest.
var kindHexLen = [...]int{kMD5: 32, kSHA1: 40, kSHA256: 64, kPDQ: 64, kVideoMD5: 32}

// parseKind matches a type token case-insensitively without allocating.
func parseKind(b []byte) (kind, bool) {
	var buf [9]byte
	if len(b) == 0 || len(b) > len(buf) {
		return 0, false
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	switch string(buf[:len(b)]) {
	case "md5":
		return kMD5, true
	case "sha1":
		return kSHA1, true
	case "sha256":
		return kSHA256, true
	case "pdq":
		return kPDQ, true
	case "video_md5":
		return kVideoMD5, true
	}
	return 0, false
}

// hexVal maps an ASCII byte to its hex value, or 0xff.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
		t[c-'a'+'A'] = byte(c - 'a' + 10)
	}
	return t
}()

// decodeHex decodes exactly 2*len(dst) hex digits of src. It is hand-rolled
// because it runs once per line of ten-million-line files.
func decodeHex(dst, src []byte) bool {
	if len(src) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, lo := hexVal[src[2*i]], hexVal[src[2*i+1]]
		if hi|lo > 0x0f {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

// entryRef locates an entry's label in its bank's label arena. Labels live
// in one byte slice instead of one string each so that ten million entries
// cost 8 bytes apiece, not a string header plus an allocation.
type entryRef struct{ off, n uint32 }

// deletedRef marks an entry removed by an NCMEC tombstone.
var deletedRef = entryRef{off: math.MaxUint32, n: math.MaxUint32}

type exact[K comparable] struct {
	key K
	ref entryRef
}

// entryPos is where an NCMEC entry's hash went, so a tombstone can find it.
type entryPos struct {
	k kind
	i int32
}

// bankBuilder accumulates the entries of one bank's file(s). Entries go to
// slices first and to maps only at the end, because tombstones may delete
// them and because a map sized once is much cheaper to build.
type bankBuilder struct {
	md5, videoMD5 []exact[[16]byte]
	sha1          []exact[[20]byte]
	sha256        []exact[[32]byte]
	pdq           []pdq.Hash
	// pdqRefs is parallel to pdq, or nil while no PDQ entry has a label.
	pdqRefs []entryRef

	labels    []byte
	lastLabel entryRef

	ncmec      map[ncmecKey][]entryPos
	tombstoned int

	problems  []Problem
	nProblems int
	// good counts accepted entries, to tell a file that is all garbage.
	good int
}

func (b *bankBuilder) problem(p Problem) {
	b.nProblems++
	if len(b.problems) < maxKeptProblems {
		b.problems = append(b.problems, p)
	}
}

func (b *bankBuilder) lineProblem(file string, line int, format string, args ...any) {
	b.nProblems++
	if len(b.problems) < maxKeptProblems {
		b.problems = append(b.problems, Problem{File: file, Line: line, Msg: fmt.Sprintf(format, args...)})
	}
}

// checkLabel returns why a label is unacceptable, or "".
func checkLabel(l []byte) string {
	if len(l) > MaxLabelLen {
		return fmt.Sprintf("label longer than %d bytes", MaxLabelLen)
	}
	for _, c := range l {
		if c < 0x20 && c != '\t' || c == 0x7f {
			return "label contains control characters"
		}
	}
	if !utf8.Valid(l) {
		return "label is not valid UTF-8"
	}
	return ""
}

// addLabel stores a label in the arena. Runs of entries sharing a label (a
// batch name, say) share one copy.
func (b *bankBuilder) addLabel(l []byte) (entryRef, bool) {
	if len(l) == 0 {
		return entryRef{}, true
	}
	if last := b.lastLabel; last.n == uint32(len(l)) && bytes.Equal(b.labels[last.off:last.off+last.n], l) {
		return last, true
	}
	if len(b.labels)+len(l) >= math.MaxUint32 {
		return entryRef{}, false
	}
	r := entryRef{off: uint32(len(b.labels)), n: uint32(len(l))}
	b.labels = append(b.labels, l...)
	b.lastLabel = r
	return r, true
}

// add validates and stores one entry, returning a problem message or "".
// hexs and label are only read, never retained.
func (b *bankBuilder) add(k kind, hexs, label []byte) (entryPos, string) {
	t := kindTypes[k]
	if len(hexs) != kindHexLen[k] {
		return entryPos{}, fmt.Sprintf("%s hash must be %d hex digits, got %d characters", t, kindHexLen[k], len(hexs))
	}
	var d [32]byte
	if !decodeHex(d[:len(hexs)/2], hexs) {
		return entryPos{}, fmt.Sprintf("%s hash is not hexadecimal", t)
	}
	if k == kPDQ && d == [32]byte{} {
		// The all-zero PDQ hash is what a too-small image hashes to; a
		// banked one would match every blank image.
		return entryPos{}, "pdq hash is all zeros"
	}
	if msg := checkLabel(label); msg != "" {
		return entryPos{}, msg
	}
	ref, ok := b.addLabel(label)
	if !ok {
		return entryPos{}, "too much label text in this bank"
	}
	var pos entryPos
	pos.k = k
	switch k {
	case kMD5:
		pos.i = int32(len(b.md5))
		b.md5 = append(b.md5, exact[[16]byte]{key: [16]byte(d[:16]), ref: ref})
	case kVideoMD5:
		pos.i = int32(len(b.videoMD5))
		b.videoMD5 = append(b.videoMD5, exact[[16]byte]{key: [16]byte(d[:16]), ref: ref})
	case kSHA1:
		pos.i = int32(len(b.sha1))
		b.sha1 = append(b.sha1, exact[[20]byte]{key: [20]byte(d[:20]), ref: ref})
	case kSHA256:
		pos.i = int32(len(b.sha256))
		b.sha256 = append(b.sha256, exact[[32]byte]{key: d, ref: ref})
	case kPDQ:
		if len(b.pdq) >= math.MaxInt32 {
			return entryPos{}, "too many pdq entries in this bank"
		}
		pos.i = int32(len(b.pdq))
		h := pdq.Hash{
			binary.BigEndian.Uint64(d[0:]), binary.BigEndian.Uint64(d[8:]),
			binary.BigEndian.Uint64(d[16:]), binary.BigEndian.Uint64(d[24:]),
		}
		if ref.n != 0 && b.pdqRefs == nil {
			b.pdqRefs = make([]entryRef, len(b.pdq), cap(b.pdq))
		}
		b.pdq = append(b.pdq, h)
		if b.pdqRefs != nil {
			b.pdqRefs = append(b.pdqRefs, ref)
		}
	}
	b.good++
	return pos, ""
}

// build turns the accumulated entries into an immutable Bank.
func (b *bankBuilder) build(name, path string) *Bank {
	bk := &Bank{
		name:     name,
		path:     path,
		source:   "local:" + name,
		loadedAt: time.Now(),
		labels:   b.labels,
		problems: b.problems,
		nProbs:   b.nProblems,
	}
	bk.md5 = buildExact(b.md5, &bk.sums[kMD5], kMD5, words16)
	bk.videoMD5 = buildExact(b.videoMD5, &bk.sums[kVideoMD5], kVideoMD5, words16)
	bk.sha1 = buildExact(b.sha1, &bk.sums[kSHA1], kSHA1, words20)
	bk.sha256 = buildExact(b.sha256, &bk.sums[kSHA256], kSHA256, words32)
	hashes, refs := b.pdq, b.pdqRefs
	if b.tombstoned > 0 && refs != nil {
		n := 0
		for i := range hashes {
			if refs[i] != deletedRef {
				hashes[n], refs[n] = hashes[i], refs[i]
				n++
			}
		}
		hashes, refs = hashes[:n], refs[:n]
	}
	if refs != nil && cap(refs)-len(refs) > len(refs)/8+1024 {
		// reserve guessed high (a mixed file): refs live as long as the
		// bank, so return the slack now. pdqindex.Build does the same for
		// the hashes where it keeps them on the heap; big indexes copy
		// them, so a clone here would be a wasted copy.
		refs = slices.Clip(slices.Clone(refs))
	}
	bk.pdqRefs = refs
	for i := range hashes {
		bk.sums[kPDQ].addPDQ(&hashes[i])
	}
	bk.pdq = pdqindex.Build(hashes)
	bk.counts = Counts{
		MD5: len(bk.md5), VideoMD5: len(bk.videoMD5), SHA1: len(bk.sha1),
		SHA256: len(bk.sha256), PDQ: bk.pdq.Len(),
	}
	*b = bankBuilder{}
	return bk
}

// buildExact builds an exact set, adding its keys to sum; the first
// label of a repeated hash wins.
func buildExact[K comparable](es []exact[K], sum *contentSum, k kind, words func(K) (a, b, c, d uint64)) map[K]entryRef {
	if len(es) == 0 {
		return nil
	}
	m := make(map[K]entryRef, len(es))
	for _, e := range es {
		if e.ref == deletedRef {
			continue
		}
		if _, dup := m[e.key]; !dup {
			m[e.key] = e.ref
			a, b, c, d := words(e.key)
			sum.add(k, a, b, c, d)
		}
	}
	return m
}
