package carve

import "strings"

// ISO BMFF (MP4, MOV, 3GP, M4A): cover art in moov/udta/meta/ilst/covr/data.

// heifBrands are the ftyp brands of HEIF and AVIF still images, which are
// pictures in their own right.
var heifBrands = map[string]bool{
	"avif": true, "avis": true, "heic": true, "heix": true, "heim": true, "heis": true,
	"hevc": true, "hevx": true, "mif1": true, "msf1": true, "miaf": true,
}

func (c *carver) mp4(data []byte, depth int, prefix string) {
	heif, moov := false, false
	p := 0
	for boxes := 0; boxes < 1<<16 && p+8 <= len(data); boxes++ {
		typ, body, next := bmffBox(data, p)
		if next < 0 {
			break
		}
		switch typ {
		case "ftyp":
			for i := 0; i+4 <= len(body); i += 4 {
				if i == 4 {
					continue // minor version
				}
				heif = heif || heifBrands[string(body[i:i+4])]
			}
		case "moov":
			moov = true
		}
		p = next
	}
	// A HEIF image carves to nothing, but a brand is only a claim: a movie
	// with a moov box is carved whatever brands it lists.
	if heif && !moov {
		return
	}
	n := 0
	c.bmffWalk(data, "", 0, &n, depth, prefix)
}

// bmffBox reads the box at p: its type, its body and the offset after it
// (-1 when the header is incomplete). A box running past the end of data is
// cut there, so that a truncated file yields its complete children.
func bmffBox(b []byte, p int) (typ string, body []byte, next int) {
	h, ok := span(b, p, 8)
	if !ok {
		return "", nil, -1
	}
	size := uint64(be32(h))
	hdr := 8
	switch size {
	case 0:
		size = uint64(len(b) - p)
	case 1:
		l, ok := span(b, p+8, 8)
		if !ok {
			return "", nil, -1
		}
		size, hdr = be64(l), 16
	}
	if size < uint64(hdr) {
		return "", nil, -1
	}
	end := len(b)
	if size <= uint64(len(b)-p) {
		end = p + int(size)
	}
	return string(h[4:8]), b[p+hdr : end], end
}

// bmffSize is the size the box at b[0] declares (-1 if it is unreadable).
func bmffSize(b []byte) int {
	if len(b) < 8 {
		return -1
	}
	switch s := uint64(be32(b)); s {
	case 0:
		return len(b)
	case 1:
		if len(b) < 16 || be64(b[8:]) > uint64(len(b)) {
			return -1
		}
		return int(be64(b[8:]))
	default:
		if s > uint64(len(b)) {
			return -1
		}
		return int(s)
	}
}

var bmffContainers = map[string]bool{
	"moov": true, "udta": true, "meta": true, "ilst": true, "trak": true,
	"mdia": true, "minf": true, "moof": true,
}

// bmffWalk walks the boxes of b. parent is the type of the box b is the
// body of; the items of an ilst (covr, but also the numbered items of
// QuickTime's keyed metadata, com.apple.quicktime.artwork) hold data boxes
// whose payloads are carved.
func (c *carver) bmffWalk(b []byte, parent string, level int, n *int, depth int, prefix string) {
	if level > 12 {
		return
	}
	p := 0
	for boxes := 0; boxes < 1<<16 && p+8 <= len(b) && !c.full(); boxes++ {
		typ, body, next := bmffBox(b, p)
		if next < 0 {
			return
		}
		complete := next-p == bmffSize(b[p:])
		p = next
		switch {
		case parent == "ilst":
			c.bmffWalk(body, "ilst item "+typ, level+1, n, depth, prefix)
		case typ == "data" && strings.HasPrefix(parent, "ilst item "):
			// Type indicator, locale, payload.
			if len(body) > 8 && complete {
				where := "mp4 metadata item " + clean(parent[len("ilst item "):])
				if parent == "ilst item covr" {
					*n++
					where = "mp4 covr " + itoa(*n)
				}
				c.add(depth, prefix, where, body[8:])
			}
		case typ == "meta":
			// ISO meta is a full box (version and flags first);
			// QuickTime's is not and starts with a child box.
			if len(body) >= 4 && be32(body) == 0 {
				body = body[4:]
			}
			c.bmffWalk(body, typ, level+1, n, depth, prefix)
		case bmffContainers[typ]:
			c.bmffWalk(body, typ, level+1, n, depth, prefix)
		}
	}
}

// Matroska and WebM: Segment/Attachments/AttachedFile/FileData.

const (
	ebmlHeader    = 0x1a45dfa3
	mkvSegment    = 0x18538067
	mkvSeekHead   = 0x114d9b74
	mkvCluster    = 0x1f43b675
	mkvAttachment = 0x1941a469
	mkvAttached   = 0x61a7
	mkvFileName   = 0x466e
	mkvFileMime   = 0x4660
	mkvFileData   = 0x465c
)

// mkvTopLevel are the children of a Segment: an element of unknown size
// ends where one of them starts.
var mkvTopLevel = map[uint32]bool{
	mkvSeekHead: true, 0x1549a966: true, 0x1654ae6b: true, mkvCluster: true,
	0x1c53bb6b: true, mkvAttachment: true, 0x1043a770: true, 0x1254c367: true,
	mkvSegment: true, ebmlHeader: true,
}

