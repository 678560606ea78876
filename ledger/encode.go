package ledger

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
)

// The binary encoding of a record, as the embedded store keeps it (the
// value under the record's key) and, for the digests that have no column
// of their own, as PostgreSQL keeps it (the extra column).
//
// Compactness is the point: a ledger holds one record per media a
// homeserver ever served, and the budget is 200 bytes on disk for a still
// image with its stored-form PDQ, plus 40 for every further PDQ form. So:
// varints for numbers and times (to the second, LastSeen as a delta from
// FirstSeen), digests raw and only when their Has bit is set, the server
// name and bank fingerprint interned by the store (a small integer here),
// the sniffed type, media kind and pdq variant as one byte from a table,
// form names ("frame 3 quadrant 2", "video frame at 1.5s") as one byte
// per word or small number, and a form's variant not at all when its name
// says it (appendForm).
//
// Layout of version 1 (valueVersion):
//
//	version  byte
//	verdict  byte
//	has      byte (matcher.Has)
//	flags    uvarint (flag* below)
//	first    varint unix seconds            [flagFirst]
//	last     varint seconds after first, or unix seconds without first [flagLast]
//	size     varint
//	md5, sha1, sha256 raw                   [per has]
//	pdq      32 bytes, quality              [HasPDQ]
//	banks    uvarint string id              [flagBanks]
//	type     table byte or 0 + string       [flagType]
//	kind     table byte or 0 + string       [flagKind]
//	uploader string                         [flagUploader]
//	reason   string                         [flagReason]
//	forms    uvarint count, forms           [flagForms]
//	dihedral uvarint count, 32 bytes each   [flagDihedral]
//	embedded uvarint count, where string + 68 bytes each [flagEmbedded]
//
// A string is a uvarint length and its bytes. Digests (and PDQQuality)
// whose Has bit is unset are not stored: they decode as zero.
//
// The tables below are part of the format: append to them, never reorder.

// valueVersion is the first byte of every encoded record; a decoder
// refuses any other, so a later format is a new version, not a guess.
const valueVersion = 1

// extraVersion is the first byte of the forms/dihedral/embedded blob kept
// in PostgreSQL's extra column.
const extraVersion = 1

// Record flags.
const (
	flagFirst = 1 << iota
	flagLast
	flagBanks
	flagType
	flagKind
	flagForms
	flagUploader
	// Flags from here on cost a second byte of flags: the rarer fields.
	flagReason
	flagDihedral
	flagEmbedded
	flagAll = flagEmbedded<<1 - 1
)

// typeTable holds the sniffed types a record's Type usually is.
var typeTable = []string{"", "jpeg", "png", "gif", "webp", "bmp", "tiff", "ico", "jxl", "avif", "heic", "heif", "svg", "mp4", "webm", "mkv", "mov", "pdf", "zip", "mp3", "flac", "ogg", "wav", "ftyp"}

// kindTable holds the matcher media kinds.
var kindTable = []string{"", string(matcher.KindImage), string(matcher.KindVideo), string(matcher.KindAudio), string(matcher.KindFile)}

// variantTable holds pdq's closed set of variant kinds.
var variantTable = []string{"", pdq.VariantStored, pdq.VariantFrame, pdq.VariantDisplayed, pdq.VariantComposited, pdq.VariantColourManaged, pdq.VariantEmbedded, pdq.VariantTrimmed, pdq.VariantPeeled, pdq.VariantDegapped, pdq.VariantQuadrant, pdq.VariantNegative, pdq.VariantStretched, pdq.VariantWindow, pdq.VariantRotated}

// wordTable holds the words form names are made of (see hashing/pdq's
// viewed.go and variants.go, and the video frame names of
// hashing/worker). Up to wordMax words fit a name token's byte.
var wordTable = []string{"frame", "displayed", "colour-managed", "on", "white", "black", "negative", "stretched", "trimmed", "peeled", "degapped", "quadrant", "window", "rotated", "video", "at", "embedded", "page", "image", "object", "pdf", "cover", "art", "entry", "after", "end"}

