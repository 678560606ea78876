package worker

import (
	"image"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/benchcpu"
	"github.com/mediaguard/mediaguard/internal/jpegenc"
	"github.com/mediaguard/mediaguard/internal/sharedref"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// BenchmarkJPEG is bytes to every PDQ form of a JPEG, the proxy's
// default path (DCT blocks, "blocks") against decoding the pixels
// ("exact", pdq_exact), with the default variant search off and on. The
// bridge is the PDQ vectors' 1600×1004 photo, the phone photo their
// 4032×3024 one with EXIF orientation 6 (so a displayed form too).
func BenchmarkJPEG(b *testing.B) {
	cases := []struct {
		name string
		data []byte
	}{
		{"synthetic-1600x1000", testimg.JPEG(testimg.Photo(5, 1600, 1000), 90)},
		// bench/mgload's photos: noise over saturated colours, which
		// the decoder clamps in most blocks.
		{"noisy-1600x1200", testimg.JPEG(testimg.Noisy(testimg.Photo(1600*7+1200*13, 1600, 1200), 1, 24), 92)},
		// The block path's worst cases: 4:4:4 (a chroma pair per luma
		// block) with red past the RGB cube everywhere, noisy (every
		// block corrected sample by sample) and flat (through the DC).
		{"clipped-noisy-444-1600x1200", saturated444(1600, 1200, true)},
		{"clipped-flat-444-1600x1200", saturated444(1600, 1200, false)},
	}
	dir := sharedref.PDQVectors(b)
	for _, f := range []struct{ name, path string }{
		{"bridge-1600x1004", "bridge-mods/aaa-orig.jpg"},
		{"phone-4032x3024-rot6", "reg-test-input/exif-rotn/exif-rotn-6.jpg"},
	} {
		data, err := os.ReadFile(filepath.Join(dir, f.path))
		if err != nil {
			b.Logf("SKIPPED %s: %v", f.name, err)
			continue
		}
		cases = append(cases, struct {
			name string
			data []byte
		}{f.name, data})
	}
	for _, c := range cases {
		for _, s := range []pdq.Search{pdq.SearchOff, pdq.SearchDefault} {
			for _, exact := range []bool{true, false} {
				mode := "blocks"
				if exact {
					mode = "exact"
				}
				b.Run(c.name+"/search="+s.String()+"/"+mode, func(b *testing.B) {
					b.SetBytes(int64(len(c.data)))
					b.ReportAllocs()
					benchcpu.Loop(b, func() {
						if _, _, err := HashViewedBytes(c.data, pdq.DecodeOptions{Viewed: true, Exact: exact}, pdq.Options{Workers: 1, Search: s}); err != nil {
							b.Fatal(err)
						}
					})
				})
			}
		}
	}
}

// saturated444 is a w×h 4:4:4 JPEG whose Cr is past the RGB cube for
// every pixel, with noise in every channel or none.
func saturated444(w, h int, noisy bool) []byte {
	src := testimg.Photo(3, w, h)
	img := image.NewRGBA(src.Bounds())
	copy(img.Pix, src.Pix)
	rng := rand.New(rand.NewPCG(1, 2))
	return jpegenc.Encode(img, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1,
		EditPlanes: func(p [][]float64, w, h int) {
			for i := range p[0] {
				if noisy {
					p[0][i], p[1][i], p[2][i] = 140+p[0][i]*0.3+rng.Float64()*25, rng.Float64()*40, 215+rng.Float64()*40
				} else {
					p[0][i], p[1][i], p[2][i] = 150, 128, 255
				}
			}
		}})
}
