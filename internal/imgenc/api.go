package imgenc

import "image"

// PNG colour types (the IHDR colour type byte).
const (
	PNGGray      = pngGray
	PNGRGB       = pngRGB
	PNGPalette   = pngPalette
	PNGGrayAlpha = pngGrayAlpha
	PNGRGBA      = pngRGBA
)

// PNGSpec says what PNG to write: size, colour type, bit depth,
// interlacing, a tRNS chunk, and into how many IDAT chunks the stream is
// split. Samples come from the source picture: colour types without
// colour take its luma, alpha is a ramp across it.
type PNGSpec struct {
	W, H       int
	CT, Depth  byte
	Interlace  bool
	TRNS       bool
	IDATChunks int
}

func (s PNGSpec) spec() pngSpec {
	return pngSpec{w: s.W, h: s.H, ct: s.CT, depth: s.Depth, interlace: s.Interlace, trns: s.TRNS, idatChunks: s.IDATChunks}
}

// PNGParts are the chunks of a PNG, to be joined in any order.
type PNGParts struct {
	IHDR, PLTE, TRNS, IDAT, IEND []byte
	// Z is the zlib stream the IDAT chunks carry.
	Z []byte
}

// Parts encodes src per s.
func (s PNGSpec) Parts(src *image.NRGBA) PNGParts {
	p := s.spec().parts(src)
	return PNGParts{IHDR: p.ihdr, PLTE: p.plte, TRNS: p.trns, IDAT: p.idat, IEND: p.iend, Z: p.z}
}

// RawStream returns the filtered scanlines (every pass) of src per s,
// before compression.
func (s PNGSpec) RawStream(src *image.NRGBA) []byte { return s.spec().rawStream(src) }

// Join writes the PNG signature and the chunks in the order given.
func (p PNGParts) Join(order ...[]byte) []byte { return pngParts{}.join(order...) }

// Standard joins the chunks in the usual order.
func (p PNGParts) Standard() []byte { return p.Join(p.IHDR, p.PLTE, p.TRNS, p.IDAT, p.IEND) }

// PNGChunk is one chunk with its length and CRC.
func PNGChunk(typ string, body []byte) []byte { return pngChunk(typ, body) }

// IHDR is an IHDR chunk.
func IHDR(w, h int, depth, ct byte, interlace bool) []byte { return ihdr(w, h, depth, ct, interlace) }

// Zlib compresses b as a zlib stream.
func Zlib(b []byte) []byte { return zlibBytes(b) }

// BMPSpec says what BMP to write.
type BMPSpec struct {
	// Hdr is the DIB header's size: 12 (OS/2 1.x), 40, 56, 108, 124.
	Hdr int
	BPP int
	// Comp is the compression: 0 RGB, 1 RLE8, 2 RLE4, 3 bit fields.
	Comp int
	// Masks are the R, G, B, A bit fields (16 and 32 bits a pixel).
	Masks   [4]uint32
	TopDown bool
	// Gap is junk bytes between the palette and the pixels; Junk sets the
	// reserved bytes (header, palette, row padding) non-zero.
	Gap  int
	Junk bool
	// Alpha, for 32 bits a pixel: 0 writes a zero alpha byte, 1 the
	// picture's alpha.
	Alpha int
	// Truncate drops this many bytes from the end.
	Truncate int
}

// BMP encodes src per s and returns the file and the picture a viewer
// shows (palette depths quantise the picture's luma onto a colour ramp).
func BMP(s BMPSpec, src *image.NRGBA) ([]byte, *image.NRGBA) {
	return buildBMP(bmpSpec{hdr: s.Hdr, bpp: s.BPP, comp: s.Comp, masks: s.Masks, topDown: s.TopDown, gap: s.Gap, junk: s.Junk, alpha: s.Alpha, truncate: s.Truncate}, src)
}
