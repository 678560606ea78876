// Package carve finds the files hidden inside the files people upload.
//
// A listed picture can be sent inside a container that a client still shows
// or that a recipient trivially opens: a PDF embedding the JPEG byte for
// byte, an SVG carrying it as a data: URI, MP3 cover art, an MP4 covr atom, a
// FLAC PICTURE block, a Matroska attachment, a ZIP entry, or the picture
// itself with bytes appended or prepended so that its exact digests change.
// Carve returns those embedded files so that the caller can hash each one
// like an upload of its own.
//
// Carve only uses the standard library and recognises formats by their magic
// bytes, never by a declared type. It must stay cheap on the data it sees
// most, encrypted attachments, which are random bytes: on those it does a few
// bytes.Index searches and returns nothing. Every length read from the input
// is checked, decompression is bounded by Limits.MaxBytes, and nothing is
// ever invented from random bytes: an embedded image found at an offset is
// only reported when its structure parses to its end marker.
//
// Only what may be a picture is returned: data starting with an image
// signature (JPEG, PNG, GIF, WebP, BMP, TIFF, ICO, JPEG 2000, JPEG XL,
// HEIF/AVIF) or a binary container's (a video in a zip may be listed by its
// exact digests). Everything carved is also carved into, up to
// Limits.MaxDepth, so that a zip inside a PDF, or a picture after junk in a
// zip entry, is found. Carve keeps no state: it is safe for concurrent use.
package carve

import (
	"bytes"
	"strconv"
)

// Part is an embedded file carved out of a recognised container.
type Part struct {
	// Where describes the part for audit logs. The forms are:
	//
	//	pdf image object 12                  (a JPEG or JPEG 2000 as stored)
	//	pdf image object 12 (pixels as png)  (raw pixels rebuilt as a PNG)
	//	pdf inline image 1 in object 5 [(pixels as png)]
	//	pdf embedded file object 9, pdf stream object 7 [(jpeg)]
	//	pdf jpeg at offset 1234              (in a PDF too broken to parse)
	//	svg data uri 1
	//	data uri 1                           (in other text: HTML, XML)
	//	id3 APIC 1 image/jpeg
	//	mp4 covr 1, mp4 metadata item ????  (QuickTime keyed metadata)
	//	flac picture 1 image/png
	//	mkv attachment cover.jpg (image/jpeg)
	//	zip entry a/b.jpg
	//	zip entry a.bin (the zip in its last 749 of 41943789 bytes)
	//	after the end of the png             (the bytes after the image)
	//	the jpeg without the 12 bytes after its end
	//	jpeg at offset 1234                  (after bytes that are no format)
	//
	// "the jpeg without..." decodes to the same picture as the file it was
	// carved from: only its exact digests are new. A part carved out of a
	// nested container is prefixed by its parent's description and " > "
	// ("zip entry doc.pdf > pdf image object 12"); the PDF of a JPEG/PDF
	// polyglot is "pdf polyglot > ...". Names read from the input
	// are cleaned of control characters.
	Where string
	// Data holds the embedded bytes exactly as stored, decoded where the
	// container encodes them (base64 in SVG data URIs, Deflate in ZIP entries
	// and PDF streams). Data may alias the slice passed to Carve: the caller
	// must not modify either while using the parts.
	Data []byte
}

// Limits bound the work Carve does. Zero values mean the defaults.
type Limits struct {
	MaxParts int   // 0 = 16
	MaxBytes int64 // total bytes of all parts and of everything inflated; 0 = 64 MiB
	MaxDepth int   // containers inside containers (a zip inside a pdf...): 0 = 2
}

// Result is what Search found.
type Result struct {
	// Parts are the embedded files carved, as Carve returns them.
	Parts []Part
	// Incomplete says why something that may be a picture, or a
	// container of some, was left uncarved ("" when nothing was): the
	// byte budget ran out, MaxParts was reached, or containers were
	// nested deeper than MaxDepth. A caller that must never call a
	// listed picture clean cannot call such a file clean either: the
	// picture may be what was left. Bytes that are no format (a zip
	// entry with no signature, zero padding) too big for the budget are
	// streamed to their end instead and not counted when they hold
	// neither a zip at their end nor a data: URI: they could only hide a
	// picture at an offset, which no viewer shows.
	Incomplete string
}