// Name tokens. A form name is split at single spaces; each token is one
// byte whose low bit marks the last token and whose upper seven bits say
// what the token is, followed by its operand if any.
const (
	tokEmpty   = 0  // the empty name (alone) or an empty token
	tokSmall   = 1  // tokSmall+n is the decimal n, for n < smallMax
	smallMax   = 63 // tokSmall+smallMax == tokInt
	tokInt     = 64 // uvarint n: the decimal n
	tokLit     = 65 // string: the token as is
	tokDegrees = 66 // varint n: n + "°"
	tokSeconds = 67 // uvarint n: n/10 "." n%10 "s" (a video frame's time)
	tokWord    = 68 // tokWord+i is wordTable[i]
	wordMax    = 128 - tokWord
)

// maxTokens bounds a form name's tokens: hashing makes names of a few
// words, and a longer one is written as one literal token. (Lengths and
// counts are checked against the bytes left, so a corrupt value cannot
// ask for more memory than its own size.)
const maxTokens = 64

// minFormLen is the fewest bytes a form takes: quality, hash, one name
// token.
const minFormLen = 1 + 32 + 1

// minEmbeddedLen is the fewest bytes an embedded entry takes.
const minEmbeddedLen = 1 + 16 + 20 + 32

// errCorrupt is wrapped by every decoding error.
var errCorrupt = errors.New("ledger: corrupt record")

func corruptf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
}

// appendValue encodes r without its key (the store keeps the key apart);
// banksID is the interned id of r.Banks, used when r.Banks is not "".
// Interned ids start at 1.
func appendValue(dst []byte, r *Record, banksID uint64) []byte {
	q := &r.Query
	var flags uint64
	if !r.FirstSeen.IsZero() {
		flags |= flagFirst
	}
	if !r.LastSeen.IsZero() {
		flags |= flagLast
	}
	if r.Banks != "" {
		flags |= flagBanks
	}
	if r.Type != "" {
		flags |= flagType
	}
	if q.Kind != "" {
		flags |= flagKind
	}
	if len(q.Forms) > 0 {
		flags |= flagForms
	}
	if r.Uploader != "" {
		flags |= flagUploader
	}
	if r.Reason != "" {
		flags |= flagReason
	}
	if len(q.Dihedral) > 0 {
		flags |= flagDihedral
	}
	if len(q.Embedded) > 0 {
		flags |= flagEmbedded
	}
	dst = append(dst, valueVersion, byte(r.Verdict), byte(q.Has))
	dst = binary.AppendUvarint(dst, flags)
	if flags&flagFirst != 0 {
		dst = binary.AppendVarint(dst, r.FirstSeen.Unix())
	}
	if flags&flagLast != 0 {
		last := r.LastSeen.Unix()
		if flags&flagFirst != 0 {
			last -= r.FirstSeen.Unix()
		}
		dst = binary.AppendVarint(dst, last)
	}
	dst = binary.AppendVarint(dst, r.Size)
	dst = appendDigests(dst, q)
	if flags&flagBanks != 0 {
		dst = binary.AppendUvarint(dst, banksID)
	}
	if flags&flagType != 0 {
		dst = appendTabled(dst, typeTable, r.Type)
	}
	if flags&flagKind != 0 {
		dst = appendTabled(dst, kindTable, string(q.Kind))
	}
	if flags&flagUploader != 0 {
		dst = appendString(dst, r.Uploader)
	}
	if flags&flagReason != 0 {
		dst = appendString(dst, r.Reason)
	}
	return appendLists(dst, q, flags)
}

// appendDigests appends the exact digests and the PDQ hash Has says q has.
func appendDigests(dst []byte, q *matcher.Query) []byte {
	if q.Has&matcher.HasMD5 != 0 {
		dst = append(dst, q.MD5[:]...)
	}
	if q.Has&matcher.HasSHA1 != 0 {
		dst = append(dst, q.SHA1[:]...)
	}
	if q.Has&matcher.HasSHA256 != 0 {
		dst = append(dst, q.SHA256[:]...)
	}
	if q.Has&matcher.HasPDQ != 0 {
		dst = appendHash(dst, q.PDQ)
		dst = appendQuality(dst, q.PDQQuality)
	}
	return dst
}

