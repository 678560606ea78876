package picture

import (
	"encoding/binary"
	"testing"
)

// withIrot adds an irot property (angle×90° anticlockwise) to the primary
// item of a libheif-written HEIC: appended to ipco, associated in ipma,
// box sizes grown, iloc offsets into mdat moved by the added bytes.
func withIrot(t *testing.T, src []byte, angle byte) []byte {
	t.Helper()
	be := binary.BigEndian
	data := append([]byte(nil), src...)
	type at struct{ off, size int }
	find := func(start, end int, typ string) at {
		for p := start; p+8 <= end; {
			n := int(be.Uint32(data[p:]))
			if string(data[p+4:p+8]) == typ {
				return at{p, n}
			}
			if n < 8 {
				break
			}
			p += n
		}
		t.Fatalf("no %s box", typ)
		return at{}
	}
	meta := find(0, len(data), "meta")
	mstart := meta.off + 12
	iprp := find(mstart, meta.off+meta.size, "iprp")
	ipco := find(iprp.off+8, iprp.off+iprp.size, "ipco")
	ipma := find(iprp.off+8, iprp.off+iprp.size, "ipma")
	pitm := find(mstart, meta.off+meta.size, "pitm")
	iloc := find(mstart, meta.off+meta.size, "iloc")
	primary := int(be.Uint16(data[pitm.off+12:]))
	nprops := 0
	for p := ipco.off + 8; p < ipco.off+ipco.size; p += int(be.Uint32(data[p:])) {
		nprops++
	}
	if data[ipma.off+8] != 0 || data[ipma.off+11]&1 != 0 {
		t.Fatal("ipma version/flags not handled")
	}
	// ipma entry of the primary item: add the association.
	p := ipma.off + 16
	insAt := -1
	for i := 0; i < int(be.Uint32(data[ipma.off+12:])); i++ {
		id, cnt := int(be.Uint16(data[p:])), int(data[p+2])
		if id == primary {
			data[p+2]++
			insAt = p + 3 + cnt
		}
		p += 3 + cnt
	}
	if insAt < 0 {
		t.Fatal("primary item has no ipma entry")
	}
	const added = 10
	// iloc offsets (construction method 0) move by the bytes we add.
	ver := data[iloc.off+8]
	q := iloc.off + 12
	offSize, lenSize := int(data[q]>>4), int(data[q]&15)
	baseSize, idxSize := int(data[q+1]>>4), 0
	if ver >= 1 {
		idxSize = int(data[q+1] & 15)
	}
	q += 2
	count := int(be.Uint16(data[q:]))
	q += 2
	if ver == 2 {
		t.Fatal("iloc v2 not handled")
	}
	bump := func(pos, size int) {
		switch size {
		case 4:
			be.PutUint32(data[pos:], be.Uint32(data[pos:])+added)
		case 8:
			be.PutUint64(data[pos:], be.Uint64(data[pos:])+added)
		}
	}
	for i := 0; i < count; i++ {
		q += 2 // item ID
		method := 0
		if ver >= 1 {
			method = int(be.Uint16(data[q:]) & 15)
			q += 2
		}
		q += 2 // data reference index
		basePos := q
		q += baseSize
		n := int(be.Uint16(data[q:]))
		q += 2
		if method == 0 && baseSize > 0 && (baseSize == 4 && be.Uint32(data[basePos:]) != 0 || baseSize == 8) {
			bump(basePos, baseSize)
			q += n * (idxSize + offSize + lenSize)
			continue
		}
		for e := 0; e < n; e++ {
			q += idxSize
			if method == 0 {
				bump(q, offSize)
			}
			q += offSize + lenSize
		}
	}
	grow := func(b at, n int) { be.PutUint32(data[b.off:], uint32(b.size+n)) }
	grow(meta, added)
	grow(iprp, added)
	grow(ipco, 9)
	grow(ipma, 1)
	// Insert the association byte, then the irot box at the end of ipco
	// (which precedes ipma, so that offset is unmoved).
	out := append([]byte(nil), data[:insAt]...)
	out = append(out, byte(0x80|(nprops+1)))
	out = append(out, data[insAt:]...)
	end := ipco.off + ipco.size
	irot := []byte{0, 0, 0, 9, 'i', 'r', 'o', 't', angle}
	out = append(out[:end], append(irot, out[end:]...)...)
	if ipma.off < ipco.off {
		t.Fatal("ipma before ipco not handled")
	}
	return out
}

// TestHEICRotation: libheif applies irot itself, so the frame comes out as
// displayed (rotated) and Orientation stays 1; DecodeConfig agrees.
func TestHEICRotation(t *testing.T) {
	data := withIrot(t, readTestdata(t, "still.heic"), 1) // 90° anticlockwise
	info := parseHEIF(data)
	if info.orient != 8 {
		t.Fatalf("container orientation %d, want 8", info.orient)
	}
	pic := decodeBytes1(t, data, Options{})
	if pic.Orientation != 1 {
		t.Fatalf("orientation %d", pic.Orientation)
	}
	want := orient(photo(64, 48), 8)
	if d := meanChannelDiff(t, pic.Frames[0], want); d > 6 {
		t.Fatalf("not rotated as displayed: mean difference %.1f", d)
	}
	if _, w, h, err := DecodeConfig(bytesReader(data)); err != nil || w != 48 || h != 64 {
		t.Fatalf("DecodeConfig %dx%d %v", w, h, err)
	}
}
