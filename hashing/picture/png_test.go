package picture

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"testing"
)

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

// TestPNGMatchesImagePNG: on valid files the decoder must be pixel-identical
// to image/png, in every colour type, depth, with and without tRNS and
// interlacing, across all five filter types.
func TestPNGMatchesImagePNG(t *testing.T) {
	src := photo(37, 29) // odd sizes exercise partial bytes and Adam7 edges
	for _, ct := range []byte{pngGray, pngRGB, pngPalette, pngGrayAlpha, pngRGBA} {
		for _, depth := range []byte{1, 2, 4, 8, 16} {
			if !validPNGDepth(ct, depth) {
				continue
			}
			for _, interlace := range []bool{false, true} {
				for _, trns := range []bool{false, true} {
					if trns && (ct == pngGrayAlpha || ct == pngRGBA) {
						continue
					}
					s := pngSpec{w: src.Rect.Dx(), h: src.Rect.Dy(), ct: ct, depth: depth, interlace: interlace, trns: trns, idatChunks: 3}
					name := fmt.Sprintf("ct%d/d%d/i%v/t%v", ct, depth, interlace, trns)
					t.Run(name, func(t *testing.T) {
						data := s.parts(src).standard()
						want, err := png.Decode(bytes.NewReader(data))
						if err != nil {
							t.Fatalf("image/png: %v", err)
						}
						pic := decodeBytes1(t, data, Options{})
						if pic.Format != "png" || pic.Truncated || pic.Scale != 1 {
							t.Fatalf("format %q truncated %v scale %d", pic.Format, pic.Truncated, pic.Scale)
						}
						if fmt.Sprintf("%T", pic.Frames[0]) != fmt.Sprintf("%T", want) {
							t.Errorf("type %T, image/png gives %T", pic.Frames[0], want)
						}
						samePixels(t, pic.Frames[0], want)
					})
				}
			}
		}
	}
}

func TestPNGMatchesImagePNGEncoder(t *testing.T) {
	src := photo(64, 48)
	gray := image.NewGray(src.Rect)
	pal := image.NewPaletted(src.Rect, color.Palette{color.Black, color.White, color.RGBA{255, 0, 0, 255}, color.NRGBA{0, 0, 255, 128}})
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			gray.Set(x, y, src.At(x, y))
			pal.SetColorIndex(x, y, uint8((x/8+y/8)%4))
		}
	}
	for name, img := range map[string]image.Image{"nrgba": src, "gray": gray, "paletted": pal} {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := png.Encode(&b, img); err != nil {
				t.Fatal(err)
			}
			want, _ := png.Decode(bytes.NewReader(b.Bytes()))
			samePixels(t, decodeBytes1(t, b.Bytes(), Options{}).Frames[0], want)
		})
	}
}

// TestPNGTolerance: forms Chromium shows but image/png refuses.
func TestPNGTolerance(t *testing.T) {
	src := photo(40, 30)
	clean := pngSpec{w: 40, h: 30, ct: pngRGB, depth: 8, idatChunks: 2}.parts(src)
	palSpec := pngSpec{w: 40, h: 30, ct: pngPalette, depth: 8, trns: true}
	pal := palSpec.parts(src)
	cleanImg, err := png.Decode(bytes.NewReader(clean.standard()))
	if err != nil {
		t.Fatal(err)
	}
	palImg, err := png.Decode(bytes.NewReader(pal.standard()))
	if err != nil {
		t.Fatal(err)
	}
	badCRC := clean.standard()
	badCRC[len(badCRC)-12-4-1] ^= 0xff // last IDAT's CRC
	badCRC[8+8+13] ^= 0xff             // IHDR's CRC
	badAdler := append([]byte(nil), clean.z...)
	badAdler[len(badAdler)-1] ^= 0xff
	// The stream with extra rows' worth of data after the image.
	raw := pngSpec{w: 40, h: 30, ct: pngRGB, depth: 8}.rawStream(src)
	surplus := zlibBytes(append(raw, make([]byte, 5000)...))
	half := clean.z[:len(clean.z)/2]

	cases := []struct {
		name      string
		data      []byte
		want      image.Image
		exact     bool
		truncated bool
	}{
		{"bad CRCs", badCRC, cleanImg, true, false},
		{"bad Adler-32", clean.join(clean.ihdr, pngChunk("IDAT", badAdler), clean.iend), cleanImg, true, false},
		{"PLTE and tRNS after IDAT", pal.join(pal.ihdr, pal.idat, pal.plte, pal.trns, pal.iend), palImg, true, false},
		{"tRNS after IDAT", pal.join(pal.ihdr, pal.plte, pal.idat, pal.trns, pal.iend), palImg, true, false},
		{"surplus rows in the stream", clean.join(clean.ihdr, pngChunk("IDAT", surplus), clean.iend), cleanImg, true, false},
		{"no IEND", clean.join(clean.ihdr, clean.idat), cleanImg, true, false},
		{"trailing garbage", append(clean.standard(), "garbage after IEND"...), cleanImg, true, false},
		{"chunk length past the end", clean.join(clean.ihdr, pngChunk("IDAT", clean.z)[:8+len(clean.z)]), cleanImg, true, false},
		{"truncated IDAT", clean.join(clean.ihdr, pngChunk("IDAT", half)), cleanImg, false, true},
		{"file cut mid-IDAT", clean.standard()[:8+25+8+len(clean.z)*2/3], cleanImg, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pic := decodeBytes1(t, c.data, Options{})
			if pic.Truncated != c.truncated {
				t.Errorf("Truncated = %v, want %v", pic.Truncated, c.truncated)
			}
			if c.exact {
				samePixels(t, pic.Frames[0], c.want)
				return
			}
			// Decoded as far as the data went: the top rows match, the
			// rest is blank.
			got := pic.Frames[0]
			if at(got, 5, 2) != at(c.want, 5, 2) {
				t.Errorf("first rows differ: %v vs %v", at(got, 5, 2), at(c.want, 5, 2))
			}
			if at(got, 5, 29).A != 0 {
				t.Errorf("missing rows are not blank: %v", at(got, 5, 29))
			}
		})
	}
}

