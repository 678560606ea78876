package carve

import (
	"bytes"
	"compress/bzip2"
	"compress/flate"
	"io"
	"sort"
	"strconv"
)

// ZIP: the entries named by the central directory (what unzip tools
// extract) and the local file headers found walking from the start (what is
// left of a truncated zip, or entries the directory does not list).

type zipEntry struct {
	name         string
	flags        int
	method       int
	csize, usize uint64
	local        int // offset of the local file header in data
}

const maxZipEntries = 1 << 16

// zipCentral reads the central directory found from the end-of-central-
// directory record. Offsets are corrected for bytes prepended to the zip
// (self-extracting archives, a zip appended to an image and carved out of
// it) by comparing where the directory is with where it says it is.
func zipCentral(data []byte) []zipEntry {
	from := max(0, len(data)-(22+0xffff))
	i := bytes.LastIndex(data[from:], []byte("PK\x05\x06"))
	if i < 0 {
		return nil
	}
	eocd := from + i
	h, ok := span(data, eocd, 22)
	if !ok {
		return nil
	}
	count := uint64(le16(h[10:]))
	cdSize := uint64(le32(h[12:]))
	cdOff := uint64(le32(h[16:]))
	end := eocd // the directory ends where the record (or zip64's) starts
	if cdOff == 0xffffffff || cdSize == 0xffffffff || count == 0xffff {
		// ZIP64: the locator just before the record points at the
		// zip64 end record, which holds the real values.
		if l, ok := span(data, eocd-20, 20); ok && string(l[:4]) == "PK\x06\x07" {
			declared := le64(l[8:])
			// The zip64 record is normally right before the locator.
			at := eocd - 20 - 56
			if r, ok := span(data, at, 56); ok && string(r[:4]) == "PK\x06\x06" {
				count, cdSize, cdOff = le64(r[32:]), le64(r[40:]), le64(r[48:])
				end = at
			} else if r, ok := span64(data, 0, declared); ok && len(data)-len(r) >= 56 && string(data[len(r):len(r)+4]) == "PK\x06\x06" {
				r = data[len(r):]
				count, cdSize, cdOff = le64(r[32:]), le64(r[40:]), le64(r[48:])
				end = int(declared)
			}
		}
	}
	if cdSize > uint64(end) {
		return nil
	}
	start := end - int(cdSize)
	shift := int64(start) - int64(cdOff)
	if cdOff > uint64(len(data)) {
		shift = 0
	}
	var out []zipEntry
	p := start
	for n := uint64(0); n < count && len(out) < maxZipEntries; n++ {
		h, ok := span(data, p, 46)
		if !ok || string(h[:4]) != "PK\x01\x02" {
			break
		}
		e := zipEntry{
			flags:  le16(h[8:]),
			method: le16(h[10:]),
			csize:  uint64(le32(h[20:])),
			usize:  uint64(le32(h[24:])),
		}
		nl, el, cl := le16(h[28:]), le16(h[30:]), le16(h[32:])
		local := uint64(le32(h[42:]))
		name, _ := span(data, p+46, nl)
		e.name = string(name)
		if extra, ok := span(data, p+46+nl, el); ok {
			e.usize, e.csize, local = zip64Extra(extra, e.usize, e.csize, local)
		}
		off := int64(local) + shift
		if local <= uint64(len(data)) && off >= 0 && off < int64(len(data)) {
			e.local = int(off)
			out = append(out, e)
		}
		p += 46 + nl + el + cl
	}
	return out
}

// zip64Extra replaces the 32-bit fields saturated at 0xFFFFFFFF by the
// values of the ZIP64 extended information extra field.
func zip64Extra(extra []byte, usize, csize, local uint64) (uint64, uint64, uint64) {
	for len(extra) >= 4 {
		id, n := le16(extra), le16(extra[2:])
		body, ok := span(extra, 4, n)
		if !ok {
			break
		}
		if id == 0x0001 {
			for _, f := range []*uint64{&usize, &csize, &local} {
				if *f != 0xffffffff {
					continue
				}
				if len(body) < 8 {
					break
				}
				*f = le64(body)
				body = body[8:]
			}
		}
		extra = extra[4+n:]
	}
	return usize, csize, local
}

