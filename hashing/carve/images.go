package carve

import "bytes"

// The end of an image: every function below returns the offset just past the
// end of the image that starts at b[0] (JPEG EOI, PNG IEND, GIF trailer,
// RIFF size), or -1 when that end is not in b. work counts the bytes and
// structures examined so that a file stuffed with fake signatures cannot
// make the scan quadratic.

const maxSegments = 1 << 14

// jpegEnd walks the JPEG segments and the entropy-coded data after each SOS
// up to EOI. strict (for a JPEG found at an offset) accepts only the
// markers a JPEG file uses and requires a SOF and a SOS before the EOI;
// otherwise stray bytes between segments are skipped as libjpeg does.
func jpegEnd(b []byte, strict bool, work *int) int {
	if !bytes.HasPrefix(b, sigJPEG) {
		return -1
	}
	p := 2
	sawSOF, sawSOS := false, false
	for n := 0; n < maxSegments; n++ {
		*work += 16
		if p >= len(b) {
			return -1
		}
		if b[p] != 0xff {
			if strict {
				return -1
			}
			i := bytes.IndexByte(b[p:], 0xff)
			if i < 0 {
				return -1
			}
			*work += i
			p += i
		}
		for p+1 < len(b) && b[p+1] == 0xff { // fill bytes
			p++
		}
		if p+1 >= len(b) {
			return -1
		}
		m := b[p+1]
		switch {
		case m == 0xd9: // EOI
			if strict && !(sawSOF && sawSOS) {
				return -1
			}
			return p + 2
		case m == 0x01 || (m >= 0xd0 && m <= 0xd7): // standalone
			if strict {
				return -1
			}
			p += 2
			continue
		case m == 0xd8 || m == 0x00:
			if strict {
				return -1
			}
			p += 2
			continue
		}
		if strict && !jpegMarkerOK(m) {
			return -1
		}
		if p+4 > len(b) {
			return -1
		}
		l := be16(b[p+2:])
		if l < 2 {
			return -1
		}
		q := p + 2 + l
		if q > len(b) {
			return -1
		}
		if m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc {
			sawSOF = true
		}
		if m != 0xda {
			p = q
			continue
		}
		sawSOS = true
		// Entropy-coded data: up to the first marker that is not a stuffed
		// 0xFF00, a restart marker or fill.
		for {
			i := bytes.IndexByte(b[q:], 0xff)
			if i < 0 {
				*work += len(b) - q
				return -1
			}
			*work += i
			q += i
			if q+1 >= len(b) {
				return -1
			}
			if n := b[q+1]; n == 0 || n == 0xff || (n >= 0xd0 && n <= 0xd7) {
				q++
				continue
			}
			break
		}
		p = q
	}
	return -1
}

// jpegMarkerOK reports whether m is a marker that starts a length-prefixed
// segment in a JPEG file.
func jpegMarkerOK(m byte) bool {
	switch {
	case m >= 0xc0 && m <= 0xcf: // SOFn, DHT, DAC
		return m != 0xc8
	case m >= 0xe0 && m <= 0xef: // APPn
		return true
	}
	switch m {
	case 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xfe:
		return true
	}
	return false
}

// jpegCandidate is the quick test for "FF D8 FF" found at an offset: a
// plausible first marker whose segment length ends on another marker.
func jpegCandidate(b []byte) bool {
	if len(b) < 6 || !jpegMarkerOK(b[3]) || b[3] == 0xda {
		return false
	}
	l := be16(b[4:])
	return l >= 2 && 4+l < len(b) && b[4+l] == 0xff
}

func pngEnd(b []byte, work *int) int {
	if !bytes.HasPrefix(b, sigPNG) || len(b) < 8+25 {
		return -1
	}
	if be32(b[8:]) != 13 || string(b[12:16]) != "IHDR" {
		return -1
	}
	p := 8
	for {
		*work += 16
		if p+12 > len(b) {
			return -1
		}
		l := be32(b[p:])
		if l > 0x7fffffff || int64(l) > int64(len(b)-p-12) {
			return -1
		}
		t := b[p+4 : p+8]
		for _, c := range t {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
				return -1
			}
		}
		p += 12 + int(l)
		if string(t) == "IEND" {
			return p
		}
	}
}

func gifEnd(b []byte, work *int) int {
	if !isGIFSig(b) || len(b) < 13 {
		return -1
	}
	p := 13
	if b[10]&0x80 != 0 {
		p += 3 << (uint(b[10]&7) + 1)
	}
	// subBlocks skips data sub-blocks up to their terminator.
	subBlocks := func(p int) int {
		for p < len(b) {
			*work += 4
			n := int(b[p])
			p++
			if n == 0 {
				return p
			}
			p += n
		}
		return -1
	}
	for p < len(b) {
		*work += 16
		switch b[p] {
		case 0x3b:
			return p + 1
		case 0x21:
			p = subBlocks(p + 2)
		case 0x2c:
			if p+10 > len(b) {
				return -1
			}
			flags := b[p+9]
			p += 10
			if flags&0x80 != 0 {
				p += 3 << (uint(flags&7) + 1)
			}
			p = subBlocks(p + 1) // after the LZW minimum code size
		default:
			return -1
		}
		if p < 0 {
			return -1
		}
	}
	return -1
}