// appendLists appends the forms, dihedral hashes and embedded digests
// that flags announce.
func appendLists(dst []byte, q *matcher.Query, flags uint64) []byte {
	if flags&flagForms != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(q.Forms)))
		for i := range q.Forms {
			dst = appendForm(dst, &q.Forms[i])
		}
	}
	if flags&flagDihedral != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(q.Dihedral)))
		for _, h := range q.Dihedral {
			dst = appendHash(dst, h)
		}
	}
	if flags&flagEmbedded != 0 {
		dst = binary.AppendUvarint(dst, uint64(len(q.Embedded)))
		for i := range q.Embedded {
			e := &q.Embedded[i]
			dst = appendString(dst, e.Where)
			dst = append(dst, e.MD5[:]...)
			dst = append(dst, e.SHA1[:]...)
			dst = append(dst, e.SHA256[:]...)
		}
	}
	return dst
}

// listFlags are the flags of the lists q has.
func listFlags(q *matcher.Query) uint64 {
	var flags uint64
	if len(q.Forms) > 0 {
		flags |= flagForms
	}
	if len(q.Dihedral) > 0 {
		flags |= flagDihedral
	}
	if len(q.Embedded) > 0 {
		flags |= flagEmbedded
	}
	return flags
}

// appendExtra encodes q's forms, dihedral hashes and embedded digests on
// their own (PostgreSQL's extra column); nil when q has none.
func appendExtra(dst []byte, q *matcher.Query) []byte {
	flags := listFlags(q)
	if flags == 0 {
		return dst
	}
	dst = append(dst, extraVersion)
	dst = binary.AppendUvarint(dst, flags)
	return appendLists(dst, q, flags)
}

// decodeExtra reads what appendExtra wrote into q's lists.
func decodeExtra(b []byte, q *matcher.Query) error {
	q.Forms, q.Dihedral, q.Embedded = q.Forms[:0], q.Dihedral[:0], q.Embedded[:0]
	if len(b) == 0 {
		q.Forms, q.Dihedral, q.Embedded = nil, nil, nil
		return nil
	}
	if b[0] != extraVersion {
		return corruptf("extra version %d, want %d", b[0], extraVersion)
	}
	d := decoder{b: b[1:]}
	flags := d.uvarint()
	if flags&^(flagForms|flagDihedral|flagEmbedded) != 0 {
		return corruptf("unknown extra flags %#x", flags)
	}
	d.lists(q, flags)
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	return d.err
}

// decodeValue reads what appendValue wrote into r (all but r.Key, and
// r.Banks, which the caller resolves from the returned id, 0 when the
// record has no bank fingerprint). It reuses r's slices.
func decodeValue(b []byte, r *Record) (banksID uint64, err error) {
	if len(b) < 4 {
		return 0, corruptf("%d bytes", len(b))
	}
	if b[0] != valueVersion {
		return 0, corruptf("version %d, want %d", b[0], valueVersion)
	}
	q := &r.Query
	forms, dihedral, embedded := q.Forms[:0], q.Dihedral[:0], q.Embedded[:0]
	*r = Record{Key: r.Key, Verdict: Verdict(b[1])}
	q.Forms, q.Dihedral, q.Embedded = forms, dihedral, embedded
	q.Has = matcher.Has(b[2])
	d := decoder{b: b[3:]}
	flags := d.uvarint()
	if flags&^flagAll != 0 {
		return 0, corruptf("unknown flags %#x", flags)
	}
	var first int64
	if flags&flagFirst != 0 {
		first = d.varint()
		r.FirstSeen = unixTime(first)
	}
	if flags&flagLast != 0 {
		last := d.varint()
		if flags&flagFirst != 0 {
			last += first
		}
		r.LastSeen = unixTime(last)
	}
	r.Size = d.varint()
	d.digests(q)
	if flags&flagBanks != 0 {
		if banksID = d.uvarint(); banksID == 0 {
			d.fail("banks id 0")
		}
	}
	if flags&flagType != 0 {
		r.Type = d.tabled(typeTable)
	}
	if flags&flagKind != 0 {
		q.Kind = matcher.MediaKind(d.tabled(kindTable))
	}
	if flags&flagUploader != 0 {
		r.Uploader = d.str()
	}
	if flags&flagReason != 0 {
		r.Reason = d.str()
	}
	d.lists(q, flags)
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return 0, d.err
	}
	return banksID, nil
}

