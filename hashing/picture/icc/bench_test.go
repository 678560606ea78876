package icc

import (
	"image"
	"image/color"
	"math/rand"
	"runtime"
	"testing"

	"github.com/mediaguard/mediaguard/internal/benchcpu"
)

func benchProfile(b *testing.B, name string) *Profile {
	for _, tc := range convCases() {
		if tc.name == name {
			p, err := Parse(tc.profile)
			if err != nil {
				b.Fatal(err)
			}
			return p
		}
	}
	b.Fatalf("no case %q", name)
	return nil
}

// BenchmarkToSRGB converts a 1600×1000 picture; ns/pixel is the figure to
// compare with decoding and hashing.
func BenchmarkToSRGB(b *testing.B) {
	const w, h = 1600, 1000
	// Photo-like content, as the interpolation's branches see in practice,
	// and noise, the worst case for them.
	nrgba := opaque(photo(w, h))
	ycc := image.NewYCbCr(nrgba.Rect, image.YCbCrSubsampleRatio420)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			px := nrgba.Pix[nrgba.PixOffset(x, y):]
			yy, cb, cr := color.RGBToYCbCr(px[0], px[1], px[2])
			ycc.Y[ycc.YOffset(x, y)] = yy
			ycc.Cb[ycc.COffset(x, y)], ycc.Cr[ycc.COffset(x, y)] = cb, cr
		}
	}
	rng := rand.New(rand.NewSource(1))
	noise := image.NewYCbCr(nrgba.Rect, image.YCbCrSubsampleRatio420)
	for _, p := range [][]uint8{noise.Y, noise.Cb, noise.Cr} {
		rng.Read(p)
	}
	cmyk := cmykOf(nrgba)
	gray := grayOf(nrgba)
	matrix := "INVERTING curv, 4096 entries, v2"
	lut := "INVERTING mAB, PCS Lab, 16-bit CLUT"
	for _, bc := range []struct {
		name, profile string
		img           image.Image
	}{
		{"YCbCr420/matrix", matrix, ycc},
		{"NRGBA/matrix", matrix, nrgba},
		{"YCbCr420-noise/matrix", matrix, noise},
		{"YCbCr420-noise/LUT", lut, noise},
		{"YCbCr420/LUT", lut, ycc},
		{"NRGBA/LUT", lut, nrgba},
		{"CMYK/LUT", "CMYK mAB, PCS Lab", cmyk},
		{"Gray/gray", "INVERTING gray kTRC", gray},
	} {
		b.Run(bc.name, func(b *testing.B) {
			p := benchProfile(b, bc.profile)
			p.ToSRGB(bc.img) // tables
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			cpu := benchcpu.Thread()
			for i := 0; i < b.N; i++ {
				p.ToSRGB(bc.img)
			}
			cpu = benchcpu.Thread() - cpu
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(w*h), "ns/pixel")
			if cpu > 0 {
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N)/(w*h), "cpu-ns/pixel")
			}
		})
	}
}

// BenchmarkParseAndBuild is the cost per image of a profile seen for the
// first time: parsing and building its tables.
func BenchmarkParseAndBuild(b *testing.B) {
	for _, name := range []string{"INVERTING curv, 4096 entries, v2", "INVERTING mAB, PCS Lab, 16-bit CLUT", "CMYK mAB, PCS Lab"} {
		var data []byte
		for _, tc := range convCases() {
			if tc.name == name {
				data = tc.profile
			}
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				p, err := Parse(data)
				if err != nil {
					b.Fatal(err)
				}
				p.transform()
			}
		})
	}
}
