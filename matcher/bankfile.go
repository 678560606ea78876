package matcher

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher/pdqindex"
)

// Format is the syntax of a bank file.
type Format int

// Bank file formats. FormatAuto sniffs the content and uses the file name's
// extension only when the content is ambiguous (empty or comments only).
const (
	// FormatAuto detects the format; LoadBank always uses it.
	FormatAuto Format = iota
	// FormatText is one entry per line: "TYPE HASH [label...]", with "#"
	// comments.
	FormatText
	// FormatCSV is "type,hash[,label]" records with an optional header.
	FormatCSV
	// FormatNCMEC is an NCMEC hash-sharing API v2 XML document.
	FormatNCMEC
)

// String names the format as logs and errors spell it.
func (f Format) String() string {
	switch f {
	case FormatText:
		return "text"
	case FormatCSV:
		return "csv"
	case FormatNCMEC:
		return "ncmec-xml"
	}
	return "auto"
}

// NCMECNamespace is the XML namespace of NCMEC hash-sharing v2 documents.
const NCMECNamespace = "https://hashsharing.ncmec.org/hashsharing/v2"

// MaxLabelLen bounds a bank entry's label in bytes. Labels end up in log
// lines, notices and lookup answers, so an unbounded one is refused rather
// than carried into every verdict.
const MaxLabelLen = 256

// maxKeptProblems bounds the problems a Bank keeps: a garbage file of ten
// million lines must not hold ten million messages. All are still counted.
const maxKeptProblems = 100

// maxLineLen bounds one text line; longer lines are reported and skipped
// without being buffered whole.
const maxLineLen = 64 << 10

// maxXMLDepth and maxXMLText bound what the NCMEC parser keeps per element,
// so a hostile or corrupt document cannot make it grow without bound.
const (
	maxXMLDepth = 32
	maxXMLText  = 1024
)

// Problem is one bank file entry that was rejected and skipped.
type Problem struct {
	// File is the path of the bank file.
	File string `json:"file"`
	// Line is the 1-based line number (0 when unknown).
	Line int `json:"line,omitempty"`
	// Offset is the byte offset of an XML entry (0 for line formats).
	Offset int64 `json:"offset,omitempty"`
	// ID is the NCMEC entry id, for XML entries that have one.
	ID string `json:"id,omitempty"`
	// Msg says what is wrong.
	Msg string `json:"msg"`
}

// String formats the problem as "file:line: msg", with the NCMEC id and
// byte offset when known.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.ID != "" || p.Offset > 0 {
		b.WriteString(" (")
		if p.ID != "" {
			fmt.Fprintf(&b, "entry %q", p.ID)
			if p.Offset > 0 {
				b.WriteString(", ")
			}
		}
		if p.Offset > 0 {
			fmt.Fprintf(&b, "byte %d", p.Offset)
		}
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// Counts is the number of distinct entries per hash type.
type Counts struct {
	MD5      int `json:"md5"`
	SHA1     int `json:"sha1"`
	SHA256   int `json:"sha256"`
	PDQ      int `json:"pdq"`
	VideoMD5 int `json:"video_md5"`
}

// Total is the sum over all types.
func (c Counts) Total() int { return c.MD5 + c.SHA1 + c.SHA256 + c.PDQ + c.VideoMD5 }

func (c *Counts) add(o Counts) {
	c.MD5 += o.MD5
	c.SHA1 += o.SHA1
	c.SHA256 += o.SHA256
	c.PDQ += o.PDQ
	c.VideoMD5 += o.VideoMD5
}

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

type ncmecKey struct {
	video bool
	id    string
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

// DetectFormat picks a bank file's format from its first bytes (head, a few
// KiB suffice) and, when those are ambiguous, its name's extension.
func DetectFormat(name string, head []byte) Format {
	head = bytes.TrimPrefix(head, utf8BOM)
	if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 && t[0] == '<' {
		return FormatNCMEC
	}
	// The first entry line decides: CSV has a comma before any blank.
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		line = bytes.TrimLeft(line, " \t\r")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if line[0] == '"' {
			return FormatCSV
		}
		if i := bytes.IndexAny(line, ", \t"); i >= 0 && line[i] == ',' {
			return FormatCSV
		}
		return FormatText
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return FormatCSV
	case ".xml":
		return FormatNCMEC
	}
	return FormatText
}