// decodeQuery reads only what a retro-scan asks about every record: the
// verdict and the query's digests, PDQ hashes and qualities, dihedral
// hashes and embedded files' digests, and the media kind. It skips the
// times, size, strings and form names and leaves each form's Name and
// Variant and each embedded file's Where empty, which the matchers' yes
// or no does not depend on (only the evidence of a match names them), so
// it allocates nothing once q's lists have grown. It reuses q's slices.
// A record it picks is decoded in full with decodeValue.
func decodeQuery(b []byte, q *matcher.Query) (Verdict, error) {
	if len(b) < 4 {
		return 0, corruptf("%d bytes", len(b))
	}
	if b[0] != valueVersion {
		return 0, corruptf("version %d, want %d", b[0], valueVersion)
	}
	forms, dihedral, embedded := q.Forms[:0], q.Dihedral[:0], q.Embedded[:0]
	*q = matcher.Query{Has: matcher.Has(b[2]), Forms: forms, Dihedral: dihedral, Embedded: embedded}
	d := decoder{b: b[3:]}
	flags := d.uvarint()
	if flags&^flagAll != 0 {
		return 0, corruptf("unknown flags %#x", flags)
	}
	if flags&flagFirst != 0 {
		d.varint()
	}
	if flags&flagLast != 0 {
		d.varint()
	}
	d.varint() // size
	d.digests(q)
	if flags&flagBanks != 0 {
		d.uvarint()
	}
	if flags&flagType != 0 {
		d.skipTabled()
	}
	if flags&flagKind != 0 {
		q.Kind = matcher.MediaKind(d.tabled(kindTable))
	}
	if flags&flagUploader != 0 {
		d.skipStr()
	}
	if flags&flagReason != 0 {
		d.skipStr()
	}
	d.listsLite(q, flags)
	if d.err == nil && len(d.b) != 0 {
		d.fail("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return 0, d.err
	}
	return Verdict(b[1]), nil
}

// lastSeenOf reads only a value's LastSeen (Prune's test), without
// decoding the rest.
func lastSeenOf(b []byte) (time.Time, error) {
	if len(b) < 4 || b[0] != valueVersion {
		return time.Time{}, corruptf("bad header")
	}
	d := decoder{b: b[3:]}
	flags := d.uvarint()
	var first, last int64
	if flags&flagFirst != 0 {
		first = d.varint()
	}
	if flags&flagLast == 0 {
		return time.Time{}, d.err
	}
	last = d.varint()
	if flags&flagFirst != 0 {
		last += first
	}
	return unixTime(last), d.err
}

// firstSeenOf reads only a value's FirstSeen (Put's merge).
func firstSeenOf(b []byte) (time.Time, error) {
	if len(b) < 4 || b[0] != valueVersion {
		return time.Time{}, corruptf("bad header")
	}
	d := decoder{b: b[3:]}
	flags := d.uvarint()
	if flags&flagFirst == 0 {
		return time.Time{}, d.err
	}
	return unixTime(d.varint()), d.err
}

// unixTime is the UTC time of unix seconds, so decoded records compare
// equal whatever the local zone.
func unixTime(s int64) time.Time { return time.Unix(s, 0).UTC() }

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// appendTabled appends s as its index in table, or 0 and the string.
func appendTabled(dst []byte, table []string, s string) []byte {
	for i := 1; i < len(table) && i < 256; i++ {
		if table[i] == s {
			return append(dst, byte(i))
		}
	}
	return appendString(append(dst, 0), s)
}

// appendHash appends h as 32 bytes, its words big-endian in order.
func appendHash(dst []byte, h pdq.Hash) []byte {
	for _, w := range h {
		dst = binary.BigEndian.AppendUint64(dst, w)
	}
	return dst
}

// appendQuality appends a PDQ quality: one byte for 0..254 (it is 0..100),
// else 255 and a varint.
func appendQuality(dst []byte, q int) []byte {
	if q >= 0 && q < 255 {
		return append(dst, byte(q))
	}
	return binary.AppendVarint(append(dst, 255), int64(q))
}

// A form starts with one byte: the quality in its low seven bits (0..126,
// else formQualityVarint and a varint follows), and formVariant set when
// the variant follows as a table byte, unset when it is the one its name
// says (variantOf), as it is for every form hashing names.
const (
	formVariant       = 0x80
	formQualityVarint = 0x7f
)

func appendForm(dst []byte, f *pdq.Form) []byte {
	head := byte(formQualityVarint)
	if f.Quality >= 0 && f.Quality < formQualityVarint {
		head = byte(f.Quality)
	}
	explicit := variantOf(f.Name) != f.Variant
	if explicit {
		head |= formVariant
	}
	dst = append(dst, head)
	if head&formQualityVarint == formQualityVarint {
		dst = binary.AppendVarint(dst, int64(f.Quality))
	}
	if explicit {
		dst = appendTabled(dst, variantTable, f.Variant)
	}
	dst = appendHash(dst, f.Hash)
	return appendName(dst, f.Name)
}

// nameVariants maps the words of form names to the variant they make
// (hashing/pdq's viewed.go and variants.go name forms so).
var nameVariants = map[string]string{
	"frame":          pdq.VariantFrame,
	"displayed":      pdq.VariantDisplayed,
	"colour-managed": pdq.VariantColourManaged,
	"white":          pdq.VariantComposited,
	"black":          pdq.VariantComposited,
	"negative":       pdq.VariantNegative,
	"stretched":      pdq.VariantStretched,
	"trimmed":        pdq.VariantTrimmed,
	"peeled":         pdq.VariantPeeled,
	"degapped":       pdq.VariantDegapped,
	"quadrant":       pdq.VariantQuadrant,
	"window":         pdq.VariantWindow,
	"rotated":        pdq.VariantRotated,
}

// variantOf is the variant a form's name says: that of its last word
// that names one ("frame 3 quadrant 2" is a quadrant, "frame 3 on black"
// composited), "" when none does.
func variantOf(name string) string {
	for name != "" {
		i := strings.LastIndexByte(name, ' ')
		if v, ok := nameVariants[name[i+1:]]; ok {
			return v
		}
		if i < 0 {
			break
		}
		name = name[:i]
	}
	return ""
}

// appendName appends a form name as tokens (see tokEmpty...).
func appendName(dst []byte, name string) []byte {
	if name == "" {
		return append(dst, tokEmpty<<1|1)
	}
	toks := strings.Split(name, " ")
	if len(toks) > maxTokens {
		// Too many words to be a name hashing made: one literal token.
		toks = []string{name}
	}
	for i, t := range toks {
		last := byte(0)
		if i == len(toks)-1 {
			last = 1
		}
		dst = appendToken(dst, t, last)
	}
	return dst
}

func appendToken(dst []byte, t string, last byte) []byte {
	if t == "" {
		return append(dst, tokEmpty<<1|last)
	}
	for i, w := range wordTable {
		if i < wordMax && w == t {
			return append(dst, byte(tokWord+i)<<1|last)
		}
	}
	if n, ok := canonicalUint(t); ok {
		if n < smallMax {
			return append(dst, byte(tokSmall+n)<<1|last)
		}
		return binary.AppendUvarint(append(dst, tokInt<<1|last), n)
	}
	if s, ok := strings.CutSuffix(t, "°"); ok {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && strconv.FormatInt(n, 10) == s {
			return binary.AppendVarint(append(dst, tokDegrees<<1|last), n)
		}
	}
	if n, ok := tenths(t); ok {
		return binary.AppendUvarint(append(dst, tokSeconds<<1|last), n)
	}
	return appendString(append(dst, tokLit<<1|last), t)
}

// canonicalUint parses t when it is a decimal that formats back to itself.
func canonicalUint(t string) (uint64, bool) {
	n, err := strconv.ParseUint(t, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != t {
		return 0, false
	}
	return n, true
}

// tenths parses "12.5s" as 125 when it formats back to itself.
func tenths(t string) (uint64, bool) {
	s, ok := strings.CutSuffix(t, "s")
	if !ok || len(s) < 3 || s[len(s)-2] != '.' {
		return 0, false
	}
	whole, ok := canonicalUint(s[:len(s)-2])
	frac := s[len(s)-1]
	if !ok || frac < '0' || frac > '9' || whole > (1<<60) {
		return 0, false
	}
	return whole*10 + uint64(frac-'0'), true
}

func formatTenths(n uint64) string {
	return strconv.FormatUint(n/10, 10) + "." + strconv.FormatUint(n%10, 10) + "s"
}

// decoder reads an encoded value; the first error sticks and every later
// read returns zero, so the callers check once.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = corruptf(format, args...)
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad uvarint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) < 1 {
		d.fail("short")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// bytes returns the next n bytes (aliasing the input).
func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if len(d.b) < n {
		d.fail("short")
		return nil
	}
	p := d.b[:n]
	d.b = d.b[n:]
	return p
}

func (d *decoder) str() string {
	n := d.uvarint()
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail("string of %d bytes", n)
		return ""
	}
	return string(d.bytes(int(n)))
}

