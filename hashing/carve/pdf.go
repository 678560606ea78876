package carve

import (
	"bytes"
	"io"
	"sort"
)

// PDF: objects are found by scanning for "N G obj" (no valid xref needed);
// every stream with /Subtype /Image is carved (JPEG and JPEG 2000 as
// stored, raw pixels rebuilt as a PNG), and so is every other stream whose
// decoded bytes start with a recognised signature (an embedded file, a JPEG
// hidden in a stream that is not declared as an image).

type pdfObjLoc struct {
	num, gen int
	body     int // offset just after "obj"
	end      int // where the next object starts (its number), or the end
}

type pdfDoc struct {
	b []byte
	// carved are the extents of the streams carved as stored.
	carved [][2]int
	objs   []pdfObjLoc
	byNum  map[int]int // object number -> index in objs of its last definition
	// values caches the value of each object (by index in objs) that was
	// parsed, for the references to it.
	values  map[int]any
	lookups map[int][]byte // Indexed palettes by object number
	// retry is what is left for parsing objects past the start of the next
	// one. An object's value is first parsed within its own extent, which
	// keeps the work linear however broken the file; only when that fails
	// (a string quoting "1 0 obj") is it parsed again to the end of the
	// file, and an unterminated string makes that cost the whole file.
	retry int
	// The last search for "endstream": from where, and what it found (-1:
	// none up to the end), so that many streams lacking one stay linear.
	endFrom, endAt int
}

// parse parses the value at p within b[:limit].
func (d *pdfDoc) parse(p, limit int) (v any, end int, ok bool) {
	ps := pdfParser{b: d.b[:limit], p: p}
	v, ok = ps.value(0)
	return v, ps.p, ok
}

// parseObject parses the value of object i, within its extent and, when
// that fails and the budget allows, up to the end of the file.
func (d *pdfDoc) parseObject(i int) (v any, end int, ok bool) {
	o := d.objs[i]
	v, end, ok = d.parse(o.body, o.end)
	if !ok && o.end < len(d.b) && d.retry > 0 {
		v, end, ok = d.parse(o.body, len(d.b))
		d.retry -= end - o.body + 1
	}
	return v, end, ok
}

// object returns the value of object i, parsed once.
func (d *pdfDoc) object(i int) any {
	if v, ok := d.values[i]; ok {
		return v
	}
	v, _, ok := d.parseObject(i)
	if !ok {
		v = nil
	}
	d.values[i] = v
	return v
}

const maxPDFObjects = 1 << 20

func pdfScan(b []byte) *pdfDoc {
	d := &pdfDoc{b: b, byNum: make(map[int]int), values: make(map[int]any), retry: 4*len(b) + 1<<20, endFrom: -1}
	p := 0
	for len(d.objs) < maxPDFObjects {
		i := bytes.Index(b[p:], []byte("obj"))
		if i < 0 {
			break
		}
		k := p + i
		p = k + 3
		if p < len(b) && !isPDFSpace(b[p]) && !isPDFDelim(b[p]) {
			continue // objstm, object...
		}
		// Backwards: space, generation, space, number, then a boundary.
		j := k
		gEnd := j
		for j > 0 && isPDFSpace(b[j-1]) {
			j--
		}
		if j == gEnd {
			continue
		}
		gEnd = j
		for j > 0 && b[j-1] >= '0' && b[j-1] <= '9' && gEnd-j < 6 {
			j--
		}
		if j == gEnd {
			continue
		}
		gen := atoiDigits(b[j:gEnd])
		nEnd := j
		for j > 0 && isPDFSpace(b[j-1]) {
			j--
		}
		if j == nEnd {
			continue
		}
		nEnd = j
		for j > 0 && b[j-1] >= '0' && b[j-1] <= '9' && nEnd-j < 10 {
			j--
		}
		if j == nEnd || (j > 0 && !isPDFSpace(b[j-1]) && !isPDFDelim(b[j-1])) {
			continue
		}
		num := atoiDigits(b[j:nEnd])
		if n := len(d.objs); n > 0 {
			d.objs[n-1].end = j
		}
		d.byNum[num] = len(d.objs)
		d.objs = append(d.objs, pdfObjLoc{num: num, gen: gen, body: p, end: len(b)})
	}
	return d
}

