package pdq

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"strings"
	"testing"
)

func TestParseHexRoundTrip(t *testing.T) {
	const s = "f8f8f0cee0f4a84f06370a22028f67f0b36e2ed596621e1d33e6b39c4e9c9b22"
	h, err := ParseHex(s)
	if err != nil {
		t.Fatal(err)
	}
	if h.String() != s {
		t.Fatalf("round trip: %s", h)
	}
	up, err := ParseHex(strings.ToUpper(s))
	if err != nil || up != h {
		t.Fatal("uppercase hex must parse to the same hash")
	}
	// Bit 0 is the least significant bit of the last hex digit.
	if !h.Bit(1) || h.Bit(0) || !h.Bit(255) {
		t.Fatal("bit numbering differs from the reference")
	}
	txt, _ := h.MarshalText()
	var back Hash
	if err := back.UnmarshalText(txt); err != nil || back != h {
		t.Fatal("text marshalling round trip failed")
	}
}

func TestParseHexErrors(t *testing.T) {
	for _, in := range []string{"", "abc", strings.Repeat("g", 64), strings.Repeat("0", 63), strings.Repeat("0", 65), "stubbed_pdq_placeholder_0123456789abcdef"} {
		if _, err := ParseHex(in); !errors.Is(err, ErrBadHex) {
			t.Errorf("ParseHex(%q) = %v, want ErrBadHex", in, err)
		}
	}
}

func TestDistance(t *testing.T) {
	a, _ := ParseHex(strings.Repeat("0", 64))
	b, _ := ParseHex(strings.Repeat("f", 64))
	c, _ := ParseHex("8" + strings.Repeat("0", 62) + "1")
	for _, tc := range []struct {
		x, y Hash
		want int
	}{{a, a, 0}, {a, b, 256}, {a, c, 2}, {b, c, 254}} {
		if got := Distance(tc.x, tc.y); got != tc.want {
			t.Errorf("Distance = %d, want %d", got, tc.want)
		}
	}
}

// TestTinyImages: the reference refuses to hash sides under 5 px and
// returns the zero hash with quality 0; so do we, dihedrals included.
func TestTinyImages(t *testing.T) {
	for _, r := range []image.Rectangle{image.Rect(0, 0, 4, 100), image.Rect(0, 0, 100, 4), image.Rect(0, 0, 1, 1)} {
		res := FromImage(image.NewGray(r), Options{Dihedral: true})
		if !res.Hash.IsZero() || res.Quality != 0 || res.Dihedral == nil || !res.Dihedral[3].IsZero() {
			t.Errorf("%v: got %v q%d", r, res.Hash, res.Quality)
		}
	}
	// 5×5 is hashable.
	img := image.NewGray(image.Rect(0, 0, 5, 5))
	for i := range img.Pix {
		img.Pix[i] = uint8(i * 10)
	}
	if res := FromImage(img, Options{}); res.Hash.IsZero() {
		t.Error("5×5 image hashed to zero")
	}
}

// TestSubImageOrigin: a non-zero bounds origin must hash like the same
// pixels at the origin (decoders may return sub-images).
func TestSubImageOrigin(t *testing.T) {
	full := syntheticPhoto(300, 200).(*image.NRGBA)
	sub := full.SubImage(image.Rect(50, 40, 250, 190)).(*image.NRGBA)
	copyImg := image.NewNRGBA(image.Rect(0, 0, 200, 150))
	for y := range 150 {
		for x := range 200 {
			copyImg.SetNRGBA(x, y, sub.NRGBAAt(x+50, y+40))
		}
	}
	if !sameResult(FromImage(sub, Options{}), FromImage(copyImg, Options{})) {
		t.Fatal("sub-image hashes differently from a copy of its pixels")
	}
	ycc := image.NewYCbCr(image.Rect(0, 0, 300, 200), image.YCbCrSubsampleRatio420)
	for i := range ycc.Y {
		ycc.Y[i] = uint8(i * 7)
	}
	for i := range ycc.Cb {
		ycc.Cb[i], ycc.Cr[i] = uint8(i*3), uint8(i*5)
	}
	subY := ycc.SubImage(image.Rect(31, 17, 281, 199))
	// The fast path must agree with the generic colour conversion.
	generic := image.NewNRGBA(subY.Bounds())
	for y := subY.Bounds().Min.Y; y < subY.Bounds().Max.Y; y++ {
		for x := subY.Bounds().Min.X; x < subY.Bounds().Max.X; x++ {
			generic.Set(x, y, subY.At(x, y))
		}
	}
	if !sameResult(FromImage(subY, Options{}), FromImage(generic, Options{})) {
		t.Fatal("YCbCr fast path disagrees with the generic conversion")
	}
}