func (d *decoder) tabled(table []string) string {
	i := d.byte()
	if d.err != nil {
		return ""
	}
	if i == 0 {
		return d.str()
	}
	if int(i) >= len(table) {
		d.fail("table index %d", i)
		return ""
	}
	return table[i]
}

func (d *decoder) hash() pdq.Hash {
	var h pdq.Hash
	p := d.bytes(32)
	if p == nil {
		return h
	}
	for i := range h {
		h[i] = binary.BigEndian.Uint64(p[8*i:])
	}
	return h
}

func (d *decoder) quality() int {
	c := d.byte()
	if c != 255 {
		return int(c)
	}
	v := d.varint()
	if int64(int(v)) != v {
		d.fail("quality %d", v)
	}
	return int(v)
}

func (d *decoder) digests(q *matcher.Query) {
	if q.Has&matcher.HasMD5 != 0 {
		copy(q.MD5[:], d.bytes(16))
	}
	if q.Has&matcher.HasSHA1 != 0 {
		copy(q.SHA1[:], d.bytes(20))
	}
	if q.Has&matcher.HasSHA256 != 0 {
		copy(q.SHA256[:], d.bytes(32))
	}
	if q.Has&matcher.HasPDQ != 0 {
		q.PDQ = d.hash()
		q.PDQQuality = d.quality()
	}
}