func atoiDigits(b []byte) int {
	n := 0
	for _, c := range b {
		n = n*10 + int(c-'0')
	}
	return n
}

// resolve follows indirect references (a few levels) to the object's value.
func (d *pdfDoc) resolve(v any) any {
	for range 4 {
		r, ok := v.(pdfRef)
		if !ok {
			return v
		}
		i, ok := d.byNum[r.num]
		if !ok {
			return nil
		}
		v = d.object(i)
	}
	return nil
}

func (d *pdfDoc) resolveInt(v any) (int64, bool) {
	switch v := d.resolve(v).(type) {
	case int64:
		return v, true
	case float64:
		if v >= 0 && v <= 1<<40 {
			return int64(v), true
		}
	}
	return 0, false
}

// pdfStream is a stream object found in the file.
type pdfStream struct {
	num  int
	dict pdfDict
	raw  []byte
	off  int // offset of raw in the file, -1 for inline images
}

// stream reads the stream of the object whose body (after "obj") starts at
// p: its dictionary, its raw bytes, and the offset after "endstream".
//
// An object that is not a stream is returned with ok false and next just
// after its value (-1 when it does not parse).
func (d *pdfDoc) stream(i int) (s pdfStream, next int, ok bool) {
	b := d.b
	v, q, ok := d.parseObject(i)
	if !ok {
		return s, -1, false
	}
	dict, isDict := v.(pdfDict)
	q = pdfSkipSpace(b, q)
	if !isDict || !bytes.HasPrefix(b[q:], []byte("stream")) {
		return s, q, false
	}
	q += 6
	for q < len(b) && (b[q] == ' ' || b[q] == '\t') {
		q++
	}
	if q < len(b) && b[q] == '\r' {
		q++
	}
	if q < len(b) && b[q] == '\n' {
		q++
	}
	start := q
	// Trust /Length when "endstream" follows it (or the file ends there).
	if l, ok := d.resolveInt(dict["Length"]); ok && l >= 0 && l <= int64(len(b)-start) {
		end := start + int(l)
		after := pdfSkipSpace(b, end)
		if bytes.HasPrefix(b[after:], []byte("endstream")) {
			return pdfStream{dict: dict, raw: b[start:end], off: start}, after + 9, true
		}
		if after == len(b) {
			return pdfStream{dict: dict, raw: b[start:end], off: start}, len(b), true
		}
	}
	end := d.endstream(start)
	if end < 0 {
		return s, -1, false // truncated
	}
	next = end + 9
	if end > start && b[end-1] == '\n' {
		end--
	}
	if end > start && b[end-1] == '\r' {
		end--
	}
	return pdfStream{dict: dict, raw: b[start:end], off: start}, next, true
}

// endstream returns the offset of the first "endstream" at or after p.
func (d *pdfDoc) endstream(p int) int {
	if d.endFrom >= 0 && p >= d.endFrom && (d.endAt < 0 || p <= d.endAt) {
		return d.endAt
	}
	d.endFrom, d.endAt = p, -1
	if i := bytes.Index(d.b[p:], []byte("endstream")); i >= 0 {
		d.endAt = p + i
	}
	return d.endAt
}

// PDF streams that are neither pictures nor masks (page contents, fonts,
// embedded files) are each opened to see whether they hold a picture or a
// container. Their number is bounded, in proportion to the file, so that
// thousands of tiny decoys cost bounded work; a file with more streams than
// that is incomplete, never clean. Ghostscript writes a 500-page text PDF
// as 364 KB with 501 streams (a content stream a page, ~730 bytes each),
// and a sparse page's content compresses to under 200 bytes: one probe per
// 128 bytes, and never fewer than minPDFProbes, opens such files whole,
// while decoys of ~60-byte streams cannot all be opened. Opening a stream
// costs some tens of microseconds.
const (
	minPDFProbes     = 1 << 12
	pdfBytesPerProbe = 128
)

