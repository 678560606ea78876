package picture

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/png"
	"testing"
)

// nearPixels is samePixels allowing each 8-bit channel to differ by tol.
func nearPixels(t *testing.T, got, want image.Image, tol int) {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds: got %v want %v", got.Bounds(), want.Bounds())
	}
	b := got.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g, w := at(got, x, y), at(want, x, y)
			if abs(int(g.R)-int(w.R)) > tol || abs(int(g.G)-int(w.G)) > tol || abs(int(g.B)-int(w.B)) > tol || abs(int(g.A)-int(w.A)) > tol {
				t.Fatalf("pixel (%d,%d): got %v want %v", x, y, g, w)
			}
		}
	}
}

func alphaPhoto(w, h int) *image.NRGBA {
	m := photo(w, h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Pix[m.PixOffset(x, y)+3] = uint8(55 + 200*x/w)
		}
	}
	return m
}

func TestBMPVariants(t *testing.T) {
	src := photo(45, 31)
	asrc := alphaPhoto(45, 31)
	rgb555 := [4]uint32{0x7C00, 0x03E0, 0x001F, 0}
	rgb565 := [4]uint32{0xF800, 0x07E0, 0x001F, 0}
	argb := [4]uint32{0x00FF0000, 0x0000FF00, 0x000000FF, 0xFF000000}
	bgra := [4]uint32{0x0000FF00, 0x00FF0000, 0xFF000000, 0x000000FF}
	cases := []struct {
		name string
		s    bmpSpec
		src  *image.NRGBA
	}{
		{"24-bit", bmpSpec{hdr: 40, bpp: 24}, src},
		{"24-bit top-down", bmpSpec{hdr: 40, bpp: 24, topDown: true}, src},
		{"24-bit gap and junk reserved bytes", bmpSpec{hdr: 40, bpp: 24, gap: 37, junk: true}, src},
		{"8-bit palette", bmpSpec{hdr: 40, bpp: 8, junk: true}, src},
		{"4-bit palette", bmpSpec{hdr: 40, bpp: 4}, src},
		{"2-bit palette", bmpSpec{hdr: 40, bpp: 2}, src},
		{"1-bit palette", bmpSpec{hdr: 40, bpp: 1}, src},
		{"RLE8", bmpSpec{hdr: 40, bpp: 8, comp: 1}, src},
		{"RLE4", bmpSpec{hdr: 40, bpp: 4, comp: 2}, src},
		{"16-bit default 555", bmpSpec{hdr: 40, bpp: 16, masks: rgb555}, src},
		{"16-bit 565 bit fields", bmpSpec{hdr: 40, bpp: 16, comp: 3, masks: rgb565}, src},
		{"16-bit 565 V5", bmpSpec{hdr: 124, bpp: 16, comp: 3, masks: rgb565}, src},
		{"32-bit zero alpha byte", bmpSpec{hdr: 40, bpp: 32, masks: argb}, src},
		{"32-bit real alpha byte", bmpSpec{hdr: 40, bpp: 32, masks: argb, alpha: 1}, asrc},
		{"32-bit V4 bit fields with alpha", bmpSpec{hdr: 108, bpp: 32, comp: 3, masks: bgra, alpha: 1}, asrc},
		{"32-bit V3 bit fields, zero alpha", bmpSpec{hdr: 56, bpp: 32, comp: 3, masks: bgra}, src},
		{"OS/2 1.x 24-bit", bmpSpec{hdr: 12, bpp: 24}, src},
		{"OS/2 1.x 8-bit", bmpSpec{hdr: 12, bpp: 8}, src},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data, want := buildBMP(c.s, c.src)
			pic := decodeBytes1(t, data, Options{})
			if pic.Format != "bmp" || pic.Truncated {
				t.Fatalf("format %q truncated %v", pic.Format, pic.Truncated)
			}
			nearPixels(t, pic.Frames[0], want, 1)
			tol := 12.0
			if c.s.bpp <= 2 || c.s.comp == 2 || c.s.bpp == 4 {
				tol = 60 // few colours
			}
			if c.s.bpp > 8 && c.src == src {
				assertLooksLike(t, pic.Frames[0], src, tol)
			}
			w, h, err := func() (int, int, error) {
				_, w, h, err := DecodeConfig(bytes.NewReader(data))
				return w, h, err
			}()
			if err != nil || w != 45 || h != 31 {
				t.Fatalf("DecodeConfig %dx%d %v", w, h, err)
			}
		})
	}
}