func (c *carver) zip(data []byte, depth int, prefix string) {
	cd := zipCentral(data)
	byOff := make(map[int]*zipEntry, len(cd))
	for i := range cd {
		if byOff[cd[i].local] == nil {
			byOff[cd[i].local] = &cd[i]
		}
	}
	seen := make(map[int]bool)
	var items []zipItem
	p := 0
	if bytes.HasPrefix(data, []byte("PK\x07\x08")) { // spanned archive marker
		p = 4
	}
	for n := 0; n < maxZipEntries && p >= 0 && p < len(data) && !c.full(); n++ {
		if !bytes.HasPrefix(data[p:], sigZIP) {
			if len(cd) > 0 {
				break
			}
			// No directory to rely on (a truncated zip): resynchronise on
			// the next local header.
			i := bytes.Index(data[p:], sigZIP)
			if i < 0 {
				break
			}
			p += i
		}
		if seen[p] {
			break
		}
		seen[p] = true
		var it zipItem
		var ok bool
		it, ok, p = c.zipLocate(data, p, byOff[p])
		if ok {
			items = append(items, it)
		}
	}
	items = c.zipListed(data, cd, seen, items)
	c.zipCarve(items, depth, prefix)
}

// zipFromEnd carves a zip recognised by its central directory at the end of
// data rather than by its first bytes.
func (c *carver) zipFromEnd(data []byte, depth int, prefix string) {
	if c.full() {
		return
	}
	c.zipCarve(c.zipListed(data, zipCentral(data), make(map[int]bool), nil), depth, prefix)
}

func (c *carver) zipListed(data []byte, cd []zipEntry, seen map[int]bool, items []zipItem) []zipItem {
	for i := range cd {
		if seen[cd[i].local] {
			continue // two names for one local entry: an overlapping bomb
		}
		seen[cd[i].local] = true
		if it, ok, _ := c.zipLocate(data, cd[i].local, &cd[i]); ok {
			items = append(items, it)
		}
	}
	return items
}

// zipItem is an entry located in a zip, not yet carved.
type zipItem struct {
	where  string
	method int    // 0 stored, 8 deflate, 12 bzip2
	comp   []byte // the entry's bytes as stored
	usize  uint64 // its declared inflated size
	// out is the entry already inflated (charged), when finding its end
	// took inflating it: decoded says so.
	out     []byte
	decoded bool
	// head is the entry's first bytes inflated, to tell pictures and
	// containers from the rest without inflating all of it.
	head []byte
}

// zipSniffBytes is how much of an entry is inflated to tell whether it
// may be a picture or a container. What it misses (an SVG whose prolog is
// longer, a zip behind junk, data: URIs in text) is found when the entry
// is carved or streamed with the others (zipRest).
const zipSniffBytes = 4096

// zipCarve carves the located entries: first those whose first bytes say
// they may be a picture or hold some (nested containers included), then
// the others, smallest first, with what is left of the budget. A zip whose
// first entry inflates to 32 MiB of zeros therefore no longer spends the
// budget before the picture after it is reached: the zeros are never
// inflated past their first 4 KiB unless the budget is left over. An entry
// of the first kind the budget cannot afford makes the search incomplete;
// one of the second kind only does when streaming it shows that it may
// hide something after all (zipRest).
func (c *carver) zipCarve(items []zipItem, depth int, prefix string) {
	var rest []*zipItem
	for i := range items {
		it := &items[i]
		if !it.decoded && it.method != 0 {
			if uint64(len(it.comp)) == 0 || it.usize == 0 {
				continue
			}
			if c.full() {
				return
			}
			head, _ := c.readAll(io.LimitReader(zipReader(it.method, it.comp), int64(min(it.usize, zipSniffBytes))), 0)
			it.head = head
		} else if it.decoded {
			it.head = it.out[:min(len(it.out), zipSniffBytes)]
		} else {
			it.head = it.comp[:min(len(it.comp), zipSniffBytes)]
		}
		if !maybePicture(it.head) {
			rest = append(rest, it)
			continue
		}
		c.zipEntry(it, depth, prefix, true)
	}
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].usize < rest[j].usize })
	for _, it := range rest {
		c.zipRest(it, depth, prefix)
	}
}

// zipRest carves an entry whose first bytes are no format when the budget
// affords it. One it does not afford is still examined, streamed, for what
// a first-bytes sniff misses: a zip at its end (zip readers start from the
// end-of-central-directory record, so junk before a zip hides it from a
// sniff but not from unzip) and data: URIs in text (the XML of an office
// document). Only an entry that holds one of those, or that could not be
// examined at all, makes the search incomplete: 40 MB of spreadsheet XML
// inflated to its end and found to be nothing does not.
func (c *carver) zipRest(it *zipItem, depth int, prefix string) {
	roomy := c.budget > 0 && len(c.parts) < c.maxParts
	if it.decoded || it.method == 0 {
		data := it.comp
		if it.decoded {
			data = it.out
		}
		switch {
		case roomy:
			c.zipEntry(it, depth, prefix, false)
		case hiddenContainer(data):
			c.full() // records why
		}
		return
	}
	if roomy && it.usize <= uint64(c.budget) {
		c.zipEntry(it, depth, prefix, false)
		return
	}
	size := strconv.FormatUint(it.usize, 10)
	tail, total, uri, ok := c.zipStream(it)
	if !ok {
		c.starve("no inflating budget left to examine the " + size + " bytes of " + prefix + it.where)
		return
	}
	if uri {
		c.starve("no carving budget left for the " + size + " bytes of " + prefix + it.where + ", text holding a data: URI")
		return
	}
	at, found := zipEndAt(tail)
	if !found {
		return
	}
	if at < 0 {
		c.starve("no carving budget left for the zip at the end of the " + size + " bytes of " + prefix + it.where)
		return
	}
	c.add(depth, prefix, it.where+" (the zip in its last "+itoa(len(tail)-at)+" of "+itoa64(total)+" bytes)", tail[at:])
}

