package jpegx

import (
	"bytes"
	"image/jpeg"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mediaguard/mediaguard/internal/benchcpu"
	"github.com/mediaguard/mediaguard/internal/jpegenc"
	"github.com/mediaguard/mediaguard/internal/sharedref"
)

var benchFiles = sync.OnceValue(func() map[string][]byte {
	pic := synthPicture(1600, 1000, 7)
	return map[string][]byte{
		"synthetic-baseline":    goJPEG(pic, 85),
		"synthetic-progressive": encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, Progressive: true}),
	}
})

func benchDecode(b *testing.B, data []byte) {
	ow, oh, _, err := DecodeConfig(data)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range []int{1, 2, 4, 8} {
		mp := ((ow + s - 1) / s) * ((oh + s - 1) / s)
		name := map[int]string{1: "jpegx-full", 2: "jpegx-1/2", 4: "jpegx-1/4", 8: "jpegx-1/8"}[s]
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			benchcpu.Loop(b, func() {
				r, err := DecodeBytes(data, mp)
				if err != nil || r.Scale != s {
					b.Fatal(err, r.Scale)
				}
			})
		})
	}
	b.Run("image-jpeg", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		benchcpu.Loop(b, func() {
			if _, err := jpeg.Decode(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// BenchmarkDecode compares full and DCT-scaled decodes with image/jpeg on
// a ~1600x1000 photo.
func BenchmarkDecode(b *testing.B) {
	b.Run("shared-aaa-orig", func(b *testing.B) {
		data, err := os.ReadFile(filepath.Join(sharedref.PDQVectors(b), "bridge-mods", "aaa-orig.jpg"))
		if err != nil {
			b.Skipf("SKIPPING the real-photo benchmark: %v", err)
		}
		benchDecode(b, data)
	})
	for _, name := range []string{"synthetic-baseline", "synthetic-progressive"} {
		b.Run(name, func(b *testing.B) { benchDecode(b, benchFiles()[name]) })
	}
}