const (
	// scanBudgetFactor scales MaxBytes into the streaming budget: the
	// proxy's least 32 MiB lets 128 MiB of entries too big to carve be
	// examined (inflating runs at a few hundred MB/s).
	scanBudgetFactor = 4
	defaultMaxParts  = 16
	defaultMaxBytes  = 64 << 20
	defaultMaxDepth  = 2
)

// Carve returns the embedded files of data when data is one of the
// recognised containers (PDF, SVG, data: URIs in other text, ID3v2-tagged MP3, MP4/MOV/3GP
// (ISO BMFF), FLAC, Matroska/WebM, ZIP), and bytes appended after (or
// prepended before) a complete image (JPEG after EOI, PNG after IEND, GIF
// after trailer 0x3B, WebP/RIFF beyond its declared size; and an image
// signature found inside data at an offset > 0 when data itself is not a
// recognised format). It never fails: malformed containers yield what could
// be carved. Never panics, bounded by Limits.
//
// HEIF and AVIF files are images in their own right and carve to nothing.
func Carve(data []byte, lim Limits) (parts []Part) {
	return Search(data, lim).Parts
}

// Search is Carve that also says whether everything that may hold a
// picture was carved (Result.Incomplete).
func Search(data []byte, lim Limits) (res Result) {
	c := newCarver(lim)
	defer func() {
		// Every read is bounds-checked and FuzzCarve runs without this
		// safety net; it is here so that a bug never takes the proxy down.
		if recover() != nil {
			res = Result{Parts: c.parts, Incomplete: c.starved}
		}
	}()
	c.carve(data, 1, "")
	return Result{Parts: c.parts, Incomplete: c.starved}
}

// carveNoRecover is Carve without the safety net, for the fuzz target.
func carveNoRecover(data []byte, lim Limits) []Part {
	c := newCarver(lim)
	c.carve(data, 1, "")
	return c.parts
}

type carver struct {
	maxParts int
	maxDepth int
	maxBytes int64
	// budget is what is left of Limits.MaxBytes: every part's length and
	// every byte inflated (even when the result is thrown away) is taken
	// from it, so a zip bomb costs at most MaxBytes of inflation.
	budget int64
	parts  []Part
	// scanBudget is what is left of the bytes that may be inflated only
	// to be examined, streamed, and thrown away (entries too big to carve
	// whole): scanBudgetFactor times MaxBytes.
	scanBudget int64
	// starved is the first reason something that may be a picture was
	// left uncarved (Result.Incomplete).
	starved string
}

func newCarver(lim Limits) *carver {
	c := &carver{maxParts: lim.MaxParts, maxDepth: lim.MaxDepth, budget: lim.MaxBytes}
	if c.maxParts <= 0 {
		c.maxParts = defaultMaxParts
	}
	if c.maxDepth <= 0 {
		c.maxDepth = defaultMaxDepth
	}
	if c.budget <= 0 {
		c.budget = defaultMaxBytes
	}
	c.maxBytes = c.budget
	c.scanBudget = scanBudgetFactor * c.budget
	return c
}

// full reports whether no further part can be added. It is asked where
// more may follow (the next entry, box, frame...), so a true answer is
// recorded as starvation: what follows was not looked at.
func (c *carver) full() bool {
	switch {
	case len(c.parts) >= c.maxParts:
		c.starve("more than " + itoa(c.maxParts) + " embedded files")
		return true
	case c.budget <= 0:
		c.starve("the carving budget of " + itoa64(c.maxBytes) + " bytes ran out")
		return true
	}
	return false
}

// starve records why something that may be a picture was not carved.
func (c *carver) starve(why string) {
	if c.starved == "" {
		c.starved = why
	}
}

// spend takes n bytes of work from the budget.
func (c *carver) spend(n int) {
	c.budget -= int64(n)
}

