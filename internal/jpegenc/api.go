package jpegenc

import (
	"image"
	"image/draw"
)

// Component is one frame component: its ID, sampling factors and
// quantisation table (0 luma-like, 1 chroma-like).
type Component struct {
	ID   byte
	H, V int
	TQ   int
}

// Scan is one scan of a progressive (or multi-scan sequential) file: the
// indexes of its components in Options.Comps, spectral selection and
// successive approximation.
type Scan struct {
	Comps          []int
	Ss, Se, Ah, Al int
}

// Options say what kind of JPEG Encode writes.
type Options struct {
	// Comps are the frame's components; Components builds the usual ones.
	Comps []Component
	// Color is what the components hold: "ycbcr", "gray", "rgb",
	// "cmyk" or "ycck".
	Color string
	// Progressive writes SOF2 (SOF10 with Arith); Scans is its script,
	// nil for a libjpeg-like one (or one interleaved sequential scan).
	Progressive bool
	Scans       []Scan
	// Restart is the restart interval in MCUs, 0 for none.
	Restart int
	// JFIF writes an APP0 JFIF marker; Adobe an APP14 Adobe marker with
	// this transform (-1: none).
	JFIF  bool
	Adobe int
	// StdTables codes with T.81 Annex K's tables; OmitDHT leaves them out
	// of the file (Motion-JPEG).
	StdTables, OmitDHT bool
	// Arith codes arithmetically (SOF9/SOF10), with a DAC segment of
	// these conditioning values when DAC is set.
	Arith            bool
	DAC              bool
	DACL, DACU, DACK int
	// Precision is 12 for 12-bit samples; 0 means 8.
	Precision int
	// Lossless writes SOF3 with this predictor and point transform.
	Lossless  bool
	Predictor int
	PT        int
	// EditPlanes, when set, edits the full-resolution component planes
	// (sample values, 0..255 for 8-bit) before they are coded: to write
	// what a decoder then clamps, samples past white or colours past
	// the RGB cube.
	EditPlanes func(planes [][]float64, w, h int)
}

// Components returns len(hv)/2 components with IDs from id0, the i-th
// sampled hv[2i]×hv[2i+1], table 0 for the first and 1 for the others.
func Components(id0 byte, hv ...int) []Component {
	cs := make([]Component, len(hv)/2)
	for i := range cs {
		cs[i] = Component{ID: id0 + byte(i), H: hv[2*i], V: hv[2*i+1], TQ: min(i, 1)}
	}
	return cs
}

// Encode writes img as a JPEG of the kind o describes.
func Encode(img image.Image, o Options) []byte {
	rgba, ok := img.(*image.RGBA)
	if !ok || rgba.Rect.Min != (image.Point{}) {
		b := img.Bounds()
		rgba = image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	}
	return encodeJPEG(rgba, o)
}

// Picture is a photo-like test picture: gradients, soft discs, texture
// and a little noise, so DCT blocks have real AC content.
func Picture(w, h int, seed int64) *image.RGBA { return synthPicture(w, h, seed) }

// Clamp rounds v to a sample, as the writer does.
func Clamp(v float64) uint8 { return clampF(v) }

// Planes converts img into the full-resolution component planes the
// writer codes for colour space cs.
func Planes(img *image.RGBA, cs string) [][]float64 { return planesFor(img, cs) }

// UnzigRef is the zig-zag order written out from T.81 Figure A.6.
var UnzigRef = unzigRef

// StdTable returns the DHT payload (code counts by length, values) of T.81
// Annex K's table of class (0 DC, 1 AC) and id (0 luma, 1 chroma).
func StdTable(class, id int) (counts [16]byte, vals []byte) {
	t := stdEnc[class][id]
	return t.counts, t.vals
}