func TestBMPTruncatedAndRLEHoles(t *testing.T) {
	src := photo(20, 20)
	data, want := buildBMP(bmpSpec{hdr: 40, bpp: 24}, src)
	cut := data[:len(data)-10*60] // the top 10 rows (stored last) are missing
	pic := decodeBytes1(t, cut, Options{})
	if !pic.Truncated {
		t.Fatal("not marked truncated")
	}
	if at(pic.Frames[0], 3, 15) != at(want, 3, 15) || at(pic.Frames[0], 3, 3).A != 0 {
		t.Fatalf("bottom rows should be there and the top blank: %v %v", at(pic.Frames[0], 3, 15), at(pic.Frames[0], 3, 3))
	}

	// RLE8 with a delta and an early end of line: the skipped pixels are
	// transparent, as Chromium shows them.
	rle, _ := buildBMP(bmpSpec{hdr: 40, bpp: 8, comp: 1}, photo(8, 4))
	off := int(binary.LittleEndian.Uint32(rle[10:]))
	body := []byte{
		8, 255, 0, 0, // bottom row: 8 pixels of index 255, end of line
		2, 255, 0, 2, 3, 1, 2, 255, 0, 0, // row 1: 2 pixels, delta (3,1), 2 pixels, EOL
		0, 1, // end of bitmap
	}
	rle = append(rle[:off], body...)
	pic = decodeBytes1(t, rle, Options{})
	f := pic.Frames[0]
	if at(f, 0, 3).A != 255 || at(f, 1, 2).A != 255 || at(f, 3, 2).A != 0 || at(f, 5, 1).A != 255 || at(f, 5, 0).A != 0 {
		t.Fatalf("RLE holes: %v %v %v %v %v", at(f, 0, 3), at(f, 1, 2), at(f, 3, 2), at(f, 5, 1), at(f, 5, 0))
	}
}

func TestBMPReducedScale(t *testing.T) {
	for _, s := range []bmpSpec{{hdr: 40, bpp: 24}, {hdr: 40, bpp: 8, comp: 1}, {hdr: 40, bpp: 4}} {
		data, want := buildBMP(s, photo(90, 60))
		pic := decodeBytes1(t, data, Options{MaxPixels: 90 * 60 / 9})
		if pic.Scale != 3 || pic.Frames[0].Bounds() != image.Rect(0, 0, 30, 20) {
			t.Fatalf("scale %d bounds %v", pic.Scale, pic.Frames[0].Bounds())
		}
		for y := 0; y < 20; y++ {
			for x := 0; x < 30; x++ {
				if at(pic.Frames[0], x, y) != at(want, 3*x, 3*y) {
					t.Fatalf("%+v (%d,%d)", s, x, y)
				}
			}
		}
	}
}

func TestBMPEmbeddedPNG(t *testing.T) {
	src := photo(16, 12)
	var pb bytes.Buffer
	png.Encode(&pb, src)
	d, _ := buildBMP(bmpSpec{hdr: 40, bpp: 24}, src)
	off := int(binary.LittleEndian.Uint32(d[10:]))
	d = append(d[:off], pb.Bytes()...)
	binary.LittleEndian.PutUint16(d[14+14:], 0)
	binary.LittleEndian.PutUint32(d[14+16:], biPNG)
	pic := decodeBytes1(t, d, Options{})
	samePixels(t, pic.Frames[0], src)
}

// ico builds an ICO/CUR directory around the given entries.
func ico(entries ...[]byte) []byte {
	le := binary.LittleEndian
	out := []byte{0, 0, 1, 0}
	out = le.AppendUint16(out, uint16(len(entries)))
	off := 6 + 16*len(entries)
	var body []byte
	for _, e := range entries {
		w, h := 0, 0
		if Sniff(e) == "png" {
			w, h, _ = configPNG(e)
		} else {
			w, h = int(le.Uint32(e[4:])), int(le.Uint32(e[8:]))/2
		}
		out = append(out, byte(w), byte(h), 0, 0, 1, 0, 32, 0)
		out = le.AppendUint32(out, uint32(len(e)))
		out = le.AppendUint32(out, uint32(off+len(body)))
		body = append(body, e...)
	}
	return append(out, body...)
}