func TestPNGExifOrientation(t *testing.T) {
	src := photo(8, 8)
	p := pngSpec{w: 8, h: 8, ct: pngRGB, depth: 8}.parts(src)
	for _, be := range []bool{false, true} {
		exif := tiffWithOrientation(be, 6)
		pic := decodeBytes1(t, p.join(p.ihdr, pngChunk("eXIf", exif), p.idat, p.iend), Options{})
		if pic.Orientation != 6 {
			t.Errorf("big-endian %v: orientation %d, want 6", be, pic.Orientation)
		}
		if pic.Frames[0].Bounds().Dx() != 8 {
			t.Error("orientation must not be applied")
		}
	}
}

// TestPNGReducedScale: over MaxPixels, every Nth row and column is kept
// exactly, interlaced or not, and Scale says N.
func TestPNGReducedScale(t *testing.T) {
	src := photo(101, 77)
	for _, interlace := range []bool{false, true} {
		for _, ct := range []byte{pngRGB, pngGray, pngPalette, pngRGBA} {
			s := pngSpec{w: 101, h: 77, ct: ct, depth: 8, interlace: interlace, trns: ct == pngPalette}
			data := s.parts(src).standard()
			full, err := png.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			pic := decodeBytes1(t, data, Options{MaxPixels: 101 * 77 / 9})
			if pic.Scale != 4 { // 3 gives 34*26 = 884 > 863
				t.Fatalf("scale %d", pic.Scale)
			}
			got := pic.Frames[0]
			if got.Bounds() != image.Rect(0, 0, 26, 20) {
				t.Fatalf("bounds %v", got.Bounds())
			}
			for y := 0; y < 20; y++ {
				for x := 0; x < 26; x++ {
					if at(got, x, y) != at(full, 4*x, 4*y) {
						t.Fatalf("interlace %v ct %d (%d,%d): %v want %v", interlace, ct, x, y, at(got, x, y), at(full, 4*x, 4*y))
					}
				}
			}
		}
	}
}

func TestPNGLimits(t *testing.T) {
	src := photo(4, 4)
	p := pngSpec{w: 4, h: 4, ct: pngRGB, depth: 8}.parts(src)
	// A tiny file declaring a huge canvas: beyond the work budget.
	huge := p.join(ihdr(1<<30, 1<<30, 8, pngRGB, false), p.idat, p.iend)
	mustErr(t, huge, Options{}, ErrTooManyPixels)
	// A row wider than the row bound.
	wide := p.join(ihdr(1<<28, 1, 16, pngRGBA, false), p.idat, p.iend)
	mustErr(t, wide, Options{}, ErrCorrupt)
	mustErr(t, p.join(p.idat, p.iend), Options{}, ErrCorrupt)               // no IHDR
	mustErr(t, p.join(ihdr(4, 4, 3, pngRGB, false)), Options{}, ErrCorrupt) // bad depth
}