// TestYCbCrFastPathAllRatios compares the YCbCr fast path with the generic
// path for every subsampling ratio.
func TestYCbCrFastPathAllRatios(t *testing.T) {
	for _, ratio := range []image.YCbCrSubsampleRatio{image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410} {
		m := image.NewYCbCr(image.Rect(0, 0, 97, 61), ratio)
		for i := range m.Y {
			m.Y[i] = uint8(i * 13)
		}
		for i := range m.Cb {
			m.Cb[i], m.Cr[i] = uint8(i*29), uint8(255-i*3)
		}
		g := image.NewNRGBA(m.Bounds())
		for y := range 61 {
			for x := range 97 {
				g.Set(x, y, m.At(x, y))
			}
		}
		if !sameResult(FromImage(m, Options{}), FromImage(g, Options{})) {
			t.Errorf("ratio %v: fast path differs", ratio)
		}
	}
}

// TestYCbCrToRGBMatchesRGBA: the vectors were made through RGBA()>>8; the
// fast path uses color.YCbCrToRGB. They must agree for every input.
func TestYCbCrToRGBMatchesRGBA(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("exhaustive 16M-colour check runs without -short and -race (make bench or go test ./hashing/pdq)")
	}
	for y := 0; y < 256; y++ {
		for cb := 0; cb < 256; cb++ {
			for cr := 0; cr < 256; cr++ {
				c := color.YCbCr{uint8(y), uint8(cb), uint8(cr)}
				r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
				R, G, B, _ := c.RGBA()
				if uint32(r) != R>>8 || uint32(g) != G>>8 || uint32(b) != B>>8 {
					t.Fatalf("%v: YCbCrToRGB %d,%d,%d vs RGBA %d,%d,%d", c, r, g, b, R>>8, G>>8, B>>8)
				}
			}
		}
	}
}

// TestAlphaDroppedNotComposited: a transparent pixel's colour counts.
func TestAlphaDroppedNotComposited(t *testing.T) {
	a := syntheticPhoto(64, 64).(*image.NRGBA)
	b := image.NewNRGBA(a.Bounds())
	copy(b.Pix, a.Pix)
	for i := 3; i < len(b.Pix); i += 4 {
		b.Pix[i] = uint8(i)
	}
	if !sameResult(FromImage(a, Options{}), FromImage(b, Options{})) {
		t.Fatal("alpha changed the hash")
	}
}

func encode(t testing.TB, img image.Image, format string) []byte {
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, img)
	case "jpeg":
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90})
	case "gif":
		err = gif.Encode(&buf, img, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestDecodeFormats(t *testing.T) {
	img := syntheticPhoto(120, 80)
	for _, f := range []string{"png", "jpeg", "gif"} {
		res, format, err := HashBytes(encode(t, img, f), DecodeOptions{}, Options{})
		if err != nil || format != f || res.Hash.IsZero() {
			t.Errorf("%s: format %q err %v", f, format, err)
		}
	}
}

// pngHeader builds a PNG whose IHDR declares w×h, followed by no pixel data:
// a decompression bomb's header costs a few dozen bytes.
func pngHeader(w, h uint32) []byte {
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], w)
	binary.BigEndian.PutUint32(ihdr[4:], h)
	ihdr[8], ihdr[9] = 8, 2 // 8-bit RGB
	chunk := append([]byte("IHDR"), ihdr...)
	binary.Write(&b, binary.BigEndian, uint32(13))
	b.Write(chunk)
	binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

func TestDecodeErrors(t *testing.T) {
	good := encode(t, syntheticPhoto(120, 80), "jpeg")
	for _, tc := range []struct {
		name string
		data []byte
		opt  DecodeOptions
		want error
	}{
		{"empty", nil, DecodeOptions{}, ErrNotImage},
		{"text", []byte("this is not an image at all"), DecodeOptions{}, ErrNotImage},
		{"encrypted attachment", bytes.Repeat([]byte{0x8f, 0x13, 0xa2}, 1000), DecodeOptions{}, ErrNotImage},
		{"bomb header", pngHeader(100000, 100000), DecodeOptions{}, ErrTooManyPixels},
		{"over custom limit", good, DecodeOptions{MaxPixels: 120*80 - 1}, ErrTooManyPixels},
		{"truncated jpeg", good[:len(good)/2], DecodeOptions{}, ErrCorrupt},
		{"header only png", pngHeader(100, 100), DecodeOptions{}, ErrCorrupt},
		{"truncated header", good[:20], DecodeOptions{}, ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := HashBytes(tc.data, tc.opt, Options{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	if _, _, err := HashBytes(good, DecodeOptions{MaxPixels: 120 * 80}, Options{}); err != nil {
		t.Fatalf("exactly at the limit must pass: %v", err)
	}
}

// sameResult compares what FromImage computes: hash, quality, variants.
func sameResult(a, b Result) bool {
	if a.Hash != b.Hash || a.Quality != b.Quality || (a.Dihedral == nil) != (b.Dihedral == nil) {
		return false
	}
	return a.Dihedral == nil || *a.Dihedral == *b.Dihedral
}
