package carve

import (
	"bytes"
	"compress/zlib"
	"io"
)

// ID3v2 (MP3 and anything else tagged with it): APIC frames (v2.3, v2.4)
// and PIC frames (v2.2), honouring unsynchronisation, extended headers,
// syncsafe sizes and zlib-compressed frames.

func (c *carver) id3(data []byte, depth int, prefix string) {
	p, n := 0, 0
	// Several tags may follow each other (taggers that prepend a new tag).
	for tags := 0; tags < 16 && !c.full(); tags++ {
		b := data[p:]
		if len(b) < 10 || string(b[:3]) != "ID3" || b[3] < 2 || b[3] > 4 {
			break
		}
		size := syncsafe(b[6:10])
		end := 10 + size
		if b[5]&0x10 != 0 && b[3] == 4 {
			end += 10 // footer
		}
		body := b[10:min(len(b), 10+size)]
		n = c.id3Tag(b[3], b[5], body, n, depth, prefix)
		if end > len(b) {
			return
		}
		p += end
		// Padding some taggers put between tags.
		for p < len(data) && data[p] == 0 {
			p++
		}
	}
	// A FLAC file may be preceded by an ID3 tag.
	if bytes.HasPrefix(data[p:], []byte("fLaC")) {
		c.flac(data[p:], depth, prefix)
	}
}

func syncsafe(b []byte) int {
	return int(b[0]&0x7f)<<21 | int(b[1]&0x7f)<<14 | int(b[2]&0x7f)<<7 | int(b[3]&0x7f)
}

// unsync undoes ID3 unsynchronisation: every 0xFF 0x00 becomes 0xFF.
func unsync(b []byte) []byte {
	i := bytes.Index(b, []byte{0xff, 0})
	if i < 0 {
		return b
	}
	out := make([]byte, 0, len(b))
	for i >= 0 {
		out = append(out, b[:i+1]...)
		b = b[i+2:]
		i = bytes.Index(b, []byte{0xff, 0})
	}
	return append(out, b...)
}

// id3Tag walks the frames of one tag body; n counts the pictures so far.
func (c *carver) id3Tag(ver, flags byte, body []byte, n, depth int, prefix string) int {
	tagUnsync := flags&0x80 != 0
	if tagUnsync && ver < 4 {
		body = unsync(body)
	}
	if ver == 2 && flags&0x40 != 0 {
		return n // v2.2 compression: no scheme was ever defined
	}
	p := 0
	if flags&0x40 != 0 && ver >= 3 && len(body) >= 4 { // extended header
		if ver == 3 {
			p = 4 + int(be32(body))
		} else {
			p = syncsafe(body)
		}
		if p < 0 || p > len(body) {
			return n
		}
	}
	idLen, hdrLen := 4, 10
	if ver == 2 {
		idLen, hdrLen = 3, 6
	}
	for p+hdrLen <= len(body) && !c.full() {
		h := body[p:]
		if !id3FrameID(h[:idLen]) {
			break // padding, or garbage
		}
		var size int
		var fflags int
		switch ver {
		case 2:
			size = be24(h[3:])
		case 3:
			size = int(be32(h[4:]))
			fflags = be16(h[8:])
		case 4:
			size = syncsafe(h[4:8])
			fflags = be16(h[8:])
			// iTunes wrote plain 32-bit sizes in v2.4 tags: use them when
			// they are not syncsafe, or when only they land on a frame.
			plain := int(be32(h[4:]))
			if plain != size && (h[4]|h[5]|h[6]|h[7])&0x80 != 0 ||
				plain != size && !id3FrameAt(body, p+hdrLen+size) && id3FrameAt(body, p+hdrLen+plain) {
				size = plain
			}
		}
		if size < 0 || size > len(body)-p-hdrLen {
			break // truncated
		}
		id := string(h[:idLen])
		frame := body[p+hdrLen : p+hdrLen+size]
		p += hdrLen + size
		if id != "APIC" && id != "PIC" {
			continue
		}
		frame, decoded, ok := c.id3FrameData(ver, fflags, tagUnsync, frame)
		if !ok {
			continue
		}
		if mime, pic, ok := apic(ver, frame); ok {
			n++
			where := "id3 APIC " + itoa(n)
			if mime != "" {
				where += " " + clean(mime)
			}
			if decoded {
				c.addDecoded(depth, prefix, where, pic)
			} else {
				c.add(depth, prefix, where, pic)
			}
		}
	}
	return n
}

