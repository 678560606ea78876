package picture

// The PNG and BMP writers these tests feed the decoder with live in
// internal/imgenc, shared with the bypass corpus; this file keeps the
// tests' short lower-case spelling of their options.

import (
	"image"

	"github.com/mediaguard/mediaguard/internal/imgenc"
)

type pngSpec struct {
	w, h       int
	ct, depth  byte
	interlace  bool
	trns       bool
	idatChunks int // split the stream into this many IDATs (default 1)
}

func (s pngSpec) spec() imgenc.PNGSpec {
	return imgenc.PNGSpec{W: s.w, H: s.h, CT: s.ct, Depth: s.depth, Interlace: s.interlace, TRNS: s.trns, IDATChunks: s.idatChunks}
}

// parts of an encoded PNG, to be reassembled in any order.
type pngParts struct {
	ihdr, plte, trns, idat, iend []byte
	z                            []byte // the zlib stream
}

func (s pngSpec) parts(src *image.NRGBA) pngParts {
	p := s.spec().Parts(src)
	return pngParts{ihdr: p.IHDR, plte: p.PLTE, trns: p.TRNS, idat: p.IDAT, iend: p.IEND, z: p.Z}
}

func (s pngSpec) rawStream(src *image.NRGBA) []byte { return s.spec().RawStream(src) }

func (p pngParts) join(order ...[]byte) []byte { return imgenc.PNGParts{}.Join(order...) }

func (p pngParts) standard() []byte { return p.join(p.ihdr, p.plte, p.trns, p.idat, p.iend) }

func pngChunk(typ string, body []byte) []byte { return imgenc.PNGChunk(typ, body) }

func ihdr(w, h int, depth, ct byte, interlace bool) []byte {
	return imgenc.IHDR(w, h, depth, ct, interlace)
}

func zlibBytes(b []byte) []byte { return imgenc.Zlib(b) }

type bmpSpec struct {
	hdr      int // DIB header size: 12 (OS/2 1.x), 40, 56, 108, 124
	bpp      int
	comp     int // 0 RGB, 1 RLE8, 2 RLE4, 3 bit fields
	masks    [4]uint32
	topDown  bool
	gap      int  // junk bytes between palette and pixels
	junk     bool // non-zero reserved bytes everywhere
	alpha    int  // 32-bit: 0 none written (zero byte), 1 real alpha
	truncate int  // drop this many bytes from the end
}

// buildBMP encodes src per spec and returns the file and the picture a
// viewer shows.
func buildBMP(s bmpSpec, src *image.NRGBA) ([]byte, *image.NRGBA) {
	return imgenc.BMP(imgenc.BMPSpec{Hdr: s.hdr, BPP: s.bpp, Comp: s.comp, Masks: s.masks, TopDown: s.topDown, Gap: s.gap, Junk: s.junk, Alpha: s.alpha, Truncate: s.truncate}, src)
}
