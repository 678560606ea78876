package picture

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/image/tiff"
)

// fuzzSeeds are small files of every format and variant the tests build.
func fuzzSeeds(f *testing.F) [][]byte {
	src := photo(24, 16)
	var seeds [][]byte
	add := func(b []byte) { seeds = append(seeds, b) }
	for _, ct := range []byte{pngGray, pngRGB, pngPalette, pngGrayAlpha, pngRGBA} {
		for _, d := range []byte{1, 4, 8, 16} {
			if validPNGDepth(ct, d) {
				add(pngSpec{w: 24, h: 16, ct: ct, depth: d, interlace: d == 8, trns: ct <= pngPalette}.parts(src).standard())
			}
		}
	}
	add(buildAPNG(8, 8, []apngFrameSpec{{w: 8, h: 8, c: red}, {w: 4, h: 4, x: 2, y: 2, dispose: 2, blend: 1, c: green}}, true, black))
	add(buildAPNG(8, 8, []apngFrameSpec{{w: 8, h: 8, c: red}, {w: 4, h: 4, dispose: 1, c: green}}, false, black))
	var b bytes.Buffer
	png.Encode(&b, src)
	add(b.Bytes())
	b.Reset()
	jpeg.Encode(&b, src, nil)
	add(withAPP1(b.Bytes(), tiffWithOrientation(true, 6)))
	b.Reset()
	g := &gif.GIF{Image: []*image.Paletted{gifOf(src, src.Rect, false), gifOf(src, image.Rect(4, 4, 12, 12), true)}, Delay: []int{1, 1}, Disposal: []byte{0, 3}}
	gif.EncodeAll(&b, g)
	add(b.Bytes())
	for _, s := range []bmpSpec{{hdr: 40, bpp: 24}, {hdr: 40, bpp: 8, comp: 1}, {hdr: 40, bpp: 4, comp: 2}, {hdr: 12, bpp: 8},
		{hdr: 124, bpp: 16, comp: 3, masks: [4]uint32{0xF800, 0x07E0, 0x001F, 0}}, {hdr: 40, bpp: 32, masks: [4]uint32{0xFF0000, 0xFF00, 0xFF, 0xFF000000}, alpha: 1}} {
		d, _ := buildBMP(s, src)
		add(d)
	}
	b.Reset()
	tiff.Encode(&b, src, &tiff.Options{Compression: tiff.Deflate, Predictor: true})
	add(b.Bytes())
	bmp8, _ := buildBMP(bmpSpec{hdr: 40, bpp: 8}, photo(16, 16))
	add(ico(icoDIB(bmp8, 16, 16, func(x, y int) bool { return x < y })))
	entries, _ := os.ReadDir("testdata")
	for _, e := range entries {
		if filepath.Ext(e.Name()) != ".md" {
			d, err := os.ReadFile(filepath.Join("testdata", e.Name()))
			if err != nil {
				f.Fatal(err)
			}
			add(d)
		}
	}
	return seeds
}

// FuzzDecode: any input gives a typed error or frames within the limits,
// never a panic, and quickly.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s)
		f.Add(s[:len(s)*2/3])
	}
	opt := Options{MaxPixels: 1 << 20, MaxFrames: 8}
	// Compile the WebAssembly decoders now (seconds under the fuzzer's
	// instrumentation), so the time check below sees only decoding.
	for _, c := range []*wasmCodec{heifCodec, avifCodec} {
		if m, err := c.instance(context.Background()); err == nil {
			m.Close(context.Background())
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		pic, err := Decode(bytes.NewReader(data), opt)
		if el := time.Since(start); el > 5*time.Second {
			t.Fatalf("decode took %v", el)
		}
		if err != nil {
			if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooManyPixels) {
				t.Fatalf("untyped error: %v", err)
			}
			if errors.Is(err, ErrCorrupt) && bytes.Contains([]byte(err.Error()), []byte("panic")) {
				t.Fatalf("decoder panicked: %v", err)
			}
			return
		}
		if len(pic.Frames) == 0 || len(pic.Frames) > opt.MaxFrames || len(pic.Frames) != len(pic.FrameIndex) {
			t.Fatalf("%d frames, %d indices", len(pic.Frames), len(pic.FrameIndex))
		}
		total := 0
		for _, fr := range pic.Frames {
			b := fr.Bounds()
			if b.Empty() || b.Dx()*b.Dy() > opt.MaxPixels {
				t.Fatalf("frame bounds %v", b)
			}
			total += b.Dx() * b.Dy()
		}
		if total > 4*opt.MaxPixels {
			t.Fatalf("total pixels %d", total)
		}
		if pic.Orientation < 1 || pic.Orientation > 8 || pic.Scale < 1 {
			t.Fatalf("orientation %d scale %d", pic.Orientation, pic.Scale)
		}
		if Sniff(data) != pic.Format {
			t.Fatalf("format %q but sniffed %q", pic.Format, Sniff(data))
		}
		DecodeConfig(bytes.NewReader(data))
	})
}