// icoDIB turns a BMP file into an ICO entry: no file header, doubled
// height, an AND mask (set where mask says) after the pixels.
func icoDIB(bmp []byte, w, h int, mask func(x, y int) bool) []byte {
	d := append([]byte(nil), bmp[14:]...)
	hh := int32(binary.LittleEndian.Uint32(d[8:]))
	binary.LittleEndian.PutUint32(d[8:], uint32(2*hh))
	rb := ((w + 31) / 32) * 4
	m := make([]byte, rb*h)
	for i := 0; i < h; i++ {
		y := h - 1 - i
		for x := 0; x < w; x++ {
			if mask(x, y) {
				m[i*rb+x/8] |= 0x80 >> (x % 8)
			}
		}
	}
	return append(d, m...)
}

func TestICO(t *testing.T) {
	small, big := photo(16, 16), photo(48, 48)
	var pb bytes.Buffer
	png.Encode(&pb, big)
	bmp8, want8 := buildBMP(bmpSpec{hdr: 40, bpp: 8}, small)
	hole := func(x, y int) bool { return x < 4 && y < 4 }
	for name, c := range map[string]struct {
		data []byte
		want image.Image
	}{
		"PNG entry is the largest": {ico(icoDIB(bmp8, 16, 16, hole), pb.Bytes()), big},
		"8-bit DIB with AND mask": {ico(icoDIB(bmp8, 16, 16, hole)), func() image.Image {
			m := cloneNRGBA(want8)
			clearRect(m, image.Rect(0, 0, 4, 4))
			return m
		}()},
	} {
		t.Run(name, func(t *testing.T) {
			pic := decodeBytes1(t, c.data, Options{})
			if pic.Format != "ico" {
				t.Fatalf("format %q", pic.Format)
			}
			nearPixels(t, pic.Frames[0], c.want, 0)
			_, w, h, err := DecodeConfig(bytes.NewReader(c.data))
			if err != nil || w != c.want.Bounds().Dx() || h != c.want.Bounds().Dy() {
				t.Fatalf("DecodeConfig %dx%d %v", w, h, err)
			}
		})
	}
	t.Run("32-bit DIB uses its alpha, not the mask", func(t *testing.T) {
		a := alphaPhoto(16, 16)
		bmp32, want := buildBMP(bmpSpec{hdr: 40, bpp: 32, masks: [4]uint32{0xFF0000, 0xFF00, 0xFF, 0xFF000000}, alpha: 1}, a)
		pic := decodeBytes1(t, ico(icoDIB(bmp32, 16, 16, hole)), Options{})
		nearPixels(t, pic.Frames[0], want, 0)
	})
	t.Run("32-bit DIB with zero alpha uses the mask", func(t *testing.T) {
		bmp32, want := buildBMP(bmpSpec{hdr: 40, bpp: 32, masks: [4]uint32{0xFF0000, 0xFF00, 0xFF, 0xFF000000}}, small)
		pic := decodeBytes1(t, ico(icoDIB(bmp32, 16, 16, hole)), Options{})
		m := cloneNRGBA(want)
		clearRect(m, image.Rect(0, 0, 4, 4))
		nearPixels(t, pic.Frames[0], m, 0)
	})
}

func TestBMPRejects(t *testing.T) {
	d, _ := buildBMP(bmpSpec{hdr: 40, bpp: 24}, photo(4, 4))
	for name, mod := range map[string]func([]byte){
		"zero width":    func(b []byte) { binary.LittleEndian.PutUint32(b[18:], 0) },
		"depth 7":       func(b []byte) { binary.LittleEndian.PutUint16(b[28:], 7) },
		"header size 3": func(b []byte) { binary.LittleEndian.PutUint32(b[14:], 3) },
		"huge": func(b []byte) {
			binary.LittleEndian.PutUint32(b[18:], 1<<30)
			binary.LittleEndian.PutUint32(b[22:], 1<<30)
		},
	} {
		b := append([]byte(nil), d...)
		mod(b)
		_, err := Decode(bytes.NewReader(b), Options{})
		if err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
