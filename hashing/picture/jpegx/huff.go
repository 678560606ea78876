package jpegx

import "encoding/binary"

// Huffman entropy decoding (T.81 Annex C and F.2.2).

const lutBits = 9

// fastBits is the look-ahead of the combined tables, which decode a
// symbol and its value bits in one step when both fit.
const fastBits = 10

// Combined entry: bits 0-4 total length (0: not in the table), 5-8 run,
// bit 9 end of block, bits 16-31 the extended value.
const fastEOB = 1 << 9

type huffTable struct {
	acFast [1 << fastBits]int32 // read as an AC table
	dcFast [1 << fastBits]int32 // read as a DC table
	// lut maps the next lutBits bits to length<<8|symbol; 0 means the code
	// is longer than lutBits.
	lut     [1 << lutBits]uint16
	maxcode [18]int32 // largest code of each length, -1 if none
	mincode [17]int32
	valptr  [17]int32
	vals    [256]uint8
}

// buildHuff makes the decoding tables for code-length counts counts[1..16]
// and symbols vals, in the canonical order of T.81 Annex C.
func buildHuff(counts [17]int, vals []byte) (*huffTable, error) {
	t := &huffTable{}
	copy(t.vals[:], vals)
	code, k := int32(0), int32(0)
	for l := 1; l <= 16; l++ {
		t.valptr[l] = k
		t.mincode[l] = code
		n := int32(counts[l])
		if n > 0 {
			// Codes of this length are code .. code+n-1.
			if code+n > 1<<l {
				return nil, corrupt("Huffman table oversubscribed")
			}
			if l <= lutBits {
				for i := range n {
					c := code + i
					shift := lutBits - l
					entry := uint16(l)<<8 | uint16(vals[k+i])
					for j := c << shift; j < (c+1)<<shift; j++ {
						t.lut[j] = entry
					}
				}
			}
			t.maxcode[l] = code + n - 1
		} else {
			t.maxcode[l] = -1
		}
		code += n
		k += n
		code <<= 1
	}
	t.maxcode[17] = 1 << 30
	t.buildFast()
	return t, nil
}

func (t *huffTable) buildFast() {
	for i := range 1 << fastBits {
		e := t.lut[i>>(fastBits-lutBits)]
		if e == 0 {
			continue
		}
		l := int(e >> 8)
		rs := int(e & 0xFF)
		bits := uint32(i) << (32 - fastBits) << uint(l) // the bits after the code, MSB-aligned
		// AC reading.
		r, sz := rs>>4, rs&15
		switch {
		case sz == 0 && r != 15:
			t.acFast[i] = int32(l) | fastEOB
		case sz == 0: // ZRL: fifteen zeros and a zero
			t.acFast[i] = int32(l) | 15<<5
		case l+sz <= fastBits:
			t.acFast[i] = int32(l+sz) | int32(r)<<5 | extend(int32(bits>>(32-uint(sz))), sz)<<16
		}
		// DC reading: the symbol is the size.
		switch {
		case rs == 0:
			t.dcFast[i] = int32(l)
		case rs <= 16 && l+rs <= fastBits:
			t.dcFast[i] = int32(l+rs) | extend(int32(bits>>(32-uint(rs))), rs)<<16
		}
	}
}

func extend(v int32, s int) int32 {
	if v < 1<<(uint(s)-1) {
		v += -1<<uint(s) + 1
	}
	return v
}

// bitReader reads entropy-coded bits: it removes the 0x00 after a 0xFF and
// stops at a marker. Past a marker or the end of the data it supplies zero
// bits, as libjpeg-turbo does, and counts them in pad so the scan loop can
// tell the data ran out (n < pad).
type bitReader struct {
	data []byte
	pos  int
	acc  uint64 // next bits, most significant first
	n    int    // bits in acc, including pad
	pad  int    // zero bits supplied after the data stopped
	stop bool   // reached a marker (pos is at its 0xFF) or the end
}

func (r *bitReader) reset(data []byte, pos int) {
	*r = bitReader{data: data, pos: pos}
}

// exhausted reports that decoding consumed bits the data did not have.
func (r *bitReader) exhausted() bool { return r.n < r.pad }

func (r *bitReader) fill() {
	data := r.data
	// Fast path: the next eight bytes hold no 0xFF, so as many whole
	// bytes as fit go in at once.
	if p := r.pos; !r.stop && p+8 <= len(data) {
		v := binary.BigEndian.Uint64(data[p:])
		x := ^v // a 0xFF byte of v is a zero byte of x
		if (x-0x0101010101010101)&^x&0x8080808080808080 == 0 {
			nb := (64 - r.n) / 8
			r.acc |= v >> uint(64-8*nb) << uint(64-r.n-8*nb)
			r.n += 8 * nb
			r.pos = p + nb
			return
		}
	}
	for r.n <= 56 {
		if r.stop {
			r.n += 8
			r.pad += 8
			continue
		}
		p := r.pos
		if p >= len(data) {
			r.stop = true
			continue
		}
		b := data[p]
		if b != 0xFF {
			r.pos = p + 1
		} else {
			q := p + 1
			for q < len(data) && data[q] == 0xFF {
				q++ // fill bytes
			}
			if q >= len(data) {
				r.pos = len(data)
				r.stop = true
				continue
			}
			if data[q] != 0 {
				r.pos = q - 1 // at the 0xFF before the marker code
				r.stop = true
				continue
			}
			r.pos = q + 1 // stuffed 0xFF 0x00
		}
		r.acc |= uint64(b) << (56 - uint(r.n))
		r.n += 8
	}
}

