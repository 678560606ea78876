package jpegx

// The JPEG writer these tests feed the decoder with lives in
// internal/jpegenc, shared with the bypass corpus; this file names what
// the tests use of it.

import (
	"image"

	"github.com/mediaguard/mediaguard/internal/jpegenc"
)

// encodeJPEG writes img as a JPEG of the kind o describes.
func encodeJPEG(img *image.RGBA, o jpegenc.Options) []byte { return jpegenc.Encode(img, o) }

func synthPicture(w, h int, seed int64) *image.RGBA { return jpegenc.Picture(w, h, seed) }

func clampF(v float64) uint8 { return jpegenc.Clamp(v) }

func planesFor(img *image.RGBA, cs string) [][]float64 { return jpegenc.Planes(img, cs) }

var unzigRef = jpegenc.UnzigRef

// stdEnc holds the writer's copies of T.81 Annex K's tables, to check the
// decoder's own.
var stdEnc = func() (t [2][2]struct {
	counts [16]byte
	vals   []byte
}) {
	for cl := range 2 {
		for id := range 2 {
			t[cl][id].counts, t[cl][id].vals = jpegenc.StdTable(cl, id)
		}
	}
	return t
}()