// hiddenContainer reports whether data, which starts with no format, ends
// with a zip or is text holding a data: URI.
func hiddenContainer(data []byte) bool {
	_, found := zipEndAt(data[max(0, len(data)-zipTailBytes):])
	return found || textLike(data) && hasDataURI(data)
}

// zipTailBytes is the least tail of an entry kept while streaming it: a
// zip's end-of-central-directory record is in its last 64 KiB + 22 bytes.
const zipTailBytes = 22 + 0xffff

// zipEndAt looks for a zip's end-of-central-directory record in tail.
// found says there is one; at is where, in tail, the zip it closes starts
// (by the directory's declared size and offset), or -1 when it starts
// before tail.
func zipEndAt(tail []byte) (at int, found bool) {
	for end, tries := len(tail), 0; ; tries++ {
		i := bytes.LastIndex(tail[max(0, len(tail)-zipTailBytes):end], []byte("PK\x05\x06"))
		if i < 0 {
			return -1, false
		}
		if tries == 64 {
			// Signatures crafted to make this search quadratic: a zip
			// may be there, and it is not worth finding.
			return -1, true
		}
		i += max(0, len(tail)-zipTailBytes)
		end = i
		h, ok := span(tail, i, 22)
		if !ok || i+22+le16(h[20:]) > len(tail) {
			continue // a signature in the comment or data, not a record
		}
		cdSize, cdOff := int64(le32(h[12:])), int64(le32(h[16:]))
		start := int64(i) - cdSize - cdOff
		if cdSize == 0xffffffff || cdOff == 0xffffffff || start < 0 {
			return -1, true
		}
		return int(start), true
	}
}

// zipStreamChunk is how much is inflated at a time while streaming.
const zipStreamChunk = 64 << 10

