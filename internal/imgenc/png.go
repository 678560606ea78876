// Package imgenc writes the PNG and BMP files that tests need and that
// Go's encoders never produce: any PNG colour type, depth, interlacing,
// filter mix and chunk order; BMPs with every DIB header (OS/2 1.x to V5),
// palette depth, RLE8/RLE4 and bit-field layout. hashing/picture's decoder
// tests and the bypass corpus (internal/bypass) share them.
package imgenc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
)

// PNG colour types.
const (
	pngGray      = 0
	pngRGB       = 2
	pngPalette   = 3
	pngGrayAlpha = 4
	pngRGBA      = 6
)

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// A PNG writer for tests: any colour type, depth, interlacing, filter mix
// and chunk order, so the decoder is checked against image/png on inputs
// image/png's encoder never produces.

type pngSpec struct {
	w, h       int
	ct, depth  byte
	interlace  bool
	trns       bool
	idatChunks int // split the stream into this many IDATs (default 1)
}

func pngChunk(typ string, body []byte) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.BigEndian, uint32(len(body)))
	b.WriteString(typ)
	b.Write(body)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(append([]byte(typ), body...)))
	return b.Bytes()
}

func ihdr(w, h int, depth, ct byte, interlace bool) []byte {
	b := make([]byte, 13)
	binary.BigEndian.PutUint32(b, uint32(w))
	binary.BigEndian.PutUint32(b[4:], uint32(h))
	b[8], b[9] = depth, ct
	if interlace {
		b[12] = 1
	}
	return pngChunk("IHDR", b)
}

// sample gives channel c of pixel (x, y) at the spec's depth.
func (s pngSpec) sample(src *image.NRGBA, x, y, c int) int {
	p := src.NRGBAAt(x, y)
	maxv := 1<<s.depth - 1
	lum := (299*int(p.R) + 587*int(p.G) + 114*int(p.B)) / 1000
	alpha := (x*255/max(1, s.w-1) + y) % 256
	var v8 int
	noise := (x*7 + y*13) % 256 // fills 16-bit samples' low bytes
	switch s.ct {
	case pngGray:
		v8 = lum
	case pngPalette:
		return lum * (maxv + 1) / 256
	case pngGrayAlpha:
		v8 = [2]int{lum, alpha}[c]
	case pngRGB:
		v8 = [3]int{int(p.R), int(p.G), int(p.B)}[c]
	case pngRGBA:
		v8 = [4]int{int(p.R), int(p.G), int(p.B), alpha}[c]
	}
	if s.depth == 16 {
		return v8<<8 | noise
	}
	return v8 * maxv / 255
}

func (s pngSpec) channels() int {
	return [...]int{1, 0, 3, 1, 2, 0, 4}[s.ct]
}

// rawStream builds the filtered scanlines (all passes).
func (s pngSpec) rawStream(src *image.NRGBA) []byte {
	type pass struct{ xoff, yoff, xstep, ystep int }
	passes := []pass{{0, 0, 1, 1}}
	if s.interlace {
		passes = []pass{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}
	}
	bitsPP := s.channels() * int(s.depth)
	bpp := max(1, bitsPP/8)
	var out []byte
	row := 0
	for _, p := range passes {
		pw := (s.w - p.xoff + p.xstep - 1) / p.xstep
		ph := (s.h - p.yoff + p.ystep - 1) / p.ystep
		if pw <= 0 || ph <= 0 {
			continue
		}
		rb := (pw*bitsPP + 7) / 8
		prev := make([]byte, rb)
		for j := 0; j < ph; j++ {
			y := p.yoff + j*p.ystep
			cur := make([]byte, rb)
			bit := 0
			for i := 0; i < pw; i++ {
				x := p.xoff + i*p.xstep
				for c := 0; c < s.channels(); c++ {
					v := s.sample(src, x, y, c)
					switch s.depth {
					case 16:
						cur[bit/8], cur[bit/8+1] = byte(v>>8), byte(v)
					case 8:
						cur[bit/8] = byte(v)
					default:
						cur[bit/8] |= byte(v) << (8 - int(s.depth) - bit%8)
					}
					bit += int(s.depth)
				}
			}
			ft := byte(row % 5)
			row++
			out = append(out, ft)
			out = append(out, filterRow(ft, cur, prev, bpp)...)
			prev = cur
		}
	}
	return out
}

func filterRow(ft byte, cur, prev []byte, bpp int) []byte {
	out := make([]byte, len(cur))
	for i := range cur {
		var a, b, c int
		if i >= bpp {
			a, c = int(cur[i-bpp]), int(prev[i-bpp])
		}
		b = int(prev[i])
		var pred int
		switch ft {
		case 1:
			pred = a
		case 2:
			pred = b
		case 3:
			pred = (a + b) / 2
		case 4:
			p := a + b - c
			pa, pb, pc := abs(p-a), abs(p-b), abs(p-c)
			switch {
			case pa <= pb && pa <= pc:
				pred = a
			case pb <= pc:
				pred = b
			default:
				pred = c
			}
		}
		out[i] = cur[i] - byte(pred)
	}
	return out
}

func zlibBytes(b []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(b)
	w.Close()
	return z.Bytes()
}

// parts of an encoded PNG, to be reassembled in any order.
type pngParts struct {
	ihdr, plte, trns, idat, iend []byte
	z                            []byte // the zlib stream
}

func (s pngSpec) parts(src *image.NRGBA) pngParts {
	var p pngParts
	p.ihdr = ihdr(s.w, s.h, s.depth, s.ct, s.interlace)
	if s.ct == pngPalette {
		n := 1 << s.depth
		pl := make([]byte, 3*n)
		for i := 0; i < n; i++ {
			v := byte(i * 255 / (n - 1))
			pl[3*i], pl[3*i+1], pl[3*i+2] = v, 255-v, v/2
		}
		p.plte = pngChunk("PLTE", pl)
		if s.trns {
			t := make([]byte, n/2+1)
			for i := range t {
				t[i] = byte(i * 37)
			}
			p.trns = pngChunk("tRNS", t)
		}
	} else if s.trns {
		switch s.ct {
		case pngGray:
			v := s.sample(src, s.w/2, s.h/2, 0)
			p.trns = pngChunk("tRNS", []byte{byte(v >> 8), byte(v)})
		case pngRGB:
			t := make([]byte, 6)
			for c := 0; c < 3; c++ {
				v := s.sample(src, s.w/2, s.h/2, c)
				t[2*c], t[2*c+1] = byte(v>>8), byte(v)
			}
			p.trns = pngChunk("tRNS", t)
		}
	}
	p.z = zlibBytes(s.rawStream(src))
	n := max(1, s.idatChunks)
	step := ceilDiv(len(p.z), n)
	for i := 0; i < len(p.z); i += step {
		p.idat = append(p.idat, pngChunk("IDAT", p.z[i:min(i+step, len(p.z))])...)
	}
	p.iend = pngChunk("IEND", nil)
	return p
}

func (p pngParts) join(order ...[]byte) []byte {
	out := []byte("\x89PNG\r\n\x1a\n")
	for _, b := range order {
		out = append(out, b...)
	}
	return out
}

func (p pngParts) standard() []byte { return p.join(p.ihdr, p.plte, p.trns, p.idat, p.iend) }
