package picture

import (
	"image"
	"math/bits"
)

// A BMP (DIB) reader for every variant browsers show: OS/2 1.x and 2.x
// headers, BITMAPINFOHEADER through V5, 1/2/4/8-bit palettes, 16/32-bit
// with bit fields and alpha, 24-bit, RLE8/RLE4/RLE24, embedded JPEG/PNG,
// top-down rows, non-zero reserved bytes, a gap before the pixels (the
// pixel offset is honoured), and truncated pixel data. It also decodes the
// DIBs inside ICO/CUR files with their AND mask.

const (
	biRGB            = 0
	biRLE8           = 1
	biRLE4           = 2
	biBitfields      = 3
	biJPEG           = 4
	biPNG            = 5
	biAlphaBitfields = 6
	biRLE24          = 100 // OS/2 2.x compression 4, renumbered here
	biHuffman        = 101 // OS/2 2.x compression 3
)

type dib struct {
	w, h        int
	topDown     bool
	bpp         int
	compression int
	masks       [4]uint32 // R, G, B, A
	pal         [][4]byte // NRGBA
	headerEnd   int       // offset after the header, masks and palette
}

func configBMPFile(head []byte) (int, int, error) {
	if len(head) < 14 {
		return 0, 0, corruptf("bmp", "short header")
	}
	d, err := parseDIB(head[14:], false)
	if err != nil {
		return 0, 0, err
	}
	return d.w, d.h, nil
}

// parseDIB reads a DIB header (and its masks and palette) from b.
func parseDIB(b []byte, inICO bool) (*dib, error) {
	if len(b) < 12 {
		return nil, corruptf("bmp", "short DIB header")
	}
	hs := int(le32(b))
	d := &dib{}
	palEntry := 4
	clrUsed := 0
	switch {
	case hs == 12: // BITMAPCOREHEADER (OS/2 1.x)
		d.w, d.h = int(le16(b[4:])), int(int16(le16(b[6:])))
		d.bpp = int(le16(b[10:]))
		palEntry = 3
	case hs >= 16 && hs <= 1024:
		if len(b) < 16 {
			return nil, corruptf("bmp", "short DIB header")
		}
		d.w, d.h = int(int32(le32(b[4:]))), int(int32(le32(b[8:])))
		d.bpp = int(le16(b[14:]))
		if hs >= 20 && len(b) >= 20 {
			d.compression = int(le32(b[16:]))
		}
		if hs >= 36 && len(b) >= 36 {
			clrUsed = int(min(le32(b[32:]), 1<<16))
		}
		os2 := hs == 16 || hs == 64 || (hs > 16 && hs < 40)
		if os2 {
			switch d.compression {
			case 3:
				d.compression = biHuffman
			case 4:
				d.compression = biRLE24
			}
		}
	default:
		return nil, corruptf("bmp", "DIB header size %d", hs)
	}
	if d.h < 0 {
		if d.h == -1<<31 {
			return nil, corruptf("bmp", "bad height")
		}
		d.h, d.topDown = -d.h, true
	}
	if inICO {
		d.h /= 2
	}
	if d.w <= 0 || d.h <= 0 {
		return nil, corruptf("bmp", "bad size %dx%d", d.w, d.h)
	}
	switch d.bpp {
	case 1, 2, 4, 8, 16, 24, 32:
	case 0:
		if d.compression != biJPEG && d.compression != biPNG {
			return nil, corruptf("bmp", "bit depth 0")
		}
	default:
		return nil, corruptf("bmp", "bit depth %d", d.bpp)
	}
	switch d.compression {
	case biRGB, biBitfields, biAlphaBitfields, biJPEG, biPNG:
	case biRLE8:
		if d.bpp != 8 {
			return nil, corruptf("bmp", "RLE8 at %d bits", d.bpp)
		}
	case biRLE4:
		if d.bpp != 4 {
			return nil, corruptf("bmp", "RLE4 at %d bits", d.bpp)
		}
	case biRLE24:
		if d.bpp != 24 {
			return nil, corruptf("bmp", "RLE24 at %d bits", d.bpp)
		}
	default:
		return nil, corruptf("bmp", "compression %d not supported", d.compression)
	}
	p := hs
	// Bit fields: inside V2+ headers, after a 40-byte header otherwise.
	if d.compression == biBitfields || d.compression == biAlphaBitfields {
		n := 3
		if d.compression == biAlphaBitfields {
			n = 4
		}
		if hs >= 52 {
			n = min(n, 3)
			if hs >= 56 {
				n = 4
			}
			for i := 0; i < n && 40+4*i+4 <= len(b); i++ {
				d.masks[i] = le32(b[40+4*i:])
			}
		} else {
			for i := 0; i < n && p+4 <= len(b); i++ {
				d.masks[i] = le32(b[p:])
				p += 4
			}
		}
		if d.bpp != 16 && d.bpp != 32 {
			d.compression = biRGB // bit fields mean nothing at other depths
		}
	}
	if d.compression == biRGB {
		switch d.bpp {
		case 16:
			d.masks = [4]uint32{0x7C00, 0x03E0, 0x001F, 0}
		case 32:
			// Viewers take the high byte as alpha, unless it is zero all
			// over (see decode).
			d.masks = [4]uint32{0xFF0000, 0xFF00, 0xFF, 0xFF000000}
		}
	}
	if d.bpp <= 8 && d.bpp > 0 {
		n := 1 << d.bpp
		if clrUsed > 0 && clrUsed < n {
			n = clrUsed
		}
		d.pal = make([][4]byte, 1<<d.bpp)
		for i := range d.pal {
			d.pal[i] = [4]byte{0, 0, 0, 0xff}
		}
		for i := 0; i < n && p+palEntry <= len(b); i++ {
			d.pal[i] = [4]byte{b[p+2], b[p+1], b[p], 0xff}
			p += palEntry
		}
		if clrUsed > n && clrUsed <= 1<<16 {
			// Skip a larger declared table we do not use.
			p += (clrUsed - n) * palEntry
		}
	}
	d.headerEnd = p
	return d, nil
}

