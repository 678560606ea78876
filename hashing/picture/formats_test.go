package picture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/image/tiff"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// animFrame is frame i of the test animations (see testdata/README.md).
func animFrame(i int) *image.NRGBA {
	m := photo(64, 48)
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			o := m.PixOffset(x, y)
			switch i {
			case 1:
				if x < 32 {
					m.Pix[o], m.Pix[o+1], m.Pix[o+2] = 255-m.Pix[o], 255-m.Pix[o+1], 255-m.Pix[o+2]
				}
			case 2:
				if y >= 24 {
					m.Pix[o], m.Pix[o+1], m.Pix[o+2] = 0, 0, 0
				}
			case 3:
				if x >= 40 && y < 16 {
					m.Pix[o+3] = 0
				}
			}
		}
	}
	return m
}

func TestWebP(t *testing.T) {
	src := photo(64, 48)
	for _, name := range []string{"still_lossy.webp", "still_lossless.webp", "still_alpha.webp"} {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, name)
			pic := decodeBytes1(t, data, Options{})
			if pic.Format != "webp" || len(pic.Frames) != 1 {
				t.Fatalf("format %q, %d frames", pic.Format, len(pic.Frames))
			}
			f := pic.Frames[0]
			if name == "still_alpha.webp" {
				if a := at(f, 0, 10).A; a < 45 || a > 65 {
					t.Fatalf("alpha at the left edge %d, want ~55", a)
				}
				f = opaqueCopy(f)
			}
			assertLooksLike(t, f, src, 4)
			if _, w, h, err := DecodeConfig(bytes.NewReader(data)); err != nil || w != 64 || h != 48 {
				t.Fatalf("DecodeConfig %dx%d %v", w, h, err)
			}
		})
	}
	t.Run("RIFF size wrong and trailing bytes", func(t *testing.T) {
		data := append(readTestdata(t, "still_lossy.webp"), "trailing junk"...)
		binary.LittleEndian.PutUint32(data[4:], 12345678)
		assertLooksLike(t, decodeBytes1(t, data, Options{}).Frames[0], src, 4)
	})
	t.Run("EXIF orientation", func(t *testing.T) {
		data := readTestdata(t, "still_alpha.webp") // has VP8X
		data[20] |= 0x08                            // EXIF flag
		exif := tiffWithOrientation(true, 3)
		data = append(data, "EXIF"...)
		data = binary.LittleEndian.AppendUint32(data, uint32(len(exif)))
		data = append(data, exif...)
		binary.LittleEndian.PutUint32(data[4:], uint32(len(data)-8))
		if pic := decodeBytes1(t, data, Options{}); pic.Orientation != 3 {
			t.Fatalf("orientation %d", pic.Orientation)
		}
	})
}

// opaqueCopy drops alpha so a luma comparison sees colours only.
func opaqueCopy(img image.Image) *image.NRGBA {
	m := cloneNRGBA(toNRGBA(img))
	for i := 3; i < len(m.Pix); i += 4 {
		m.Pix[i] = 255
	}
	return m
}

func TestAnimatedWebP(t *testing.T) {
	data := readTestdata(t, "anim.webp")
	pic := decodeBytes1(t, data, Options{})
	if len(pic.Frames) != 4 || pic.Truncated {
		t.Fatalf("%d frames, truncated %v", len(pic.Frames), pic.Truncated)
	}
	for i, f := range pic.Frames {
		if pic.FrameIndex[i] != i {
			t.Fatalf("FrameIndex %v", pic.FrameIndex)
		}
		// Frame 1 covers only the left half: the right half must still be
		// frame 0's, which the comparison checks.
		assertLooksLike(t, opaqueCopy(f), opaqueCopy(animFrame(i)), 5)
	}
	// Frame 3 is drawn without blending: its transparent corner replaces
	// what was there.
	if a := at(pic.Frames[3], 50, 5).A; a != 0 {
		t.Fatalf("frame 3 corner alpha %d, want 0", a)
	}
	if a := at(pic.Frames[2], 50, 5).A; a != 255 {
		t.Fatalf("frame 2 corner alpha %d, want 255", a)
	}
	pic = decodeBytes1(t, data, Options{MaxFrames: 2})
	if len(pic.Frames) != 2 || pic.FrameIndex[1] != 3 {
		t.Fatalf("sampled %v", pic.FrameIndex)
	}
	// No reduced-scale WebP decoder: refused beyond 4×MaxPixels.
	mustErr(t, data, Options{MaxPixels: 500}, ErrTooManyPixels)
}

