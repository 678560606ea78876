package icc

import (
	"image"
	"math/rand"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse and, when they parse, converts
// small images of every input type; the extraction helpers see the same
// bytes. Nothing may panic, and conversions keep the image's bounds.
func FuzzParse(f *testing.F) {
	for _, tc := range convCases() {
		f.Add(tc.profile)
	}
	prof := invertingProfile()
	f.Add(withSegments([]byte{0xFF, 0xD8, 0xFF, 0xD9}, app2(1, 1, prof)))
	f.Add(cat([]byte("\x89PNG\r\n\x1a\n"), pngChunk("iCCP", iccp("p", 0, prof), false)))
	f.Add(webp("VP8X", []byte{0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "ICCP", prof))

	rng := rand.New(rand.NewSource(1))
	r := image.Rect(1, 2, 6, 5)
	nrgba := image.NewNRGBA(r)
	rng.Read(nrgba.Pix)
	rgba := image.NewRGBA(r)
	rng.Read(rgba.Pix)
	ycc := image.NewYCbCr(r, image.YCbCrSubsampleRatio420)
	rng.Read(ycc.Y)
	nya := image.NewNYCbCrA(r, image.YCbCrSubsampleRatio422)
	rng.Read(nya.A)
	gray := image.NewGray(r)
	rng.Read(gray.Pix)
	cmyk := image.NewCMYK(r)
	rng.Read(cmyk.Pix)
	g16 := image.NewGray16(r)
	neutral := image.NewNRGBA(r)
	imgs := []image.Image{nrgba, rgba, ycc, nya, gray, cmyk, g16, neutral, image.NewPaletted(r, nil), image.NewNRGBA(image.Rectangle{})}

	f.Fuzz(func(t *testing.T, b []byte) {
		FromJPEG(b)
		FromPNG(b)
		FromWebP(b)
		p, err := Parse(b)
		if err != nil {
			return
		}
		_ = p.String()
		p.IsIdentity()
		for _, img := range imgs {
			if out := p.ToSRGB(img); out.Bounds() != img.Bounds() {
				t.Fatalf("%T: bounds %v, want %v", img, out.Bounds(), img.Bounds())
			}
		}
	})
}
