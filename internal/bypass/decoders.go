package bypass

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"

	"github.com/mediaguard/mediaguard/internal/imgenc"
	"github.com/mediaguard/mediaguard/internal/jpegenc"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// Decoders are the forms the decoders' own tests prove (jpegx's
// TestDecodeTable, picture's TestPNGTolerance and TestBMPVariants),
// written by the same writers (internal/jpegenc, internal/imgenc) and run
// here through the proxy and the homeserver: what a browser shows and
// Go's decoders refuse.
var Decoders = []Form{
	{"jpeg with 3x1 luma sampling", "image/jpeg", func(img *image.NRGBA) []byte {
		return oddJPEG(img, jpegenc.Components(1, 3, 1, 1, 1, 1, 1), "ycbcr", false)
	}},
	{"jpeg with 1x4 luma sampling", "image/jpeg", func(img *image.NRGBA) []byte {
		return oddJPEG(img, jpegenc.Components(1, 1, 4, 1, 1, 1, 1), "ycbcr", false)
	}},
	{"jpeg whose chroma is sampled finer than its luma", "image/jpeg", func(img *image.NRGBA) []byte {
		return oddJPEG(img, jpegenc.Components(1, 1, 1, 2, 2, 2, 2), "ycbcr", false)
	}},
	{"cmyk jpeg without an Adobe marker", "image/jpeg", func(img *image.NRGBA) []byte {
		return oddJPEG(img, jpegenc.Components(1, 1, 1, 1, 1, 1, 1, 1, 1), "cmyk", false)
	}},
	{"lossless jpeg (SOF3)", "image/jpeg", func(img *image.NRGBA) []byte {
		return oddJPEG(img, jpegenc.Components(1, 1, 1, 1, 1, 1, 1), "ycbcr", true)
	}},
	{"png with surplus rows in its image data", "image/png", pngSurplusRows},
	{"png with tRNS after the image data", "image/png", func(img *image.NRGBA) []byte {
		p := pngSpecOf(img, true).Parts(img)
		return p.Join(p.IHDR, p.IDAT, p.TRNS, p.IEND)
	}},
	{"bmp RLE8", "image/bmp", func(img *image.NRGBA) []byte {
		return bmpOf(img, imgenc.BMPSpec{Hdr: 40, BPP: 8, Comp: 1})
	}},
	{"bmp RGB565 bit fields", "image/bmp", func(img *image.NRGBA) []byte {
		return bmpOf(img, imgenc.BMPSpec{Hdr: 40, BPP: 16, Comp: 3, Masks: [4]uint32{0xF800, 0x07E0, 0x001F, 0}})
	}},
	{"bmp with an OS/2 1.x header", "image/bmp", func(img *image.NRGBA) []byte {
		return bmpOf(img, imgenc.BMPSpec{Hdr: 12, BPP: 24})
	}},
	{"cur (a cursor) holding the png", "image/x-icon", func(img *image.NRGBA) []byte {
		return curOf(testimg.PNG(img), img.Bounds().Dx(), img.Bounds().Dy())
	}},
	{"white image whose alpha is the picture (shown on black)", "image/png", func(img *image.NRGBA) []byte {
		b := img.Bounds()
		out := image.NewNRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
				out.SetNRGBA(x, y, color.NRGBA{255, 255, 255, g})
			}
		}
		return testimg.PNG(out)
	}},
}

// oddJPEG writes img with the given components, as a sequential or
// lossless JPEG, with a JFIF marker for YCbCr and no Adobe marker.
func oddJPEG(img *image.NRGBA, comps []jpegenc.Component, cs string, lossless bool) []byte {
	o := jpegenc.Options{Comps: comps, Color: cs, JFIF: cs == "ycbcr", Adobe: -1, Lossless: lossless}
	if lossless {
		o.Predictor = 1
	}
	return jpegenc.Encode(img, o)
}

func pngSpecOf(img *image.NRGBA, trns bool) imgenc.PNGSpec {
	b := img.Bounds()
	return imgenc.PNGSpec{W: b.Dx(), H: b.Dy(), CT: imgenc.PNGRGB, Depth: 8, TRNS: trns}
}

// pngSurplusRows carries 5000 bytes of rows past the image's last in its
// zlib stream, which browsers ignore.
func pngSurplusRows(img *image.NRGBA) []byte {
	s := pngSpecOf(img, false)
	p := s.Parts(img)
	surplus := imgenc.Zlib(append(s.RawStream(img), make([]byte, 5000)...))
	return p.Join(p.IHDR, imgenc.PNGChunk("IDAT", surplus), p.IEND)
}

func bmpOf(img *image.NRGBA, s imgenc.BMPSpec) []byte {
	src := img
	if img.Rect.Min != (image.Point{}) {
		src = image.NewNRGBA(image.Rect(0, 0, img.Rect.Dx(), img.Rect.Dy()))
		copy(src.Pix, img.Pix)
	}
	b, _ := imgenc.BMP(s, src)
	return b
}

// curOf is icoOf's cursor twin: resource type 2, a hotspot where an icon
// has planes and bit count.
func curOf(png []byte, w, h int) []byte {
	ico := icoOf(png, w, h)
	ico[2] = 2
	binary.LittleEndian.PutUint16(ico[6+4:], 0)  // hotspot x
	binary.LittleEndian.PutUint16(ico[6+6:], 16) // hotspot y
	return bytes.Clone(ico)
}