// rotate applies EXIF orientation o to img (for comparisons only).
func orient(img image.Image, o int) *image.NRGBA {
	src := toNRGBA(img)
	b := src.Rect
	w, h := b.Dx(), b.Dy()
	dw, dh := w, h
	if o >= 5 {
		dw, dh = h, w
	}
	m := exifMatrix[o]
	dst := image.NewNRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			// Centre-relative transform, then back to the top-left origin.
			cx, cy := 2*x-(w-1), 2*y-(h-1)
			tx, ty := m[0]*cx+m[1]*cy, m[2]*cx+m[3]*cy
			dx, dy := (tx+dw-1)/2, (ty+dh-1)/2
			dst.SetNRGBA(dx, dy, src.NRGBAAt(b.Min.X+x, b.Min.Y+y))
		}
	}
	return dst
}

func TestAVIF(t *testing.T) {
	src := photo(64, 48)
	for name, wantOrient := range map[string]int{"still.avif": 1, "irot1.avif": 8, "irot3_imir1.avif": 5, "imir0.avif": 4} {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, name)
			pic := decodeBytes1(t, data, Options{})
			if pic.Format != "avif" || pic.Orientation != wantOrient {
				t.Fatalf("format %q orientation %d, want %d", pic.Format, pic.Orientation, wantOrient)
			}
			// libavif leaves the transformation to us: the frame is as
			// stored, and applying Orientation gives what viewers show
			// (the stored image is the photo pre-transformed by avifenc?
			// no: avifenc stores the photo and asks viewers to rotate).
			assertLooksLike(t, pic.Frames[0], src, 5)
			shown := orient(pic.Frames[0], pic.Orientation)
			if wantOrient >= 5 && shown.Rect.Dx() != 48 {
				t.Fatalf("shown %v", shown.Rect)
			}
			if _, w, h, err := DecodeConfig(bytes.NewReader(data)); err != nil || w != 64 || h != 48 {
				t.Fatalf("DecodeConfig %dx%d %v", w, h, err)
			}
		})
	}
	t.Run("alpha", func(t *testing.T) {
		pic := decodeBytes1(t, readTestdata(t, "alpha.avif"), Options{})
		if a := at(pic.Frames[0], 1, 10).A; a < 45 || a > 65 {
			t.Fatalf("alpha %d", a)
		}
	})
	t.Run("sequence", func(t *testing.T) {
		pic := decodeBytes1(t, readTestdata(t, "anim.avif"), Options{})
		if len(pic.Frames) != 3 {
			t.Fatalf("%d frames", len(pic.Frames))
		}
		for i, f := range pic.Frames {
			assertLooksLike(t, f, animFrame(i), 6)
		}
	})
	t.Run("too many pixels", func(t *testing.T) {
		mustErr(t, readTestdata(t, "still.avif"), Options{MaxPixels: 500}, ErrTooManyPixels)
	})
	t.Run("pixels exact enough", func(t *testing.T) {
		for name, size := range map[string][2]int{"still.avif": {64, 48}, "p130x66.avif": {130, 66}} {
			pic := decodeBytes1(t, readTestdata(t, name), Options{})
			if d := meanChannelDiff(t, pic.Frames[0], photo(size[0], size[1])); d > 6 {
				t.Fatalf("%s: mean channel difference %.1f", name, d)
			}
			if g := at(pic.Frames[0], 1, 0); abs(int(g.R)-20) > 20 {
				t.Fatalf("%s: top-left pixel %v", name, g)
			}
		}
	})
	t.Run("sequence frame budget", func(t *testing.T) {
		// Three 64x48 frames do not fit 4000 pixels in all: the first only.
		pic := decodeBytes1(t, readTestdata(t, "anim.avif"), Options{MaxPixels: 3100, MaxTotalPixels: 4000})
		if len(pic.Frames) != 1 || !pic.Truncated {
			t.Fatalf("%d frames truncated %v", len(pic.Frames), pic.Truncated)
		}
	})
}