// webpEnd trusts the RIFF size, as decoders do, once the first chunk is one
// a WebP file starts with.
func webpEnd(b []byte) int {
	if len(b) < 20 || !bytes.HasPrefix(b, sigRIFF) || string(b[8:12]) != "WEBP" {
		return -1
	}
	switch string(b[12:16]) {
	case "VP8 ", "VP8L", "VP8X":
	default:
		return -1
	}
	size := int64(le32(b[4:]))
	if size < 12 || int64(le32(b[16:])) > size-12 {
		return -1
	}
	end := 8 + size
	if end > int64(len(b)) {
		return -1
	}
	return int(end)
}

func imageEnd(k kind, b []byte, strict bool, work *int) int {
	switch k {
	case kJPEG:
		return jpegEnd(b, strict, work)
	case kPNG:
		return pngEnd(b, work)
	case kGIF:
		return gifEnd(b, work)
	case kWebP:
		return webpEnd(b)
	}
	return -1
}

// image carves what was appended to an image: the image without it, whose
// exact digests are the listed picture's when bytes were appended to change
// them (even one zero byte: decoders ignore it, digests do not), and the
// bytes after its end, where another file may hide, when there is room for
// one. The first part decodes to the same picture as data: the caller only
// needs its exact digests.
//
// It returns the end of the image, -1 if it does not parse to its end.
func (c *carver) image(k kind, data []byte, depth int, prefix string) int {
	work := 0
	end := imageEnd(k, data, false, &work)
	if end < 0 || end == len(data) {
		return end
	}
	tail := data[end:]
	c.add(depth, prefix, "the "+k.String()+" without the "+itoa(len(tail))+" bytes after its end", data[:end])
	if len(tail) >= 16 && !isPadding(tail) {
		c.add(depth, prefix, "after the end of the "+k.String(), tail)
	}
	return end
}

// isPadding reports whether b repeats one byte (zeros or 0xFF after a
// camera's JPEG): nothing can hide there.
func isPadding(b []byte) bool {
	for _, x := range b[1:] {
		if x != b[0] {
			return false
		}
	}
	return true
}

// scanEmbedded looks for images at offsets > 0 of data that is not itself a
// recognised format (prepended bytes, images concatenated into an unknown
// format). Only strong signatures are considered and a candidate is only
// reported when it parses to its end, so random data yields nothing.
func (c *carver) scanEmbedded(data []byte, depth int, prefix string) {
	c.scanImages(data, depth, prefix, nil)
}

// scanImages carves the images found at offsets > 0 of data, except those
// at offsets for which skip (if not nil) is true.
func (c *carver) scanImages(data []byte, depth int, prefix string, skip func(int) bool) {
	// The four searches advance together window by window, so that each
	// window is read from the cache rather than from memory four times.
	const window = 32 << 10
	type sig struct {
		k        kind
		pat      []byte
		next     int // the next occurrence, or -1 when not known yet
		searched int // occurrences starting before this offset are known
	}
	sigs := [...]sig{{k: kJPEG, pat: sigJPEG}, {k: kPNG, pat: sigPNG}, {k: kGIF, pat: sigGIF}, {k: kWebP, pat: sigRIFF}}
	for i := range sigs {
		sigs[i].next, sigs[i].searched = -1, 1
	}
	work, maxWork := 0, 4*len(data)+1<<20
	for we := min(len(data), window); !c.full() && work < maxWork; {
		var s *sig
		for i := range sigs {
			x := &sigs[i]
			if x.next < 0 && x.searched < we {
				end := min(len(data), we+len(x.pat)-1)
				if j := bytes.Index(data[x.searched:end], x.pat); j >= 0 && x.searched+j < we {
					x.next = x.searched + j
				}
				x.searched = we
			}
			if x.next >= 0 && (s == nil || x.next < s.next) {
				s = x
			}
		}
		if s == nil {
			if we == len(data) {
				return
			}
			we = min(len(data), we+window)
			continue
		}
		at := s.next
		b := data[at:]
		end := -1
		switch s.k {
		case kJPEG:
			if jpegCandidate(b) {
				end = jpegEnd(b, true, &work)
			}
		default:
			end = imageEnd(s.k, b, true, &work)
		}
		if end < 0 || (skip != nil && skip(at)) {
			s.next, s.searched = -1, at+1
			continue
		}
		c.add(depth, prefix, s.k.String()+" at offset "+itoa(at), b[:end])
		// Nothing starts inside the image just carved.
		for i := range sigs {
			if sigs[i].next >= 0 && sigs[i].next < at+end || sigs[i].searched < at+end {
				sigs[i].next, sigs[i].searched = -1, at+end
			}
		}
		we = max(we, min(len(data), at+end))
	}
}