var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// parseFile parses one file into b. It returns an error when the file cannot
// be read or parsed at all, or yields no entry but has problems; individual
// bad entries are recorded in b and skipped.
//
// sizeHint, the file's size if known (else 0), lets the text parser size its
// slices once: growing a ten-million-entry slice by appending copies it many
// times over, which was a third of the load time.
func (b *bankBuilder) parseFile(file string, r io.Reader, format Format, sizeHint int64) error {
	if l, ok := r.(interface{ Len() int }); ok && sizeHint <= 0 {
		sizeHint = int64(l.Len())
	}
	// A buffer of maxLineLen is what bounds a line; a smaller input cannot
	// hold a longer line, so small files (and fuzz inputs) get a small one.
	bufSize := maxLineLen
	if sizeHint > 0 && sizeHint+16 < maxLineLen {
		bufSize = int(sizeHint) + 16
	}
	br := bufio.NewReaderSize(r, bufSize)
	if head, _ := br.Peek(3); bytes.Equal(head, utf8BOM) {
		br.Discard(3)
	}
	if format == FormatAuto {
		head, err := br.Peek(4096)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return fmt.Errorf("%s: %w", file, err)
		}
		format = DetectFormat(file, head)
	}
	good, probs := b.good, b.nProblems
	var err error
	switch format {
	case FormatText:
		err = b.parseText(file, br, sizeHint)
	case FormatCSV:
		err = b.parseCSV(file, br)
	case FormatNCMEC:
		err = b.parseNCMEC(file, br)
	default:
		err = fmt.Errorf("unknown bank format %d", format)
	}
	if err != nil {
		return fmt.Errorf("%s (%s): %w", file, format, err)
	}
	if b.good == good && b.nProblems > probs {
		first := ""
		if probs < len(b.problems) {
			first = "; first: " + b.problems[probs].String()
		}
		return fmt.Errorf("%s (%s): no valid entries, %d problems%s", file, format, b.nProblems-probs, first)
	}
	return nil
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' }