func decodeBMPFile(data []byte, l *limits) (*Picture, error) {
	if len(data) < 14+12 {
		return nil, corruptf("bmp", "short header")
	}
	d, err := parseDIB(data[14:], false)
	if err != nil {
		return nil, err
	}
	// Honour the declared pixel offset (there may be a gap); when it points
	// into the header or past the end, the pixels follow the palette.
	off := int(le32(data[10:]))
	if off < 14+d.headerEnd || off >= len(data) {
		off = min(14+d.headerEnd, len(data))
	}
	return d.decodePixels(data[off:], l, nil)
}

// decodePixels decodes the pixel data px. andMask, for ICO, holds the data
// after the pixels (nil for a BMP file).
func (d *dib) decodePixels(px []byte, l *limits, andMask []byte) (*Picture, error) {
	switch d.compression {
	case biPNG:
		if Sniff(px) != "png" {
			return nil, corruptf("bmp", "embedded PNG is not a PNG")
		}
		return decodePNG(px, l)
	case biJPEG:
		if Sniff(px) != "jpeg" {
			return nil, corruptf("bmp", "embedded JPEG is not a JPEG")
		}
		return decodeJPEG(px, l)
	}
	scale, err := l.scaleFor("bmp", d.w, d.h)
	if err != nil {
		return nil, err
	}
	l.spend(int64(d.w) * int64(d.h))
	m := image.NewNRGBA(image.Rect(0, 0, ceilDiv(d.w, scale), ceilDiv(d.h, scale)))
	var truncated bool
	switch d.compression {
	case biRLE8, biRLE4, biRLE24:
		truncated = d.rle(px, m, scale)
	default:
		truncated = d.raw(px, m, scale, andMask)
	}
	return still(m, scale, truncated), nil
}

// rowY maps a row's position in the file to its display row.
func (d *dib) rowY(i int) int {
	if d.topDown {
		return i
	}
	return d.h - 1 - i
}

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

// raw decodes uncompressed or bit-field rows; it reports truncation.
func (d *dib) raw(px []byte, m *image.NRGBA, scale int, andMask []byte) bool {
	rowBytes := ((d.w*d.bpp + 31) / 32) * 4
	truncated := false
	fields := [4]bitfield{newBitfield(d.masks[0]), newBitfield(d.masks[1]), newBitfield(d.masks[2]), newBitfield(d.masks[3])}
	hasAlpha := (d.bpp == 16 || d.bpp == 32) && fields[3].mask != 0
	sawAlpha := false
	rowsDone := 0
	for i := 0; i < d.h; i++ {
		y := d.rowY(i)
		if (i+1)*rowBytes > len(px) {
			truncated = true
			break
		}
		rowsDone = i + 1
		if y%scale != 0 {
			continue
		}
		row := px[i*rowBytes : (i+1)*rowBytes]
		out := m.Pix[(y/scale)*m.Stride:]
		for x, o := 0, 0; x < d.w; x, o = x+scale, o+4 {
			q := out[o : o+4 : o+4]
			switch d.bpp {
			case 1, 2, 4:
				bit := x * d.bpp
				idx := (row[bit/8] >> (8 - uint(d.bpp) - uint(bit%8))) & byte(1<<d.bpp-1)
				c := d.pal[idx]
				q[0], q[1], q[2], q[3] = c[0], c[1], c[2], 0xff
			case 8:
				c := d.pal[row[x]]
				q[0], q[1], q[2], q[3] = c[0], c[1], c[2], 0xff
			case 24:
				q[0], q[1], q[2], q[3] = row[3*x+2], row[3*x+1], row[3*x], 0xff
			case 16, 32:
				var v uint32
				if d.bpp == 16 {
					v = uint32(le16(row[2*x:]))
				} else {
					v = le32(row[4*x:])
				}
				q[0], q[1], q[2] = fields[0].get(v), fields[1].get(v), fields[2].get(v)
				q[3] = 0xff
				if hasAlpha {
					q[3] = fields[3].get(v)
					if q[3] != 0 {
						sawAlpha = true
					}
				}
			}
		}
	}
	if hasAlpha && !sawAlpha {
		// An all-zero alpha channel is unused padding: viewers show the
		// picture opaque (and an ICO then uses its AND mask).
		for i := 0; i < rowsDone; i++ {
			y := d.rowY(i)
			if y%scale != 0 {
				continue
			}
			out := m.Pix[(y/scale)*m.Stride:][:m.Stride]
			for o := 3; o < len(out); o += 4 {
				out[o] = 0xff
			}
		}
		hasAlpha = false
	}
	if andMask != nil && !hasAlpha {
		d.applyANDMask(andMask[min(len(andMask), d.h*rowBytes):], m, scale, rowsDone)
	}
	return truncated
}