// ebmlVint reads an EBML variable-length integer at p. For IDs the length
// marker is kept; for sizes it is removed and an all-ones value means
// unknown.
func ebmlVint(b []byte, p int, keepMarker bool) (v uint64, n int, unknown bool) {
	if p < 0 || p >= len(b) || b[p] == 0 {
		return 0, -1, false
	}
	first := b[p]
	n = 1
	for mask := byte(0x80); first&mask == 0; mask >>= 1 {
		n++
	}
	if p+n > len(b) || (keepMarker && n > 4) {
		return 0, -1, false
	}
	v = uint64(first)
	if !keepMarker {
		v &= uint64(0xff >> n)
	}
	allOnes := v == uint64(0xff>>n)
	for _, x := range b[p+1 : p+n] {
		v = v<<8 | uint64(x)
		allOnes = allOnes && x == 0xff
	}
	return v, n, !keepMarker && allOnes
}

// ebmlElement reads the element at p: its ID, the offset of its body and
// the offset after it (len(b) when its size is unknown or runs past the end;
// sized reports whether the size was known and fits).
func ebmlElement(b []byte, p int) (id uint32, body, end int, sized bool) {
	v, n, _ := ebmlVint(b, p, true)
	if n < 0 {
		return 0, -1, -1, false
	}
	s, m, unknown := ebmlVint(b, p+n, false)
	if m < 0 {
		return 0, -1, -1, false
	}
	body = p + n + m
	if unknown || s > uint64(len(b)-body) {
		return uint32(v), body, len(b), false
	}
	return uint32(v), body, body + int(s), true
}

func (c *carver) mkv(data []byte, depth int, prefix string) {
	done := make(map[int]bool) // Attachments elements already carved
	p := 0
	for elems := 0; elems < 1<<16 && p < len(data) && !c.full(); elems++ {
		id, body, end, _ := ebmlElement(data, p)
		if body < 0 {
			return
		}
		if id == mkvSegment {
			c.mkvSegment(data[body:end], done, depth, prefix)
		}
		p = end
	}
}

func (c *carver) mkvSegment(seg []byte, done map[int]bool, depth int, prefix string) {
	p := 0
	for elems := 0; elems < 1<<20 && p < len(seg) && !c.full(); elems++ {
		id, body, end, sized := ebmlElement(seg, p)
		if body < 0 {
			return
		}
		switch id {
		case mkvAttachment:
			if !done[p] {
				done[p] = true
				c.mkvAttachments(seg[body:end], depth, prefix)
			}
		case mkvSeekHead:
			c.mkvSeek(seg, seg[body:end], done, depth, prefix)
		}
		if !sized && id != mkvSegment {
			// A live stream's Cluster of unknown size ends where the
			// next top-level element starts: walk its children.
			end = mkvUnknownEnd(seg, body)
		}
		if end <= p {
			return
		}
		p = end
	}
}

// mkvUnknownEnd finds the end of an element of unknown size whose children
// start at p: the first top-level ID, or the first child that cannot be read.
func mkvUnknownEnd(b []byte, p int) int {
	for elems := 0; elems < 1<<20 && p < len(b); elems++ {
		id, _, end, sized := ebmlElement(b, p)
		if end < 0 || mkvTopLevel[id] || !sized {
			return p
		}
		p = end
	}
	return p
}

// mkvSeek follows the SeekHead's entries to Attachments elements, which a
// muxer may have put after Clusters that cannot be walked.
func (c *carver) mkvSeek(seg, head []byte, done map[int]bool, depth int, prefix string) {
	p := 0
	for elems := 0; elems < 1<<10 && p < len(head) && !c.full(); elems++ {
		id, body, end, _ := ebmlElement(head, p)
		if body < 0 {
			return
		}
		p = end
		if id != 0x4dbb { // Seek
			continue
		}
		var seekID, pos uint64
		var havePos bool
		q := body
		for q < end {
			cid, cb, ce, _ := ebmlElement(head[:end], q)
			if cb < 0 {
				break
			}
			switch cid {
			case 0x53ab:
				seekID, _, _ = ebmlVint(head[:ce], cb, true)
			case 0x53ac:
				if ce-cb <= 8 {
					for _, x := range head[cb:ce] {
						pos = pos<<8 | uint64(x)
					}
					havePos = true
				}
			}
			q = ce
		}
		if seekID != mkvAttachment || !havePos || pos >= uint64(len(seg)) || done[int(pos)] {
			continue
		}
		at := int(pos)
		if id, body, end, _ := ebmlElement(seg, at); body >= 0 && id == mkvAttachment {
			done[at] = true
			c.mkvAttachments(seg[body:end], depth, prefix)
		}
	}
}

func (c *carver) mkvAttachments(b []byte, depth int, prefix string) {
	p := 0
	for elems := 0; elems < 1<<12 && p < len(b) && !c.full(); elems++ {
		id, body, end, sized := ebmlElement(b, p)
		if body < 0 {
			return
		}
		if id == mkvAttached {
			var name, mime string
			var data []byte
			complete := false
			q := body
			for q < end {
				cid, cb, ce, csized := ebmlElement(b[:end], q)
				if cb < 0 {
					break
				}
				switch cid {
				case mkvFileName:
					name = string(b[cb:ce])
				case mkvFileMime:
					mime = string(b[cb:ce])
				case mkvFileData:
					data, complete = b[cb:ce], csized
				}
				q = ce
			}
			if complete {
				where := "mkv attachment " + clean(name)
				if mime != "" {
					where += " (" + clean(mime) + ")"
				}
				c.add(depth, prefix, where, data)
			}
		} else if mkvTopLevel[id] {
			return
		}
		if !sized {
			return
		}
		p = end
	}
}