// pdfProbes is how many streams of a PDF of n bytes are opened.
func pdfProbes(n int) int { return max(minPDFProbes, n/pdfBytesPerProbe) }

func (c *carver) pdf(data []byte, depth int, prefix string) {
	d := pdfScan(data)
	var images, masks, others []pdfStream
	maskNums := make(map[int]bool)
	consumed := 0
	for i, o := range d.objs {
		if o.body < consumed {
			continue // inside the data of the previous stream
		}
		s, next, ok := d.stream(i)
		if next > consumed {
			// Objects that start inside this one's value or stream data
			// are not objects ("(1 0 obj)" in a string, bytes of a JPEG).
			consumed = next
		}
		if !ok {
			continue
		}
		s.num = o.num
		if r, ok := s.dict["SMask"].(pdfRef); ok {
			maskNums[r.num] = true
		}
		if r, ok := s.dict["Mask"].(pdfRef); ok {
			maskNums[r.num] = true
		}
		if d.resolveName(s.dict["Subtype"]) == "Image" {
			images = append(images, s)
		} else {
			others = append(others, s)
		}
	}
	// Pictures first, then embedded files and other streams, and the
	// soft masks of the pictures last: MaxParts may not allow them all.
	n := 0
	// Pictures stored as they are (a JPEG, a JPEG 2000) cost only their
	// own bytes, which the body holds: they go before the ones to
	// inflate, so that a stream inflating to megabytes of zero pixels
	// cannot spend the budget before a stored picture is reached.
	var inflated []pdfStream
	for _, s := range images {
		if maskNums[s.num] {
			masks = append(masks, s)
			continue
		}
		names, _ := d.filters(s.dict)
		if chain, codec := splitFilters(names); codec == "" || len(chain) > 0 {
			inflated = append(inflated, s)
			continue
		}
		c.pdfImage(d, s, depth, prefix)
	}
	for _, s := range inflated {
		c.pdfImage(d, s, depth, prefix)
	}
	sort.SliceStable(others, func(i, j int) bool {
		return d.resolveName(others[i].dict["Type"]) == "EmbeddedFile" && d.resolveName(others[j].dict["Type"]) != "EmbeddedFile"
	})
	var contents []pdfStream
	probes := pdfProbes(len(data))
	for _, s := range others {
		if c.full() {
			break
		}
		if n >= probes {
			c.starve("more than " + itoa(probes) + " pdf streams to open in " + itoa(len(data)) + " bytes")
			break
		}
		n++
		if !c.pdfOther(d, s, depth, prefix) && d.mayBeContent(s.dict) {
			contents = append(contents, s)
		}
	}
	// Inline images (BI ... ID ... EI) in page and form contents:
	// Ghostscript writes small pictures that way, and nothing stops a big
	// one. Decoding contents is bounded apart from the parts' budget, so
	// that a heavy page does not crowd the pictures out.
	left := c.maxBytes
	inline := 0
	for _, s := range contents {
		if c.full() || left <= 0 {
			break
		}
		names, parms := d.filters(s.dict)
		content, _ := readUpTo(d.decoder(s.raw, names, parms), left)
		left -= int64(len(content))
		c.pdfInline(d, content, s.num, &inline, &left, depth, prefix)
	}
	for _, s := range masks {
		c.pdfImage(d, s, depth, prefix)
	}
	// Readers repair broken files: a JPEG stored as it is in an object
	// that did not parse is still a picture they may show. Images found
	// inside the file, other than the streams already carved, are carved.
	c.scanImages(data, depth, prefix+"pdf ", func(at int) bool {
		for _, e := range d.carved {
			if at >= e[0] && at < e[1] {
				return true
			}
		}
		return false
	})
}

// addRaw adds a stream as it is stored, and remembers where it is.
func (c *carver) addRaw(d *pdfDoc, s pdfStream, depth int, prefix, where string) {
	if s.off >= 0 {
		d.carved = append(d.carved, [2]int{s.off, s.off + len(s.raw)})
	}
	c.add(depth, prefix, where, s.raw)
}