func id3FrameID(b []byte) bool {
	for _, c := range b {
		if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// id3FrameAt reports whether a v2.4 frame (or the end, or padding) is at p.
func id3FrameAt(body []byte, p int) bool {
	if p == len(body) {
		return true
	}
	if p < 0 || p+10 > len(body) {
		return false
	}
	return id3FrameID(body[p:p+4]) || body[p] == 0
}

// id3FrameData undoes the frame-level encodings: grouping, data length
// indicator, unsynchronisation and compression (decoded reports that the
// budget was charged for inflating). Encrypted frames are skipped.
func (c *carver) id3FrameData(ver byte, flags int, tagUnsync bool, f []byte) (out []byte, decoded, ok bool) {
	var compressed bool
	switch ver {
	case 3:
		if flags&0x40 != 0 {
			return nil, false, false // encrypted
		}
		if flags&0x80 != 0 { // decompressed size first
			compressed = true
			if len(f) < 4 {
				return nil, false, false
			}
			f = f[4:]
		}
		if flags&0x20 != 0 { // group identifier
			if len(f) < 1 {
				return nil, false, false
			}
			f = f[1:]
		}
	case 4:
		if flags&0x04 != 0 {
			return nil, false, false // encrypted
		}
		if flags&0x40 != 0 {
			if len(f) < 1 {
				return nil, false, false
			}
			f = f[1:]
		}
		if flags&0x01 != 0 { // data length indicator
			if len(f) < 4 {
				return nil, false, false
			}
			f = f[4:]
		}
		if flags&0x02 != 0 || tagUnsync {
			f = unsync(f)
		}
		compressed = flags&0x08 != 0
	}
	if !compressed {
		return f, false, true
	}
	r, err := zlib.NewReader(bytes.NewReader(f))
	if err != nil {
		return nil, false, false
	}
	// A frame inflating to megabytes of zeros must not spend the budget
	// before the cover art after it: its first kilobytes say whether the
	// picture it declares may be one, and only then is it inflated whole.
	head, _ := c.readAll(io.LimitReader(r, id3SniffBytes), 0)
	if _, pic, ok := apic(ver, head); ok && len(pic) >= 64 && !maybePicture(pic) {
		return nil, false, false
	}
	r, err = zlib.NewReader(bytes.NewReader(f))
	if err != nil {
		return nil, false, false
	}
	out, complete := c.readAll(r, 0)
	return out, true, complete
}

// id3SniffBytes is how much of a compressed cover-art frame is inflated to
// see whether it holds a picture: the frame's own header (MIME type,
// description) comes first.
const id3SniffBytes = 4096

// apic parses an APIC (v2.3/v2.4) or PIC (v2.2) frame body.
func apic(ver byte, f []byte) (mime string, data []byte, ok bool) {
	if len(f) < 2 {
		return "", nil, false
	}
	enc := f[0]
	f = f[1:]
	if ver == 2 {
		if len(f) < 4 {
			return "", nil, false
		}
		mime, f = "image/"+string(bytes.ToLower(f[:3])), f[3:]
	} else {
		i := bytes.IndexByte(f, 0)
		if i < 0 {
			return "", nil, false
		}
		mime, f = string(f[:i]), f[i+1:]
	}
	if len(f) < 1 {
		return "", nil, false
	}
	f = f[1:] // picture type
	// Description, terminated according to its encoding.
	if enc == 1 || enc == 2 {
		i := 0
		for ; i+1 < len(f); i += 2 {
			if f[i] == 0 && f[i+1] == 0 {
				break
			}
		}
		if i+1 >= len(f) {
			return "", nil, false
		}
		f = f[i+2:]
	} else {
		i := bytes.IndexByte(f, 0)
		if i < 0 {
			return "", nil, false
		}
		f = f[i+1:]
	}
	if mime == "-->" {
		return "", nil, false // a link, not a picture
	}
	return mime, f, len(f) > 0
}

// FLAC: METADATA_BLOCK_PICTURE blocks.

func (c *carver) flac(data []byte, depth int, prefix string) {
	p, n := 4, 0
	for blocks := 0; blocks < 1<<12 && p+4 <= len(data) && !c.full(); blocks++ {
		h := data[p]
		size := be24(data[p+1:])
		body, ok := span(data, p+4, size)
		if !ok {
			return // truncated
		}
		if h&0x7f == 6 {
			if mime, pic, ok := flacPicture(body); ok {
				n++
				c.add(depth, prefix, "flac picture "+itoa(n)+" "+clean(mime), pic)
			}
		}
		if h&0x80 != 0 || h&0x7f == 127 {
			return
		}
		p += 4 + size
	}
}

func flacPicture(b []byte) (mime string, data []byte, ok bool) {
	if len(b) < 8 {
		return "", nil, false
	}
	ml := be32(b[4:])
	m, ok := span64(b, 8, uint64(ml))
	if !ok {
		return "", nil, false
	}
	p := 8 + len(m)
	d, ok := span(b, p, 4)
	if !ok {
		return "", nil, false
	}
	p += 4
	if _, ok := span64(b, p, uint64(be32(d))); !ok {
		return "", nil, false
	}
	p += int(be32(d)) + 16 // description, width, height, depth, colours
	l, ok := span(b, p, 4)
	if !ok {
		return "", nil, false
	}
	data, ok = span64(b, p+4, uint64(be32(l)))
	if !ok || string(m) == "-->" {
		return "", nil, false
	}
	return string(m), data, len(data) > 0
}