// fits reports whether a part of n bytes can still be added.
func (c *carver) fits(n int) bool {
	return !c.full() && int64(n) <= c.budget
}

// add yields data as a part when it may be a picture (or a container of
// some) and, when the depth allows, carves inside it too (a zip inside a
// pdf, an image appended to a cover picture, a JPEG after junk in a zip
// entry...). Parts are charged to the budget.
func (c *carver) add(depth int, prefix, where string, data []byte) {
	if len(data) == 0 {
		return
	}
	if plausible(data) {
		if !c.fits(len(data)) {
			c.starve("no carving budget left for a " + itoa(len(data)) + "-byte " + prefix + where)
			return
		}
		c.spend(len(data))
		c.parts = append(c.parts, Part{Where: prefix + where, Data: data})
	}
	c.carveInto(depth, prefix, where, data)
}

// addDecoded is add for bytes that readAll already charged to the budget.
func (c *carver) addDecoded(depth int, prefix, where string, data []byte) {
	if len(data) == 0 {
		return
	}
	if len(c.parts) >= c.maxParts {
		if plausible(data) || sniff(data) != kUnknown {
			c.full() // records why
		}
		return
	}
	if plausible(data) {
		c.parts = append(c.parts, Part{Where: prefix + where, Data: data})
	}
	c.carveInto(depth, prefix, where, data)
}

func (c *carver) carveInto(depth int, prefix, where string, data []byte) {
	// A container left unopened may hold the picture; an image's own
	// bytes were added as a part, and bytes no format claims are only
	// searched for pictures at offsets, which no viewer shows.
	k := sniff(data)
	container := k != kUnknown && k != kJPEG && k != kPNG && k != kGIF && k != kWebP ||
		k == kUnknown && textLike(data) && hasDataURI(data)
	if depth >= c.maxDepth {
		if container {
			c.starve("containers nested deeper than " + itoa(c.maxDepth) + " (" + prefix + where + ")")
		}
		return
	}
	if len(c.parts) >= c.maxParts || c.budget <= 0 {
		if container {
			c.full() // records why
		}
		return
	}
	c.carve(data, depth+1, prefix+where+" > ")
}

