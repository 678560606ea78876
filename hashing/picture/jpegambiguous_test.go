package picture

import (
	"errors"
	"image"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/picture/jpegx"
	"github.com/mediaguard/mediaguard/internal/jpegenc"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// A block whose DC is ordinary but whose AC terms swing its samples far
// past 0..255 (a checkerboard between 1100 and −850) is as ambiguous as
// a bright flat one, and a picture too big to decode at full scale must
// not hide it: a reduced scale keeps the low frequencies only (found in
// review). Sequential and progressive, at full and reduced scale.
func TestAmbiguousJPEGAnyScale(t *testing.T) {
	src := testimg.Photo(4, 256, 192)
	img := image.NewRGBA(src.Rect)
	copy(img.Pix, src.Pix)
	for _, c := range []struct {
		progressive bool
		adobe       int // 0: routed to the tolerant decoder by its Adobe marker
	}{{false, -1}, {true, -1}, {false, 0}} {
		progressive := c.progressive
		data := jpegenc.Encode(img, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", JFIF: c.adobe < 0, Adobe: c.adobe, Progressive: progressive,
			EditPlanes: func(p [][]float64, w, h int) {
				for y := 64; y < 72; y++ {
					for x := 64; x < 72; x++ {
						p[0][y*w+x] = 1100
						if (x+y)%2 == 1 {
							p[0][y*w+x] = -850
						}
					}
				}
			}})
		for _, maxPixels := range []int{0, 256 * 192 / 4} {
			if progressive && maxPixels != 0 {
				continue // left: a progressive file's skipped AC scans are not read at a reduced scale
			}
			_, err := DecodeBytes(data, Options{MaxPixels: maxPixels})
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, jpegx.ErrAmbiguous) {
				t.Errorf("progressive %v, Adobe %d, max pixels %d: %v, want ErrCorrupt and jpegx.ErrAmbiguous", progressive, c.adobe, maxPixels, err)
			}
		}
	}
}