// mayBeContent reports whether a stream may be a content stream (a page's,
// a form's, a pattern's...) rather than a font, a profile, metadata...
func (d *pdfDoc) mayBeContent(dict pdfDict) bool {
	switch d.resolveName(dict["Type"]) {
	case "", "XObject", "Pattern":
	default:
		return false
	}
	switch d.resolveName(dict["Subtype"]) {
	case "", "Form":
	default:
		return false
	}
	for _, k := range []pdfName{"Length1", "N", "FunctionType", "ShadingType"} {
		if _, ok := dict[k]; ok {
			return false
		}
	}
	return true
}

func (d *pdfDoc) resolveName(v any) string {
	n, _ := d.resolve(v).(pdfName)
	return string(n)
}

// filters returns the stream's filter names and their parameters.
func (d *pdfDoc) filters(dict pdfDict) ([]string, []pdfDict) {
	var names []string
	var parms []pdfDict
	switch f := d.resolve(dict["Filter"]).(type) {
	case pdfName:
		names = []string{string(f)}
	case pdfArray:
		for _, x := range f {
			names = append(names, d.resolveName(x))
		}
	}
	switch p := d.resolve(dict["DecodeParms"]).(type) {
	case pdfDict:
		parms = []pdfDict{p}
	case pdfArray:
		for _, x := range p {
			pd, _ := d.resolve(x).(pdfDict)
			parms = append(parms, pd)
		}
	}
	for len(parms) < len(names) {
		parms = append(parms, nil)
	}
	return names, parms
}

// splitFilters separates the decoding filters from a final image codec
// (DCT, JPX), whose output is a file the caller decodes itself.
func splitFilters(names []string) (chain []string, codec string) {
	if n := len(names); n > 0 {
		switch names[n-1] {
		case "DCTDecode", "DCT":
			return names[:n-1], "jpeg"
		case "JPXDecode":
			return names[:n-1], "jpx"
		}
	}
	return names, ""
}

func (c *carver) pdfImage(d *pdfDoc, s pdfStream, depth int, prefix string) {
	c.pdfImageAs(d, s, depth, prefix, "pdf image object "+itoa(s.num))
}

func (c *carver) pdfImageAs(d *pdfDoc, s pdfStream, depth int, prefix, where string) {
	if c.full() {
		return
	}
	names, parms := d.filters(s.dict)
	chain, codec := splitFilters(names)
	if codec != "" {
		if len(chain) == 0 {
			c.addRaw(d, s, depth, prefix, where)
			return
		}
		if out, _ := c.readAll(d.decoder(s.raw, chain, parms), 0); len(out) > 0 {
			c.addDecoded(depth, prefix, where, out)
		}
		return
	}
	if b, ok := s.dict["ImageMask"].(bool); ok && b {
		return // a stencil, not a picture
	}
	c.pdfPixels(d, s, chain, parms, depth, prefix, where)
}

// pdfOther carves a stream that is not declared as an image when its
// decoded bytes start with a recognised signature. It reports whether the
// stream was recognised (carved, or beyond the budget).
func (c *carver) pdfOther(d *pdfDoc, s pdfStream, depth int, prefix string) bool {
	names, parms := d.filters(s.dict)
	chain, codec := splitFilters(names)
	where := "pdf stream object " + itoa(s.num)
	if d.resolveName(s.dict["Type"]) == "EmbeddedFile" {
		where = "pdf embedded file object " + itoa(s.num)
	}
	if codec == "jpeg" || codec == "jpx" {
		where += " (" + codec + ")"
	}
	if len(chain) == 0 {
		if codec != "" || sniff(s.raw) != kUnknown {
			c.addRaw(d, s, depth, prefix, where)
			return true
		}
		return false
	}
	var head [64]byte
	n, _ := io.ReadFull(d.decoder(s.raw, chain, parms), head[:])
	if n == 0 || (codec == "" && sniff(head[:n]) == kUnknown) {
		return false
	}
	if out, _ := c.readAll(d.decoder(s.raw, chain, parms), 0); len(out) > 0 {
		c.addDecoded(depth, prefix, where, out)
	}
	return true
}