// count reads a list's length and checks that the bytes left can hold it
// at min bytes an element, so a corrupt count allocates nothing.
func (d *decoder) count(min int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n == 0 || n > uint64(len(d.b)/min) {
		d.fail("list of %d", n)
		return 0
	}
	return int(n)
}

func (d *decoder) lists(q *matcher.Query, flags uint64) {
	if flags&flagForms != 0 {
		n := d.count(minFormLen)
		for i := 0; i < n && d.err == nil; i++ {
			var f pdq.Form
			head := d.byte()
			f.Quality = int(head & formQualityVarint)
			if head&formQualityVarint == formQualityVarint {
				v := d.varint()
				if f.Quality = int(v); int64(f.Quality) != v {
					d.fail("quality %d", v)
				}
			}
			if head&formVariant != 0 {
				f.Variant = d.tabled(variantTable)
			}
			f.Hash = d.hash()
			f.Name = d.name()
			if head&formVariant == 0 {
				f.Variant = variantOf(f.Name)
			}
			q.Forms = append(q.Forms, f)
		}
	}
	if flags&flagDihedral != 0 {
		n := d.count(32)
		for i := 0; i < n && d.err == nil; i++ {
			q.Dihedral = append(q.Dihedral, d.hash())
		}
	}
	if flags&flagEmbedded != 0 {
		n := d.count(minEmbeddedLen)
		for i := 0; i < n && d.err == nil; i++ {
			var e matcher.EmbeddedDigests
			e.Where = d.str()
			copy(e.MD5[:], d.bytes(16))
			copy(e.SHA1[:], d.bytes(20))
			copy(e.SHA256[:], d.bytes(32))
			q.Embedded = append(q.Embedded, e)
		}
	}
	// A list that was announced but not read (an error) or is empty
	// decodes as nil, as an unannounced one does.
	if len(q.Forms) == 0 {
		q.Forms = nil
	}
	if len(q.Dihedral) == 0 {
		q.Dihedral = nil
	}
	if len(q.Embedded) == 0 {
		q.Embedded = nil
	}
}

