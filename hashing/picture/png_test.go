package picture

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"testing"
)

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