// unreadPos is the position of the first whole byte not yet consumed (a
// partly consumed byte counts as consumed: T.81 pads a segment's last
// byte with 1 bits).
func (r *bitReader) unreadPos() int {
	real := r.n - r.pad
	if real <= 0 {
		return r.pos
	}
	p := r.pos
	for nb := real / 8; nb > 0 && p > 0; nb-- {
		if r.data[p-1] == 0x00 && p >= 2 && r.data[p-2] == 0xFF {
			p -= 2
		} else {
			p--
		}
	}
	return p
}

func (r *bitReader) bits(s int) int32 {
	if r.n < s {
		r.fill()
	}
	v := int32(r.acc >> (64 - uint(s)))
	r.acc <<= uint(s)
	r.n -= s
	return v
}

func (r *bitReader) bit() bool {
	if r.n < 1 {
		r.fill()
	}
	v := r.acc>>63 != 0
	r.acc <<= 1
	r.n--
	return v
}

// receiveExtend reads s bits as a signed magnitude-category value (T.81
// F.2.2.1 RECEIVE and EXTEND).
func (r *bitReader) receiveExtend(s int) int32 {
	if s == 0 {
		return 0
	}
	if r.n < s {
		r.fill()
	}
	v := int32(r.acc >> (64 - uint(s)))
	r.acc <<= uint(s)
	r.n -= s
	if v < 1<<(uint(s)-1) {
		v += -1<<uint(s) + 1
	}
	return v
}

func (r *bitReader) decode(t *huffTable) int {
	if r.n < 16 {
		r.fill()
	}
	e := t.lut[r.acc>>(64-lutBits)]
	if e != 0 {
		l := uint(e >> 8)
		r.acc <<= l
		r.n -= int(l)
		return int(e & 0xFF)
	}
	return r.decodeSlow(t)
}

// decodeSlow decodes a code longer than the lookup table covers.
func (r *bitReader) decodeSlow(t *huffTable) int {
	if r.n < 17 {
		r.fill()
	}
	for l := lutBits + 1; l <= 16; l++ {
		code := int32(r.acc >> (64 - uint(l)))
		if code <= t.maxcode[l] {
			r.acc <<= uint(l)
			r.n -= l
			return int(t.vals[(t.valptr[l]+code-t.mincode[l])&0xFF])
		}
	}
	// No code matches: corrupt data. libjpeg-turbo reads on until its
	// code is 17 bits long, then yields symbol 0 (EOB for AC); so do we,
	// so that what follows stays in step with what a browser shows.
	r.acc <<= 17
	r.n -= 17
	return 0
}

// Standard tables of T.81 Annex K.3, used when a scan names a table that
// no DHT defined (Motion-JPEG frames carry none), as libjpeg-turbo does.
var (
	stdDCLumCounts = [17]int{0, 0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0}
	stdDCLumVals   = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	stdDCChrCounts = [17]int{0, 0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0}
	stdDCChrVals   = []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	stdACLumCounts = [17]int{0, 0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d}
	stdACLumVals   = []byte{
		0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12,
		0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07,
		0x22, 0x71, 0x14, 0x32, 0x81, 0x91, 0xa1, 0x08,
		0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0,
		0x24, 0x33, 0x62, 0x72, 0x82, 0x09, 0x0a, 0x16,
		0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28,
		0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39,
		0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49,
		0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59,
		0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69,
		0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79,
		0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89,
		0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98,
		0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
		0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6,
		0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5,
		0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2, 0xd3, 0xd4,
		0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2,
		0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
		0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
		0xf9, 0xfa,
	}
	stdACChrCounts = [17]int{0, 0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77}
	stdACChrVals   = []byte{
		0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21,
		0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71,
		0x13, 0x22, 0x32, 0x81, 0x08, 0x14, 0x42, 0x91,
		0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0,
		0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16, 0x24, 0x34,
		0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26,
		0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38,
		0x39, 0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
		0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58,
		0x59, 0x5a, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68,
		0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78,
		0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87,
		0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96,
		0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5,
		0xa6, 0xa7, 0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4,
		0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3,
		0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xd2,
		0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda,
		0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
		0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8,
		0xf9, 0xfa,
	}
)

var stdTables = func() (t [2][2]*huffTable) {
	must := func(h *huffTable, err error) *huffTable {
		if err != nil {
			panic(err)
		}
		return h
	}
	t[0][0] = must(buildHuff(stdDCLumCounts, stdDCLumVals))
	t[0][1] = must(buildHuff(stdDCChrCounts, stdDCChrVals))
	t[1][0] = must(buildHuff(stdACLumCounts, stdACLumVals))
	t[1][1] = must(buildHuff(stdACChrCounts, stdACChrVals))
	return t
}()

// unzig[i] is the natural (row-major) index of the i-th zig-zag
// coefficient, generated by walking the anti-diagonals (T.81 Figure A.6).
var unzig = func() (z [64]int) {
	i := 0
	for s := 0; s < 15; s++ {
		if s%2 == 0 { // up and right: row falls from s
			for r := min(s, 7); r >= 0 && s-r < 8; r-- {
				z[i] = r*8 + (s - r)
				i++
			}
		} else {
			for c := min(s, 7); c >= 0 && s-c < 8; c-- {
				z[i] = (s-c)*8 + c
				i++
			}
		}
	}
	return z
}()
