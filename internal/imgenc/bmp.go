package imgenc

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"math/bits"
)

type bmpSpec struct {
	hdr      int // DIB header size: 12 (OS/2 1.x), 40, 56, 108, 124
	bpp      int
	comp     int // 0 RGB, 1 RLE8, 2 RLE4, 3 bit fields
	masks    [4]uint32
	topDown  bool
	gap      int  // junk bytes between palette and pixels
	junk     bool // non-zero reserved bytes everywhere
	alpha    int  // 32-bit: 0 none written (zero byte), 1 real alpha
	truncate int  // drop this many bytes from the end
}

// buildBMP encodes src per spec and returns the file and the picture a
// viewer shows.
func buildBMP(s bmpSpec, src *image.NRGBA) ([]byte, *image.NRGBA) {
	w, h := src.Rect.Dx(), src.Rect.Dy()
	want := image.NewNRGBA(src.Rect)
	le := binary.LittleEndian
	var dibh []byte
	if s.hdr == 12 {
		dibh = make([]byte, 12)
		le.PutUint32(dibh, 12)
		le.PutUint16(dibh[4:], uint16(w))
		le.PutUint16(dibh[6:], uint16(h))
		le.PutUint16(dibh[8:], 1)
		le.PutUint16(dibh[10:], uint16(s.bpp))
	} else {
		dibh = make([]byte, s.hdr)
		le.PutUint32(dibh, uint32(s.hdr))
		le.PutUint32(dibh[4:], uint32(w))
		hh := int32(h)
		if s.topDown {
			hh = -hh
		}
		le.PutUint32(dibh[8:], uint32(hh))
		le.PutUint16(dibh[12:], 1)
		le.PutUint16(dibh[14:], uint16(s.bpp))
		le.PutUint32(dibh[16:], uint32(s.comp))
		if s.hdr >= 56 {
			for i, m := range s.masks {
				le.PutUint32(dibh[40+4*i:], m)
			}
		}
	}
	var extra []byte
	if s.comp == 3 && s.hdr == 40 {
		for _, m := range s.masks[:3] {
			extra = le.AppendUint32(extra, m)
		}
	}
	n := 0
	if s.bpp <= 8 {
		n = 1 << s.bpp
		for i := 0; i < n; i++ {
			v := byte(i * 255 / (n - 1))
			extra = append(extra, v/2, v, 255-v) // B G R: a colour ramp
			if s.hdr != 12 {
				r := byte(0)
				if s.junk {
					r = 0x77
				}
				extra = append(extra, r)
			}
		}
	}
	palColor := func(i int) color.NRGBA {
		v := byte(i * 255 / (n - 1))
		return color.NRGBA{255 - v, v, v / 2, 255}
	}
	index := func(p color.NRGBA) int {
		lum := (299*int(p.R) + 587*int(p.G) + 114*int(p.B)) / 1000
		return lum * n / 256
	}
	fields := [4]bitfield{newBitfield(s.masks[0]), newBitfield(s.masks[1]), newBitfield(s.masks[2]), newBitfield(s.masks[3])}
	pack := func(p color.NRGBA) uint32 {
		var v uint32
		for i, c := range []byte{p.R, p.G, p.B, p.A} {
			f := fields[i]
			if f.mask == 0 {
				continue
			}
			v |= (uint32(c) >> (8 - min(f.bits, 8))) << f.shift & f.mask
		}
		return v
	}
	rowBytes := ((w*s.bpp + 31) / 32) * 4
	var px []byte
	rows := make([][]color.NRGBA, h) // row in file order
	for i := 0; i < h; i++ {
		y := h - 1 - i
		if s.topDown {
			y = i
		}
		rows[i] = make([]color.NRGBA, w)
		for x := 0; x < w; x++ {
			rows[i][x] = src.NRGBAAt(x, y)
		}
	}
	for i, row := range rows {
		y := h - 1 - i
		if s.topDown {
			y = i
		}
		if s.comp == 1 || s.comp == 2 {
			idx := make([]int, w)
			for x, p := range row {
				idx[x] = index(p)
				want.SetNRGBA(x, y, palColor(idx[x]))
			}
			px = append(px, rleRow(idx, s.comp == 2)...)
			continue
		}
		line := make([]byte, rowBytes)
		for x, p := range row {
			switch s.bpp {
			case 1, 2, 4, 8:
				k := index(p)
				bit := x * s.bpp
				line[bit/8] |= byte(k) << (8 - s.bpp - bit%8)
				want.SetNRGBA(x, y, palColor(k))
			case 24:
				line[3*x], line[3*x+1], line[3*x+2] = p.B, p.G, p.R
				want.SetNRGBA(x, y, color.NRGBA{p.R, p.G, p.B, 255})
			case 16, 32:
				q := p
				if s.alpha == 0 {
					q.A = 0
				}
				v := pack(q)
				if s.bpp == 16 {
					le.PutUint16(line[2*x:], uint16(v))
				} else {
					le.PutUint32(line[4*x:], v)
				}
				c := color.NRGBA{fields[0].get(v), fields[1].get(v), fields[2].get(v), 255}
				if s.alpha == 1 && fields[3].mask != 0 {
					c.A = fields[3].get(v)
				}
				want.SetNRGBA(x, y, c)
			}
		}
		if s.junk && s.bpp == 24 && rowBytes > 3*w {
			line[rowBytes-1] = 0x5a // row padding
		}
		px = append(px, line...)
	}
	if s.comp == 1 || s.comp == 2 {
		px = append(px, 0, 1)
	}
	file := make([]byte, 14)
	file[0], file[1] = 'B', 'M'
	off := 14 + len(dibh) + len(extra) + s.gap
	le.PutUint32(file[10:], uint32(off))
	if s.junk {
		le.PutUint32(file[6:], 0xdeadbeef)
	}
	out := append(file, dibh...)
	out = append(out, extra...)
	out = append(out, bytes.Repeat([]byte{0xcc}, s.gap)...)
	out = append(out, px...)
	le.PutUint32(out[2:], uint32(len(out)))
	return out[:len(out)-s.truncate], want
}