// plausible reports whether b may be a picture or hold some: it starts
// with the signature of an image format or of a binary container (whose
// exact digests may be listed too: a video in a zip). The fonts attached to
// a film, the source files of a zip, XML text (SVG included: it is carved
// into, but the caller cannot decode it) are not parts: MaxParts is kept for
// what could match.
func plausible(b []byte) bool {
	if k := sniff(b); k != kUnknown {
		return k != kSVG
	}
	switch {
	case len(b) >= 18 && b[0] == 'B' && b[1] == 'M': // BMP: a known DIB header size
		switch le32(b[14:]) {
		case 12, 16, 40, 52, 56, 64, 108, 124:
			return true
		}
	case bytes.HasPrefix(b, []byte("II*\x00")), bytes.HasPrefix(b, []byte("MM\x00*")): // TIFF
		return true
	case len(b) >= 6 && b[0] == 0 && b[1] == 0 && (b[2] == 1 || b[2] == 2) && b[3] == 0 && le16(b[4:]) > 0: // ICO, CUR
		return true
	case bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cjP  \r\n\x87\n")), bytes.HasPrefix(b, []byte("\xff\x4f\xff\x51")): // JPEG 2000
		return true
	case bytes.HasPrefix(b, []byte("\xff\x0a")), bytes.HasPrefix(b, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n")): // JPEG XL
		return true
	}
	return false
}

// kind is a format recognised by its magic bytes.
type kind int

const (
	kUnknown kind = iota
	kJPEG
	kPNG
	kGIF
	kWebP
	kPDF
	kSVG
	kID3
	kMP4
	kFLAC
	kMKV
	kZIP
)

var kindNames = [...]string{"unknown", "jpeg", "png", "gif", "webp", "pdf", "svg", "id3", "mp4", "flac", "mkv", "zip"}

func (k kind) String() string { return kindNames[k] }

var (
	sigPNG  = []byte("\x89PNG\r\n\x1a\n")
	sigJPEG = []byte("\xff\xd8\xff")
	sigGIF  = []byte("GIF8")
	sigRIFF = []byte("RIFF")
	sigPDF  = []byte("%PDF-")
	sigEBML = []byte("\x1a\x45\xdf\xa3")
	sigZIP  = []byte("PK\x03\x04")
)

// sniff recognises data by its magic bytes.
func sniff(b []byte) kind {
	switch {
	case len(b) < 4:
		return kUnknown
	case bytes.HasPrefix(b, sigJPEG):
		return kJPEG
	case bytes.HasPrefix(b, sigPNG):
		return kPNG
	case isGIFSig(b):
		return kGIF
	case len(b) >= 12 && bytes.HasPrefix(b, sigRIFF) && string(b[8:12]) == "WEBP":
		return kWebP
	case bytes.HasPrefix(b, sigZIP), bytes.HasPrefix(b, []byte("PK\x07\x08PK\x03\x04")):
		return kZIP
	case bytes.HasPrefix(b, sigEBML):
		return kMKV
	case bytes.HasPrefix(b, []byte("fLaC")):
		return kFLAC
	case len(b) >= 10 && string(b[:3]) == "ID3" && b[3] >= 2 && b[3] <= 4 && b[4] != 0xff:
		return kID3
	case len(b) >= 8 && isBMFFBox(string(b[4:8])):
		return kMP4
	case isPDF(b):
		return kPDF
	case isXML(b):
		return kSVG
	}
	return kUnknown
}

func isGIFSig(b []byte) bool {
	return len(b) >= 6 && bytes.HasPrefix(b, sigGIF) && (b[4] == '7' || b[4] == '9') && b[5] == 'a'
}

// isPDF accepts %PDF- anywhere in the first 1024 bytes, as readers do.
func isPDF(b []byte) bool {
	return bytes.Contains(b[:min(len(b), 1024)], sigPDF)
}

func isBMFFBox(t string) bool {
	switch t {
	case "ftyp", "moov", "mdat", "free", "skip", "wide":
		return true
	}
	return false
}

// isXML recognises SVG as a browser does: after an optional UTF-8 BOM,
// white space, comments, processing instructions and a doctype, of any
// length, the root element is svg, with or without a namespace prefix
// (<s:svg xmlns:s=...>), or declares the SVG namespace
// (https://www.w3.org/TR/SVG2/struct.html#Namespace). Other XML is text
// like any other: its data: URIs are carved (see textLike), but it is no
// picture candidate, so that the XML parts of an office document are not
// taken for pictures.
func isXML(b []byte) bool {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	// Every step consumes what it skips: linear in the prolog's length.
	for {
		b = bytes.TrimLeft(b, " \t\r\n")
		switch {
		case bytes.HasPrefix(b, []byte("<?")):
			b = skipPast(b[2:], "?>")
		case bytes.HasPrefix(b, []byte("<!--")):
			b = skipPast(b[4:], "-->")
		case len(b) >= 9 && bytes.EqualFold(b[:9], []byte("<!DOCTYPE")):
			b = skipDoctype(b[9:])
		case bytes.HasPrefix(b, []byte("<")):
			return isSVGRoot(b[1:])
		default:
			return false
		}
		if b == nil {
			return false
		}
	}
}

// skipPast returns b after the first end, or nil when there is none.
func skipPast(b []byte, end string) []byte {
	i := bytes.Index(b, []byte(end))
	if i < 0 {
		return nil
	}
	return b[i+len(end):]
}

// skipDoctype returns b after a doctype's closing '>', past an internal
// subset in brackets (whose declarations hold '>' of their own).
func skipDoctype(b []byte) []byte {
	i := bytes.IndexAny(b, "[>")
	if i < 0 {
		return nil
	}
	if b[i] == '>' {
		return b[i+1:]
	}
	b = skipPast(b[i+1:], "]")
	if b == nil {
		return nil
	}
	return skipPast(b, ">")
}

var svgNamespace = []byte("http://www.w3.org/2000/svg")

// isSVGRoot reports whether the start tag at b (after its '<') is an svg
// element, by its local name or by the SVG namespace it declares.
func isSVGRoot(b []byte) bool {
	end := bytes.IndexByte(b, '>')
	if end < 0 {
		end = len(b)
	}
	tag := b[:end]
	name := tag
	if i := bytes.IndexAny(tag, " \t\r\n/"); i >= 0 {
		name = tag[:i]
	}
	if i := bytes.LastIndexByte(name, ':'); i >= 0 {
		name = name[i+1:]
	}
	return string(name) == "svg" || bytes.Contains(tag, svgNamespace)
}

// textLike reports whether data may be markup or other text that a browser
// shows (HTML, XML, SVG), whose data: URIs are then carved: a data: URI is
// a container of its own wherever it is. Its first 4 KiB hold no NUL byte,
// which random or binary data almost always does.
func textLike(b []byte) bool {
	return len(b) > 0 && bytes.IndexByte(b[:min(len(b), 4096)], 0) < 0
}

// carve dispatches on the format of data. depth is 1 for the uploaded file.
func (c *carver) carve(data []byte, depth int, prefix string) {
	if c.full() {
		return
	}
	k := sniff(data)
	switch k {
	case kJPEG, kPNG, kGIF, kWebP:
		end := c.image(k, data, depth, prefix)
		// A PDF reader opens a file whose %PDF- header is anywhere in its
		// first kilobyte: the JPEG/PDF polyglot is also a PDF. (A PDF
		// appended after the image's end is carved as what follows it.)
		if at := bytes.Index(data[:min(len(data), 1024)], sigPDF); at >= 0 && (end < 0 || at < end || depth >= c.maxDepth) {
			c.pdf(data, depth, prefix+"pdf polyglot > ")
		}
	case kPDF:
		c.pdf(data, depth, prefix)
	case kSVG:
		c.svg(data, depth, prefix)
	case kID3:
		c.id3(data, depth, prefix)
	case kMP4:
		c.mp4(data, depth, prefix)
	case kFLAC:
		c.flac(data, depth, prefix)
	case kMKV:
		c.mkv(data, depth, prefix)
	case kZIP:
		c.zip(data, depth, prefix)
	default:
		if textLike(data) {
			c.dataURIs(data, depth, prefix, "data uri ")
		}
		c.scanEmbedded(data, depth, prefix)
		// Zip readers start at the end of the file: data with a valid
		// central directory at its end is a zip whatever comes first
		// (self-extracting archives, zips with junk prepended).
		c.zipFromEnd(data, depth, prefix)
	}
}

// clean makes a name read from the input safe for an audit log line.
func clean(s string) string {
	const max = 120
	var b []byte
	for i, r := range s {
		if i >= max {
			b = append(b, "..."...)
			break
		}
		if r < 0x20 || r == 0x7f || r == 0xfffd || (r >= 0x80 && r < 0xa0) || r == 0x2028 || r == 0x2029 {
			b = append(b, '?')
			continue
		}
		b = append(b, string(r)...)
	}
	return string(b)
}

func itoa(n int) string { return strconv.Itoa(n) }

func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

func be16(b []byte) int { return int(b[0])<<8 | int(b[1]) }
func be24(b []byte) int { return int(b[0])<<16 | int(b[1])<<8 | int(b[2]) }
func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func be64(b []byte) uint64 { return uint64(be32(b))<<32 | uint64(be32(b[4:])) }
func le16(b []byte) int    { return int(b[0]) | int(b[1])<<8 }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func le64(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }

// span returns b[off:off+n] when it is entirely inside b.
func span(b []byte, off, n int) ([]byte, bool) {
	if off < 0 || n < 0 || off > len(b) || n > len(b)-off {
		return nil, false
	}
	return b[off : off+n], true
}

// span64 is span for lengths read as 64-bit numbers.
func span64(b []byte, off int, n uint64) ([]byte, bool) {
	if n > uint64(len(b)) {
		return nil, false
	}
	return span(b, off, int(n))
}