func (b *bankBuilder) parseText(file string, br *bufio.Reader, sizeHint int64) error {
	lineNo := 0
	reserved := sizeHint <= 0
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			lineNo++
			b.lineProblem(file, lineNo, "line longer than %d bytes", maxLineLen)
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		if len(line) > 0 {
			lineNo++
			k, ok := b.textLine(file, lineNo, line)
			if ok && !reserved {
				// Bank files are usually one type with lines of one
				// length, so the first entry predicts the rest.
				reserved = true
				b.reserve(k, int(sizeHint/int64(len(line))))
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// reserve makes room for about n more entries of kind k.
func (b *bankBuilder) reserve(k kind, n int) {
	n = min(n, 1<<28)
	switch k {
	case kMD5:
		b.md5 = slices.Grow(b.md5, n)
	case kVideoMD5:
		b.videoMD5 = slices.Grow(b.videoMD5, n)
	case kSHA1:
		b.sha1 = slices.Grow(b.sha1, n)
	case kSHA256:
		b.sha256 = slices.Grow(b.sha256, n)
	case kPDQ:
		b.pdq = slices.Grow(b.pdq, n)
	}
}

// textLine parses "TYPE HASH [label...] [# comment]" and reports the kind of
// an accepted entry.
func (b *bankBuilder) textLine(file string, lineNo int, line []byte) (kind, bool) {
	n := len(line)
	for n > 0 && (line[n-1] == '\n' || line[n-1] == '\r') {
		n--
	}
	line = line[:n]
	i := 0
	for i < n && isBlank(line[i]) {
		i++
	}
	if i == n || line[i] == '#' {
		return 0, false
	}
	j := i
	for j < n && !isBlank(line[j]) {
		j++
	}
	k, ok := parseKind(line[i:j])
	if !ok {
		tok := line[i:j]
		if len(tok) > 16 {
			tok = tok[:16]
		}
		b.lineProblem(file, lineNo, "unknown hash type %q (want md5, sha1, sha256, pdq or video_md5)", tok)
		return 0, false
	}
	i = j
	for i < n && isBlank(line[i]) {
		i++
	}
	j = i
	for j < n && !isBlank(line[j]) {
		j++
	}
	if i == j || line[i] == '#' {
		b.lineProblem(file, lineNo, "%s entry without a hash", kindTypes[k])
		return 0, false
	}
	hexs, rest := line[i:j], line[j:]
	// rest is empty or starts with a blank, so any "#" after a blank starts
	// a comment; one glued to a word ("case#12") is part of the label.
	for c := 1; c < len(rest); c++ {
		if rest[c] == '#' && isBlank(rest[c-1]) {
			rest = rest[:c]
			break
		}
	}
	label := bytes.TrimFunc(rest, func(r rune) bool { return r < utf8.RuneSelf && isBlank(byte(r)) })
	if _, msg := b.add(k, hexs, label); msg != "" {
		b.lineProblem(file, lineNo, "%s", msg)
		return 0, false
	}
	return k, true
}

func (b *bankBuilder) parseCSV(file string, r io.Reader) error {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	first := true
	lastOff := int64(-1)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return err
			}
			b.lineProblem(file, pe.Line, "CSV: %v", pe.Err)
			// A CSV error always consumes input; stop rather than spin
			// should that ever not hold.
			if off := cr.InputOffset(); off == lastOff {
				return fmt.Errorf("CSV reader stuck at byte %d: %w", off, err)
			} else {
				lastOff = off
			}
			first = false
			continue
		}
		lastOff = cr.InputOffset()
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			if isCSVHeader(rec) {
				continue
			}
		}
		if len(rec) < 2 || len(rec) > 3 {
			b.lineProblem(file, line, "want type,hash[,label], got %d fields", len(rec))
			continue
		}
		typ := strings.TrimSpace(rec[0])
		k, ok := parseKind([]byte(typ))
		if !ok {
			if len(typ) > 16 {
				typ = typ[:16]
			}
			b.lineProblem(file, line, "unknown hash type %q (want md5, sha1, sha256, pdq or video_md5)", typ)
			continue
		}
		var label []byte
		if len(rec) == 3 {
			label = []byte(strings.TrimSpace(rec[2]))
		}
		if _, msg := b.add(k, []byte(strings.TrimSpace(rec[1])), label); msg != "" {
			b.lineProblem(file, line, "%s", msg)
		}
	}
}

func isCSVHeader(rec []string) bool {
	want := [...]string{"type", "hash", "label"}
	if len(rec) < 2 || len(rec) > 3 {
		return false
	}
	for i, f := range rec {
		if !strings.EqualFold(strings.TrimSpace(f), want[i]) {
			return false
		}
	}
	return true
}

// xmlEntry is the NCMEC element being read. It is reused across entries so
// that a large document parses in constant memory beyond the bank itself.
type xmlEntry struct {
	name     string // image, video, deletedImage, deletedVideo
	depth    int    // stack depth of the entry element
	line     int
	off      int64
	id       []byte
	class    []byte
	fps      []xmlFP
	text     *[]byte
	overflow bool
}

type xmlFP struct {
	name string
	val  []byte
}