// meanChannelDiff is the mean absolute difference over all RGB channels
// of all pixels (alpha ignored): a chroma or alignment error shows here
// where a luma grid may not see it.
func meanChannelDiff(t *testing.T, got, want image.Image) float64 {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds %v, want %v", got.Bounds(), want.Bounds())
	}
	b := got.Bounds()
	sum := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			g, w := at(got, x, y), at(want, x, y)
			sum += abs(int(g.R)-int(w.R)) + abs(int(g.G)-int(w.G)) + abs(int(g.B)-int(w.B))
		}
	}
	return float64(sum) / float64(3*b.Dx()*b.Dy())
}

func TestHEIC(t *testing.T) {
	for name, size := range map[string][2]int{"still.heic": {64, 48}, "p130x66.heic": {130, 66}, "p200x20.heic": {200, 20}} {
		t.Run(name, func(t *testing.T) {
			data := readTestdata(t, name)
			pic := decodeBytes1(t, data, Options{})
			if pic.Format != "heic" || pic.Orientation != 1 {
				t.Fatalf("format %q orientation %d", pic.Format, pic.Orientation)
			}
			want := photo(size[0], size[1])
			if d := meanChannelDiff(t, pic.Frames[0], want); d > 6 {
				t.Fatalf("mean channel difference %.1f", d)
			}
			// The top-left pixels (once overwritten by the allocator).
			if g := at(pic.Frames[0], 1, 0); abs(int(g.R)-20) > 20 || abs(int(g.B)-20) > 20 {
				t.Fatalf("top-left pixel %v, want about 20,20,20", g)
			}
			if _, w, h, err := DecodeConfig(bytes.NewReader(data)); err != nil || w != size[0] || h != size[1] {
				t.Fatalf("DecodeConfig %dx%d %v", w, h, err)
			}
			mustErr(t, data, Options{MaxPixels: 500}, ErrTooManyPixels)
			mustErr(t, data[:len(data)/2], Options{}, ErrCorrupt)
		})
	}
}

func TestJXLIsRecognisedButNotDecoded(t *testing.T) {
	data := readTestdata(t, "photo.jxl")
	if Sniff(data) != "jxl" {
		t.Fatalf("sniff %q", Sniff(data))
	}
	_, err := Decode(bytes.NewReader(data), Options{})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("error %v", err)
	}
	box := []byte("\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00\x00\x14ftypjxl ")
	if Sniff(box) != "jxl" {
		t.Fatal("ISO box form not recognised")
	}
}

// withAPP1 inserts an EXIF APP1 segment after SOI.
func withAPP1(j, exif []byte) []byte {
	seg := append([]byte("Exif\x00\x00"), exif...)
	out := append([]byte{0xFF, 0xD8, 0xFF, 0xE1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}, seg...)
	return append(out, j[2:]...)
}

func TestJPEG(t *testing.T) {
	src := photo(64, 48)
	var b bytes.Buffer
	jpeg.Encode(&b, src, &jpeg.Options{Quality: 90})
	plain := b.Bytes()
	for o := 1; o <= 8; o++ {
		for _, be := range []bool{false, true} {
			pic := decodeBytes1(t, withAPP1(plain, tiffWithOrientation(be, o)), Options{})
			if pic.Orientation != o || pic.Format != "jpeg" {
				t.Fatalf("orientation %d want %d", pic.Orientation, o)
			}
			assertLooksLike(t, pic.Frames[0], src, 3)
		}
	}
	saved := jpegFallback
	jpegFallback = nil
	t.Run("too large, no fallback", func(t *testing.T) {
		mustErr(t, plain, Options{MaxPixels: 1000}, ErrTooManyPixels)
	})
	t.Run("truncated, no fallback", func(t *testing.T) {
		mustErr(t, plain[:len(plain)/2], Options{}, ErrCorrupt)
	})
	jpegFallback = saved
	t.Run("fallback hook", func(t *testing.T) {
		var gotMax int
		jpegFallback = func(r io.Reader, maxPixels int) (image.Image, int, bool, error) {
			gotMax = maxPixels
			return image.NewGray(image.Rect(0, 0, 32, 24)), 2, true, nil
		}
		defer func() { jpegFallback = saved }()
		pic := decodeBytes1(t, plain, Options{MaxPixels: 1000})
		if gotMax != 1000 || pic.Scale != 2 || !pic.Truncated {
			t.Fatalf("max %d scale %d truncated %v", gotMax, pic.Scale, pic.Truncated)
		}
		pic = decodeBytes1(t, plain[:len(plain)/2], Options{})
		if pic.Scale != 2 {
			t.Fatal("fallback not used for a broken JPEG")
		}
	})
}