// zipStream inflates a compressed entry to its end (or one byte past its
// declared size), charging the inflating budget rather than the parts'
// budget and keeping only its tail: the last zipTailBytes, or more, up to
// what the parts' budget could carve. uri says the entry is text holding
// "data:". ok is false when the inflating budget ran out first.
func (c *carver) zipStream(it *zipItem) (tail []byte, total int64, uri, ok bool) {
	keep := max(zipTailBytes, min(int(max(c.budget, 0)), zipMaxTail))
	text := textLike(it.head)
	r := io.LimitReader(zipReader(it.method, it.comp), int64(it.usize)+1)
	buf := make([]byte, 0, min(2*keep, int(min(it.usize, 1<<40))+1)+zipStreamChunk)
	var carry [4]byte
	nc := 0
	for {
		if c.scanBudget <= 0 {
			return nil, total, false, false
		}
		if len(buf)+zipStreamChunk > cap(buf) {
			buf = append(buf[:0], buf[len(buf)-keep:]...)
		}
		n, err := r.Read(buf[len(buf) : len(buf)+min(zipStreamChunk, int(c.scanBudget))])
		c.scanBudget -= int64(n)
		total += int64(n)
		if text && !uri && n > 0 {
			// Across chunks: the last bytes of the previous one lead.
			chunk := buf[len(buf) : len(buf)+n]
			w := append(carry[:nc:nc], chunk[:min(len(chunk), 4)]...)
			uri = hasDataColon(w) || hasDataColon(chunk)
			nc = copy(carry[:], chunk[max(0, len(chunk)-4):])
		}
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	return buf[max(0, len(buf)-keep):], total, uri, true
}

// zipMaxTail bounds the tail kept while streaming an entry, so that a zip
// behind megabytes of junk is carved, in bounded memory.
const zipMaxTail = 16 << 20

// maybePicture reports whether data starting with head may be a picture or
// a container carved into.
func maybePicture(head []byte) bool {
	return plausible(head) || sniff(head) != kUnknown
}

func zipReader(method int, comp []byte) io.Reader {
	if method == 8 {
		return flate.NewReader(bytes.NewReader(comp))
	}
	return bzip2.NewReader(bytes.NewReader(comp))
}

// zipEntry inflates and carves one entry; candidate says it may be a
// picture (so that not affording it makes the search incomplete).
func (c *carver) zipEntry(it *zipItem, depth int, prefix string, candidate bool) {
	switch {
	case it.decoded:
		c.addDecoded(depth, prefix, it.where, it.out)
	case it.method == 0:
		c.add(depth, prefix, it.where, it.comp)
	default:
		// Unzip tools reject an entry whose size is not the one the
		// directory declares: one larger than the budget is skipped
		// without inflating a byte, and inflating stops one byte past the
		// declared size (a bomb lying about its size costs no more).
		if it.usize > uint64(max(c.budget, 0)) {
			if candidate {
				c.starve("no carving budget left for the " + strconv.FormatUint(it.usize, 10) + " bytes of " + prefix + it.where)
			}
			return
		}
		out, complete := c.readAll(io.LimitReader(zipReader(it.method, it.comp), int64(it.usize)+1), int64(it.usize))
		if complete && uint64(len(out)) == it.usize {
			c.addDecoded(depth, prefix, it.where, out)
		}
	}
}

// zipLocate finds the entry whose local header is at off, with the sizes and
// name of its central directory entry e when there is one. It returns the
// entry (ok false when there is nothing to carve in it) and the offset just
// after it, or -1 when that is unknown.
func (c *carver) zipLocate(data []byte, off int, e *zipEntry) (it zipItem, ok bool, after int) {
	h, ok := span(data, off, 30)
	if !ok || string(h[:4]) != string(sigZIP) {
		return it, false, -1
	}
	flags, method := le16(h[6:]), le16(h[8:])
	csize, usize := uint64(le32(h[18:])), uint64(le32(h[22:]))
	nl, el := le16(h[26:]), le16(h[28:])
	nameB, _ := span(data, off+30, nl)
	name := string(nameB)
	if extra, ok := span(data, off+30+nl, el); ok {
		usize, csize, _ = zip64Extra(extra, usize, csize, 0)
	}
	start := off + 30 + nl + el
	if start > len(data) {
		return it, false, -1
	}
	known := flags&8 == 0
	if e != nil {
		flags, method, csize, usize, known = e.flags, e.method, e.csize, e.usize, true
		if e.name != "" {
			name = e.name
		}
	}
	it = zipItem{where: "zip entry " + clean(name), method: method, usize: usize}
	skip := flags&1 != 0 || (method != 0 && method != 8 && method != 12) || (len(name) > 0 && name[len(name)-1] == '/' && csize == 0)

	var comp []byte
	next := -1
	switch {
	case known:
		if comp, ok = span64(data, start, csize); !ok {
			return it, false, -1 // truncated
		}
		next = start + len(comp)
	case method == 8 && !skip:
		// Sizes in a data descriptor after the data: inflate to find
		// where the deflate stream ends.
		br := bytes.NewReader(data[start:])
		out, complete := c.readAll(flate.NewReader(br), 0)
		if !complete {
			return it, false, -1
		}
		it.out, it.decoded = out, true
		return it, len(out) > 0, zipAfterDescriptor(data, start+len(data[start:])-br.Len())
	case method == 0:
		// A stored entry followed by a data descriptor: its signature
		// and a compressed size matching the distance mark the end.
		q := start
		for tries := 0; tries < 1024; tries++ {
			i := bytes.Index(data[q:], []byte("PK\x07\x08"))
			if i < 0 {
				return it, false, -1
			}
			q += i
			if d, ok := span(data, q, 16); ok && int64(le32(d[8:])) == int64(q-start) {
				comp = data[start:q]
				next = q
				break
			}
			q += 4
		}
		if comp == nil {
			return it, false, -1
		}
	default:
		return it, false, -1
	}
	if flags&8 != 0 {
		next = zipAfterDescriptor(data, next)
	}
	if skip || len(comp) == 0 {
		return it, false, next
	}
	it.comp = comp
	return it, true, next
}

// zipAfterDescriptor skips the data descriptor at p (with or without its
// optional signature, 32- or 64-bit sizes).
func zipAfterDescriptor(data []byte, p int) int {
	if p < 0 || p > len(data) {
		return -1
	}
	if bytes.HasPrefix(data[p:], []byte("PK\x07\x08")) {
		for _, n := range []int{16, 24} {
			if p+n <= len(data) && (p+n == len(data) || bytes.HasPrefix(data[p+n:], []byte("PK"))) {
				return p + n
			}
		}
		return p + 16
	}
	for _, n := range []int{12, 20} {
		if p+n <= len(data) && bytes.HasPrefix(data[p+n:], []byte("PK")) {
			return p + n
		}
	}
	return p + 12
}