// applyANDMask makes pixels transparent where an ICO's 1-bit AND mask is set.
func (d *dib) applyANDMask(mask []byte, m *image.NRGBA, scale, rowsDone int) {
	rowBytes := ((d.w + 31) / 32) * 4
	for i := 0; i < rowsDone && (i+1)*rowBytes <= len(mask); i++ {
		y := d.rowY(i)
		if y%scale != 0 {
			continue
		}
		row := mask[i*rowBytes:]
		out := m.Pix[(y/scale)*m.Stride:]
		for x, o := 0, 3; x < d.w; x, o = x+scale, o+4 {
			if row[x/8]&(0x80>>(x%8)) != 0 {
				out[o-3], out[o-2], out[o-1], out[o] = 0, 0, 0, 0
			}
		}
	}
}

// rle decodes RLE8/RLE4/RLE24; pixels it never reaches stay transparent, as
// in Chromium. It reports truncation (no end-of-bitmap code).
func (d *dib) rle(px []byte, m *image.NRGBA, scale int) bool {
	x, i := 0, 0 // column, row in file order
	put := func(c [4]byte) {
		if x < d.w && i < d.h && x%scale == 0 {
			if y := d.rowY(i); y%scale == 0 {
				o := (y/scale)*m.Stride + (x/scale)*4
				q := m.Pix[o : o+4 : o+4]
				q[0], q[1], q[2], q[3] = c[0], c[1], c[2], 0xff
			}
		}
		x++
	}
	pal := func(idx byte) [4]byte {
		if int(idx) < len(d.pal) {
			return d.pal[idx]
		}
		return [4]byte{0, 0, 0, 0xff}
	}
	p := 0
	for p+2 <= len(px) && i < d.h {
		n := int(px[p])
		if n > 0 { // encoded run: count, then one index byte or B G R
			n = min(n, max(d.w-x, 0)) // pixels past the row's end are dropped
			switch d.compression {
			case biRLE8:
				c := pal(px[p+1])
				for k := 0; k < n; k++ {
					put(c)
				}
				p += 2
			case biRLE4:
				v := px[p+1]
				c := [2][4]byte{pal(v >> 4), pal(v & 15)}
				for k := 0; k < n; k++ {
					put(c[k&1])
				}
				p += 2
			case biRLE24:
				if p+4 > len(px) {
					return true
				}
				c := [4]byte{px[p+3], px[p+2], px[p+1], 0xff}
				for k := 0; k < n; k++ {
					put(c)
				}
				p += 4
			}
			continue
		}
		v := px[p+1]
		p += 2
		switch v {
		case 0: // end of line
			x, i = 0, i+1
		case 1: // end of bitmap
			return false
		case 2: // delta
			if p+2 > len(px) {
				return true
			}
			x += int(px[p])
			i += int(px[p+1])
			p += 2
		default: // absolute run of v pixels, padded to an even length
			cnt := int(v)
			switch d.compression {
			case biRLE8:
				for k := 0; k < cnt && p+k < len(px) && x < d.w; k++ {
					put(pal(px[p+k]))
				}
				p += (cnt + 1) &^ 1
			case biRLE4:
				nb := (cnt + 1) / 2
				for k := 0; k < cnt && p+k/2 < len(px) && x < d.w; k++ {
					b := px[p+k/2]
					if k&1 == 0 {
						put(pal(b >> 4))
					} else {
						put(pal(b & 15))
					}
				}
				p += (nb + 1) &^ 1
			case biRLE24:
				for k := 0; k < cnt && p+3*k+3 <= len(px) && x < d.w; k++ {
					q := px[p+3*k:]
					put([4]byte{q[2], q[1], q[0], 0xff})
				}
				p += (3*cnt + 1) &^ 1
			}
		}
	}
	return i < d.h
}
