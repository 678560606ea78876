package jpegx

// The JPEG writer these tests feed the decoder with lives in
// internal/jpegenc, shared with the bypass corpus; this file keeps the
// tests' short lower-case spelling of its options.

import (
	"image"

	"github.com/mediaguard/mediaguard/internal/jpegenc"
)

type encComp struct {
	id   byte
	h, v int
	tq   int
}

type encScan struct {
	comps          []int
	ss, se, ah, al int
}

type encOpts struct {
	comps       []encComp
	color       string // "ycbcr", "gray", "rgb", "cmyk", "ycck"
	progressive bool
	scans       []encScan // nil: one interleaved sequential scan / a libjpeg-like script
	restart     int
	jfif        bool
	adobe       int // -1: no APP14
	stdTables   bool
	omitDHT     bool
	arith       bool // arithmetic coding (SOF9/SOF10)
	precision   int  // 12 for 12-bit samples; 0 means 8
	lossless    bool // SOF3, predictor and point transform below
	predictor   int
	pt          int
	dac         bool // emit a DAC with these conditioning values
	dacL, dacU  int
	dacK        int
}

func encodeJPEG(img *image.RGBA, o encOpts) []byte {
	e := jpegenc.Options{Color: o.color, Progressive: o.progressive, Restart: o.restart, JFIF: o.jfif, Adobe: o.adobe,
		StdTables: o.stdTables, OmitDHT: o.omitDHT, Arith: o.arith, Precision: o.precision, Lossless: o.lossless,
		Predictor: o.predictor, PT: o.pt, DAC: o.dac, DACL: o.dacL, DACU: o.dacU, DACK: o.dacK}
	for _, c := range o.comps {
		e.Comps = append(e.Comps, jpegenc.Component{ID: c.id, H: c.h, V: c.v, TQ: c.tq})
	}
	for _, s := range o.scans {
		e.Scans = append(e.Scans, jpegenc.Scan{Comps: s.comps, Ss: s.ss, Se: s.se, Ah: s.ah, Al: s.al})
	}
	return jpegenc.Encode(img, e)
}

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