func TestTIFF(t *testing.T) {
	src := photo(64, 48)
	var b bytes.Buffer
	if err := tiff.Encode(&b, src, nil); err != nil {
		t.Fatal(err)
	}
	pic := decodeBytes1(t, b.Bytes(), Options{})
	if pic.Format != "tiff" || pic.Orientation != 1 {
		t.Fatalf("format %q orientation %d", pic.Format, pic.Orientation)
	}
	samePixels(t, pic.Frames[0], src)
	// No reduced-scale TIFF decoder: decoded in full up to the frame
	// budget (4×MaxPixels), refused beyond it.
	decodeBytes1(t, b.Bytes(), Options{MaxPixels: 1000})
	mustErr(t, b.Bytes(), Options{MaxPixels: 700}, ErrTooManyPixels)
}

func TestSniff(t *testing.T) {
	cases := map[string]string{
		"\xff\xd8\xff\xe0":             "jpeg",
		"\x89PNG\r\n\x1a\n":            "png",
		"GIF89a":                       "gif",
		"GIF87a":                       "gif",
		"RIFF\x00\x00\x00\x00WEBPVP8 ": "webp",
		"RIFF\x00\x00\x00\x00AVI LIST": "",
		"BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x28\x00\x00\x00": "bmp",
		"BM\x00\x00\x00\x00\x00\x00\x00\x00\x36\x00\x00\x00\x29\x00\x00\x00": "",
		"II*\x00": "tiff",
		"MM\x00*": "tiff",
		"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00":         "ico",
		"\x00\x00\x02\x00\x01\x00\x10\x10\x00\x00":         "ico",
		"\x00\x00\x01\x00\x00\x00":                         "",
		"\xff\x0a":                                         "jxl",
		"\x00\x00\x00\x18ftypavif\x00\x00\x00\x00mif1miaf": "avif",
		"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif": "avif",
		"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic": "heic",
		"\x00\x00\x00\x14ftypmp42\x00\x00\x00\x00isom":     "",
		"%PDF-1.7": "",
		"":         "",
	}
	for in, want := range cases {
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%q) = %q, want %q", in, got, want)
		}
	}
	mustErr(t, []byte("just some text, no picture"), Options{}, ErrNotImage)
	mustErr(t, nil, Options{}, ErrNotImage)
	if _, _, _, err := DecodeConfig(bytes.NewReader([]byte("ciphertext\x00\x01"))); !errors.Is(err, ErrNotImage) {
		t.Fatalf("DecodeConfig: %v", err)
	}
}

// TestDecodeConfigLeavesPosition: r is back where it started, for every
// format.
func TestDecodeConfigLeavesPosition(t *testing.T) {
	var pb bytes.Buffer
	bmp, _ := buildBMP(bmpSpec{hdr: 40, bpp: 24}, photo(7, 5))
	gifData, _ := testGIF(t, false)
	var jb bytes.Buffer
	jpeg.Encode(&jb, photo(7, 5), nil)
	_ = pb
	for _, data := range [][]byte{bmp, gifData, jb.Bytes(), readTestdata(t, "still.heic"), readTestdata(t, "anim.webp"), readTestdata(t, "still.avif")} {
		r := bytes.NewReader(append([]byte("prefix"), data...))
		r.Seek(6, io.SeekStart)
		format, w, h, err := DecodeConfig(r)
		if err != nil || w <= 0 || h <= 0 {
			t.Fatalf("%s: %dx%d %v", format, w, h, err)
		}
		if pos, _ := r.Seek(0, io.SeekCurrent); pos != 6 {
			t.Fatalf("%s: position %d", format, pos)
		}
	}
}