func (b *bankBuilder) parseNCMEC(file string, r io.Reader) error {
	d := xml.NewDecoder(r)
	stack := make([]string, 0, 8)
	var e xmlEntry
	inEntry, sawRoot := false, false
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			if !sawRoot {
				// An empty or prolog-only file is an error, not an
				// empty bank.
				return errors.New("no XML root element")
			}
			return nil
		}
		if err != nil {
			line, _ := d.InputPos()
			return fmt.Errorf("XML syntax near line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if t.Name.Space != "" && t.Name.Space != NCMECNamespace {
				// Foreign elements are kept on the stack only to balance
				// it; an empty name matches nothing below.
				name = ""
			}
			if len(stack) == 0 {
				if sawRoot || name != "queryResult" {
					return fmt.Errorf("root element is <%s>, not an NCMEC <queryResult>", t.Name.Local)
				}
				sawRoot = true
			}
			if len(stack) >= maxXMLDepth {
				return fmt.Errorf("elements nested deeper than %d", maxXMLDepth)
			}
			stack = append(stack, name)
			if !inEntry {
				if len(stack) == 3 && stack[0] == "queryResult" && isEntryElem(stack[1], name) {
					inEntry = true
					e.name, e.depth, e.off = name, len(stack), off
					e.line, _ = d.InputPos()
					e.id, e.class, e.fps, e.text, e.overflow = e.id[:0], e.class[:0], e.fps[:0], nil, false
				}
				continue
			}
			e.text = nil
			switch rel := len(stack) - e.depth; {
			case rel == 1 && name == "id":
				e.id = e.id[:0]
				e.text = &e.id
			case rel == 1 && name == "classification":
				e.class = e.class[:0]
				e.text = &e.class
			case rel == 2 && stack[e.depth] == "fingerprints" && (name == "md5" || name == "sha1" || name == "pdq"):
				if len(e.fps) >= 16 {
					e.overflow = true
					break
				}
				if len(e.fps) < cap(e.fps) {
					e.fps = e.fps[:len(e.fps)+1]
					e.fps[len(e.fps)-1].name = name
					e.fps[len(e.fps)-1].val = e.fps[len(e.fps)-1].val[:0]
				} else {
					e.fps = append(e.fps, xmlFP{name: name})
				}
				e.text = &e.fps[len(e.fps)-1].val
			}
		case xml.CharData:
			if inEntry && e.text != nil {
				if len(*e.text)+len(t) > maxXMLText {
					e.overflow = true
				} else {
					*e.text = append(*e.text, t...)
				}
			}
		case xml.EndElement:
			if inEntry {
				e.text = nil
				if len(stack) == e.depth {
					inEntry = false
					b.ncmecEntry(file, &e)
				}
			}
			stack = stack[:len(stack)-1]
		}
	}
}

func isEntryElem(parent, name string) bool {
	switch parent {
	case "images":
		return name == "image" || name == "deletedImage"
	case "videos":
		return name == "video" || name == "deletedVideo"
	}
	return false
}

func (b *bankBuilder) ncmecEntry(file string, e *xmlEntry) {
	id := string(bytes.TrimSpace(e.id))
	prob := func(msg string) {
		b.problem(Problem{File: file, Line: e.line, Offset: e.off, ID: id, Msg: msg})
	}
	if e.overflow {
		prob("<" + e.name + "> has oversized or too many fields; skipped")
		return
	}
	if id == "" {
		prob("<" + e.name + "> without <id>; skipped")
		return
	}
	if msg := checkLabel([]byte(id)); msg != "" || len(id) > 64 {
		id = ""
		prob("<" + e.name + "> has an unusable <id>; skipped")
		return
	}
	video := e.name == "video" || e.name == "deletedVideo"
	key := ncmecKey{video: video, id: id}
	if e.name == "deletedImage" || e.name == "deletedVideo" {
		for _, p := range b.ncmec[key] {
			switch p.k {
			case kMD5:
				b.md5[p.i].ref = deletedRef
			case kVideoMD5:
				b.videoMD5[p.i].ref = deletedRef
			case kSHA1:
				b.sha1[p.i].ref = deletedRef
			case kSHA256:
				b.sha256[p.i].ref = deletedRef
			case kPDQ:
				b.pdqRefs[p.i] = deletedRef
			}
			b.tombstoned++
		}
		delete(b.ncmec, key)
		return
	}
	label := make([]byte, 0, 6+len(id)+1+len(e.class))
	label = append(label, "ncmec:"...)
	label = append(label, id...)
	if c := bytes.TrimSpace(e.class); len(c) > 0 {
		label = append(label, ' ')
		label = append(label, c...)
	}
	for _, fp := range e.fps {
		val := bytes.TrimSpace(fp.val)
		if len(val) == 0 {
			continue // NCMEC leaves fingerprints it lacks empty
		}
		var k kind
		switch {
		case !video && fp.name == "md5":
			k = kMD5
		case !video && fp.name == "sha1":
			k = kSHA1
		case !video && fp.name == "pdq":
			k = kPDQ
		case video && fp.name == "md5":
			k = kVideoMD5
		default:
			continue // no bank type for it (video sha1, video pdq)
		}
		// The label is never empty, so a PDQ entry here always has its
		// pdqRefs slot, which tombstones overwrite.
		pos, msg := b.add(k, val, label)
		if msg != "" {
			prob(msg)
			continue
		}
		if b.ncmec == nil {
			b.ncmec = make(map[ncmecKey][]entryPos)
		}
		b.ncmec[key] = append(b.ncmec[key], pos)
	}
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
	bk.md5 = buildExact(b.md5)
	bk.videoMD5 = buildExact(b.videoMD5)
	bk.sha1 = buildExact(b.sha1)
	bk.sha256 = buildExact(b.sha256)
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
	bk.pdq = pdqindex.Build(hashes)
	bk.counts = Counts{
		MD5: len(bk.md5), VideoMD5: len(bk.videoMD5), SHA1: len(bk.sha1),
		SHA256: len(bk.sha256), PDQ: bk.pdq.Len(),
	}
	*b = bankBuilder{}
	return bk
}