// rleRow encodes one row of indices as RLE8 (or RLE4) runs, using both
// encoded and absolute mode, ending with end-of-line.
func rleRow(idx []int, four bool) []byte {
	var out []byte
	for x := 0; x < len(idx); {
		run := 1
		for x+run < len(idx) && idx[x+run] == idx[x] && run < 255 {
			run++
		}
		if run >= 3 || len(idx)-x < 3 {
			v := byte(idx[x])
			if four {
				v = v<<4 | v
			}
			out = append(out, byte(run), v)
			x += run
			continue
		}
		lit := 0
		for x+lit < len(idx) && lit < 255 {
			if x+lit+2 < len(idx) && idx[x+lit] == idx[x+lit+1] && idx[x+lit] == idx[x+lit+2] {
				break
			}
			lit++
		}
		if lit < 3 {
			lit = min(3, len(idx)-x)
		}
		out = append(out, 0, byte(lit))
		var data []byte
		if four {
			for k := 0; k < lit; k += 2 {
				b := byte(idx[x+k]) << 4
				if k+1 < lit {
					b |= byte(idx[x+k+1])
				}
				data = append(data, b)
			}
		} else {
			for k := 0; k < lit; k++ {
				data = append(data, byte(idx[x+k]))
			}
		}
		if len(data)%2 == 1 {
			data = append(data, 0)
		}
		out = append(out, data...)
		x += lit
	}
	return append(out, 0, 0)
}

// A bit field of a BMP pixel (copied from the decoder: the writer packs
// with it).
type bitfield struct {
	mask  uint32
	shift uint
	bits  uint
}

func newBitfield(mask uint32) bitfield {
	if mask == 0 {
		return bitfield{}
	}
	s := uint(bits.TrailingZeros32(mask))
	n := uint(bits.TrailingZeros32(^(mask >> s)))
	return bitfield{mask: mask, shift: s, bits: n}
}

// get scales the field to 8 bits, by bit replication when it is narrower.
func (f bitfield) get(v uint32) byte {
	if f.mask == 0 {
		return 0
	}
	x := (v & f.mask) >> f.shift
	if f.bits >= 8 {
		return byte(x >> (f.bits - 8))
	}
	x &= 1<<f.bits - 1
	out := uint32(0)
	for got := uint(0); got < 8; got += f.bits {
		out = out<<f.bits | x
	}
	return byte(out >> (((8+f.bits-1)/f.bits)*f.bits - 8))
}