// skipStr passes over a string.
func (d *decoder) skipStr() {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.fail("string of %d bytes", n)
		return
	}
	d.bytes(int(n))
}

// skipTabled passes over what appendTabled wrote.
func (d *decoder) skipTabled() {
	if i := d.byte(); d.err == nil && i == 0 {
		d.skipStr()
	}
}

// listsLite is lists without the form names, their variants and the
// embedded files' places (see decodeQuery).
func (d *decoder) listsLite(q *matcher.Query, flags uint64) {
	if flags&flagForms != 0 {
		n := d.count(minFormLen)
		for i := 0; i < n && d.err == nil; i++ {
			var f pdq.Form
			head := d.byte()
			f.Quality = int(head & formQualityVarint)
			if head&formQualityVarint == formQualityVarint {
				v := d.varint()
				if f.Quality = int(v); int64(f.Quality) != v {
					d.fail("quality %d", v)
				}
			}
			if head&formVariant != 0 {
				d.skipTabled()
			}
			f.Hash = d.hash()
			d.skipName()
			q.Forms = append(q.Forms, f)
		}
	}
	if flags&flagDihedral != 0 {
		n := d.count(32)
		for i := 0; i < n && d.err == nil; i++ {
			q.Dihedral = append(q.Dihedral, d.hash())
		}
	}
	if flags&flagEmbedded != 0 {
		n := d.count(minEmbeddedLen)
		for i := 0; i < n && d.err == nil; i++ {
			var e matcher.EmbeddedDigests
			d.skipStr()
			copy(e.MD5[:], d.bytes(16))
			copy(e.SHA1[:], d.bytes(20))
			copy(e.SHA256[:], d.bytes(32))
			q.Embedded = append(q.Embedded, e)
		}
	}
	// Empty lists keep their room for the next record (lists makes them
	// nil, which would drop it): the matchers read lengths.
}

// skipName passes over a form name's tokens (see name).
func (d *decoder) skipName() {
	for i := 0; d.err == nil; i++ {
		if i == maxTokens {
			d.fail("name of more than %d tokens", maxTokens)
			return
		}
		c := d.byte()
		if d.err != nil {
			return
		}
		switch tok := c >> 1; {
		case tok == tokInt, tok == tokSeconds:
			d.uvarint()
		case tok == tokLit:
			d.skipStr()
		case tok == tokDegrees:
			d.varint()
		case tok >= tokWord && int(tok-tokWord) >= len(wordTable):
			d.fail("word %d", tok-tokWord)
			return
		}
		if c&1 != 0 {
			return
		}
	}
}

// name reads a form name's tokens.
func (d *decoder) name() string {
	var sb strings.Builder
	for i := 0; d.err == nil; i++ {
		if i == maxTokens {
			d.fail("name of more than %d tokens", maxTokens)
			return ""
		}
		c := d.byte()
		if d.err != nil {
			return ""
		}
		if i > 0 {
			sb.WriteByte(' ')
		}
		switch tok := c >> 1; {
		case tok == tokEmpty:
		case tok < tokInt:
			sb.WriteString(strconv.Itoa(int(tok - tokSmall)))
		case tok == tokInt:
			sb.WriteString(strconv.FormatUint(d.uvarint(), 10))
		case tok == tokLit:
			sb.WriteString(d.str())
		case tok == tokDegrees:
			sb.WriteString(strconv.FormatInt(d.varint(), 10) + "°")
		case tok == tokSeconds:
			sb.WriteString(formatTenths(d.uvarint()))
		default:
			w := int(tok - tokWord)
			if w >= len(wordTable) {
				d.fail("word %d", w)
				return ""
			}
			sb.WriteString(wordTable[w])
		}
		if c&1 != 0 {
			break
		}
	}
	return sb.String()
}