// buildExact builds an exact set; the first label of a repeated hash wins.
func buildExact[K comparable](es []exact[K]) map[K]entryRef {
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
		}
	}
	return m
}

// ParseBank parses one bank file's content into a Bank called name. file
// names the content in problems and errors. Bad entries are skipped and
// listed in Bank.Problems; the error is for content that cannot be read or
// parsed at all, or that holds no valid entry but has problems.
func ParseBank(name, file string, r io.Reader, format Format) (*Bank, error) {
	var b bankBuilder
	if err := b.parseFile(file, r, format, 0); err != nil {
		return nil, err
	}
	return b.build(name, file), nil
}

// LoadBank loads the bank called name from path: a file, or a directory
// whose regular files are read in name order as one bank (so NCMEC pages
// saved one per file keep their tombstones working across pages). Hidden
// files and names ending in "~", ".tmp", ".part" or ".swp" are skipped, as
// writers use them for files not yet complete.
func LoadBank(name, path string) (*Bank, error) {
	bk, _, err := loadBank(name, path)
	return bk, err
}

// errChanged reports a bank file that changed while it was read; the load
// is retried rather than trusting a possibly half-written file.
var errChanged = errors.New("file changed while loading")

// loadBank loads path and returns the signature the loaded content had.
func loadBank(name, path string) (*Bank, fileSig, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var before, after fileSig
		before, err = statSig(path)
		if err != nil {
			return nil, nil, err
		}
		var b bankBuilder
		for _, f := range before {
			if err = b.parsePath(f.name); err != nil {
				return nil, nil, err
			}
		}
		after, err = statSig(path)
		if err != nil {
			return nil, nil, err
		}
		if before.equal(after) {
			return b.build(name, path), before, nil
		}
		err = fmt.Errorf("%s: %w", path, errChanged)
		if attempt < 2 {
			time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
		}
	}
	return nil, nil, err
}

func (b *bankBuilder) parsePath(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return b.parseFile(file, f, FormatAuto, size)
}

// fileSig identifies the content of a bank path cheaply: per file its name,
// size, mtime and identity (inode), so that both in-place rewrites and
// atomic renames are noticed.
type fileSig []fileStamp

type fileStamp struct {
	name string
	info os.FileInfo
}

func (s fileSig) equal(o fileSig) bool {
	if len(s) != len(o) || s == nil != (o == nil) {
		return false
	}
	for i := range s {
		a, b := s[i], o[i]
		if a.name != b.name || a.info.Size() != b.info.Size() ||
			!a.info.ModTime().Equal(b.info.ModTime()) || !os.SameFile(a.info, b.info) {
			return false
		}
	}
	return true
}

func skipBankFile(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part") ||
		strings.HasSuffix(name, ".swp")
}

// statSig stats path (and, for a directory, its bank files). The result is
// never nil on success, so an empty directory differs from "never loaded".
func statSig(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file", path)
		}
		return fileSig{{name: path, info: fi}}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	sig := make(fileSig, 0, len(ents))
	for _, de := range ents {
		if skipBankFile(de.Name()) {
			continue
		}
		full := filepath.Join(path, de.Name())
		fi, err := os.Stat(full)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed since ReadDir; the next poll sees the change
			}
			return nil, err
		}
		if fi.Mode().IsRegular() {
			sig = append(sig, fileStamp{name: full, info: fi})
		}
	}
	slices.SortFunc(sig, func(a, b fileStamp) int { return strings.Compare(a.name, b.name) })
	return sig, nil
}
