// Package bypass is the bypass corpus shared by the proxy's unit tests and
// the end-to-end tests through Caddy and Dendrite: every trick found for
// getting a listed picture past mediaguard, each applied to a listed photo
// (which must be refused) and to a clean one (which must pass).
package bypass

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"

	"github.com/gen2brain/avif"
	"golang.org/x/image/bmp"

	"github.com/mediaguard/mediaguard/internal/testimg"
)

// Form turns a picture into one trick for getting it past the proxy.
type Form struct {
	// Name says what the trick is.
	Name string
	// ContentType is what the upload declares.
	ContentType string
	// Make turns a picture into this form.
	Make func(img *image.NRGBA) []byte
}

// Images is the picture half of the bypass corpus: each form is
// shown as the picture by a browser or phone. Each is tried with a listed
// photo (must be refused on upload and on download) and with a clean one
// (must pass): refusing a whole format is not a fix.
var Images = []Form{
	{"jpeg missing its last two bytes", "image/jpeg", func(img *image.NRGBA) []byte {
		b := testimg.JPEG(img, 90)
		return b[:len(b)-2]
	}},
	{"gif frame 2 behind a decoy", "image/gif", func(img *image.NRGBA) []byte {
		decoy := testimg.Photo(999, img.Bounds().Dx(), img.Bounds().Dy())
		g := &gif.GIF{Image: []*image.Paletted{paletted(decoy), paletted(img)}, Delay: []int{50, 50}}
		var b bytes.Buffer
		if err := gif.EncodeAll(&b, g); err != nil {
			panic(err) // only on a programming error: the frames are valid
		}
		return b.Bytes()
	}},
	{"pixels rotated behind EXIF orientation 6", "image/jpeg", func(img *image.NRGBA) []byte {
		return WithEXIFOrientation(testimg.JPEG(rotateCCW(img), 92), 6)
	}},
	{"black image whose alpha is the picture", "image/png", func(img *image.NRGBA) []byte {
		b := img.Bounds()
		out := image.NewNRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
				out.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 255 - g})
			}
		}
		return testimg.PNG(out)
	}},
	{"picture declared video/mp4", "video/mp4", func(img *image.NRGBA) []byte {
		return testimg.JPEG(img, 80)
	}},
	{"listed jpeg with megabytes appended", "image/jpeg", func(img *image.NRGBA) []byte {
		return append(testimg.JPEG(img, 90), bytes.Repeat([]byte{0x42}, 1<<20)...)
	}},
	{"png with broken chunk CRCs and Adler-32", "image/png", func(img *image.NRGBA) []byte {
		return breakPNGChecksums(testimg.PNG(img))
	}},
	{"png with bytes after IEND", "image/png", func(img *image.NRGBA) []byte {
		return append(testimg.PNG(img), bytes.Repeat([]byte("trailing"), 1000)...)
	}},
	{"gif with a 0x0 logical screen", "image/gif", func(img *image.NRGBA) []byte {
		g := gifOf(img)
		g[6], g[7], g[8], g[9] = 0, 0, 0, 0
		return g
	}},
	{"gif with a 1x1 logical screen", "image/gif", gif1x1Screen},
	{"gif showing the picture for 10 s among 99 brief decoy frames", "image/gif", longFrameAmongDecoys},
	{"png missing its last 3 %", "image/png", pngTruncated},
	{"palette png with PLTE after the image data", "image/png", pngPLTEAfterIDAT},
	{"jpeg without Huffman tables (Motion-JPEG)", "image/jpeg", jpegWithoutDHT},
	{"jpeg with a decoy's scan after the picture's", "image/jpeg", jpegDecoyScan},
	{"progressive jpeg requantised after its first scan", "image/jpeg", jpegRequantised},
	{"progressive jpeg requantised after its first scan, behind a junk byte", "image/jpeg", func(img *image.NRGBA) []byte { return withJunkByte(jpegRequantised(img)) }},
	{"jpeg whose components all have ID 1", "image/jpeg", jpegDuplicateComponentIDs},
	{"jpeg whose height comes in a DNL segment", "image/jpeg", jpegWithDNL},
	{"bmp with junk reserved bytes and a gap before the pixels", "image/bmp", func(img *image.NRGBA) []byte {
		var b bytes.Buffer
		if err := bmp.Encode(&b, img); err != nil {
			panic(err)
		}
		return gapBMP(b.Bytes())
	}},
	{"ico holding the png", "image/x-icon", func(img *image.NRGBA) []byte {
		return icoOf(testimg.PNG(img), img.Bounds().Dx(), img.Bounds().Dy())
	}},
	{"avif", "image/avif", func(img *image.NRGBA) []byte {
		var b bytes.Buffer
		if err := avif.Encode(&b, img, avif.Options{Quality: 80, Speed: 10}); err != nil {
			panic(err)
		}
		return b.Bytes()
	}},
	{"jpeg with Adobe marker saying YCbCr and components named R G B", "image/jpeg", func(img *image.NRGBA) []byte {
		return rgbNamedYCbCr(testimg.JPEG(img, 90))
	}},
	{"negative in a JPEG whose ICC profile inverts it back", "image/jpeg", jpegWithICC},
	{"negative in a PNG whose ICC profile inverts it back", "image/png", pngWithICC},
	{"apng whose animation is the picture behind a decoy default image", "image/png", apngBehindDecoy},
	{"png with pixels rotated behind an eXIf orientation", "image/png", pngWithEXIFOrientation},
}

// longFrameAmongDecoys is a 100-frame GIF: flat decoy frames shown for
// 20 ms each, and the picture, as frame 51, shown for 10 s. Sampling by
// frame number alone would never look at it.
func longFrameAmongDecoys(img *image.NRGBA) []byte {
	g := &gif.GIF{}
	b := img.Bounds()
	for i := range 100 {
		if i == 50 {
			g.Image = append(g.Image, paletted(img))
			g.Delay = append(g.Delay, 1000)
			continue
		}
		m := image.NewPaletted(b, palette.Plan9)
		for j := range m.Pix {
			m.Pix[j] = uint8(i * 2)
		}
		g.Image = append(g.Image, m)
		g.Delay = append(g.Delay, 2)
	}
	var out bytes.Buffer
	if err := gif.EncodeAll(&out, g); err != nil {
		panic(err)
	}
	return out.Bytes()
}

func gifOf(img image.Image) []byte {
	var b bytes.Buffer
	if err := gif.Encode(&b, paletted(img), nil); err != nil {
		panic(err)
	}
	return b.Bytes()
}

func paletted(img image.Image) *image.Paletted {
	b := img.Bounds()
	pm := image.NewPaletted(b, palette.Plan9)
	draw.FloydSteinberg.Draw(pm, b, img, b.Min)
	return pm
}

// rotateCCW turns the pixels a quarter counter-clockwise: EXIF
// orientation 6 tells the viewer to turn them back clockwise.
func rotateCCW(img *image.NRGBA) *image.NRGBA {
	b := img.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.Set(y, b.Dx()-1-x, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// WithEXIFOrientation inserts an APP1 Exif segment holding only the
// orientation tag (0x0112) after a JPEG's SOI.
func WithEXIFOrientation(jpg []byte, o uint16) []byte {
	var tiff bytes.Buffer
	tiff.WriteString("MM\x00\x2a")
	binary.Write(&tiff, binary.BigEndian, uint32(8))
	binary.Write(&tiff, binary.BigEndian, uint16(1))
	binary.Write(&tiff, binary.BigEndian, [4]uint16{0x0112, 3, 0, 1})
	binary.Write(&tiff, binary.BigEndian, [2]uint16{o, 0})
	binary.Write(&tiff, binary.BigEndian, uint32(0))
	seg := append([]byte("Exif\x00\x00"), tiff.Bytes()...)
	app1 := []byte{0xff, 0xe1, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out := append([]byte{}, jpg[:2]...)
	out = append(out, app1...)
	out = append(out, seg...)
	return append(out, jpg[2:]...)
}

// breakPNGChecksums corrupts every chunk CRC and the zlib Adler-32, which
// browsers ignore.
func breakPNGChecksums(p []byte) []byte {
	p = append([]byte(nil), p...)
	for i := 8; i+12 <= len(p); {
		n := int(binary.BigEndian.Uint32(p[i:]))
		end := i + 8 + n
		if end+4 > len(p) {
			break
		}
		if string(p[i+4:i+8]) == "IDAT" && n >= 4 {
			p[end-1] ^= 0xff // the Adler-32's last byte, if this IDAT ends the stream
		}
		p[end] ^= 0x5a
		i = end + 4
	}
	return p
}

// gapBMP sets the reserved header bytes and moves the pixels 64 bytes
// further, honouring the offset field, as browsers do.
func gapBMP(b []byte) []byte {
	off := binary.LittleEndian.Uint32(b[10:])
	out := append([]byte(nil), b[:off]...)
	out = append(out, make([]byte, 64)...)
	out = append(out, b[off:]...)
	binary.LittleEndian.PutUint32(out[2:], uint32(len(out)))
	binary.LittleEndian.PutUint32(out[6:], 0xdeadbeef)
	binary.LittleEndian.PutUint32(out[10:], off+64)
	return out
}

// icoOf wraps a PNG in a one-entry ICO directory.
func icoOf(png []byte, w, h int) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, 1, 0, 1, 0})
	dim := func(v int) byte {
		if v >= 256 {
			return 0
		}
		return byte(v)
	}
	b.Write([]byte{dim(w), dim(h), 0, 0, 1, 0, 32, 0})
	binary.Write(&b, binary.LittleEndian, uint32(len(png)))
	binary.Write(&b, binary.LittleEndian, uint32(22))
	b.Write(png)
	return b.Bytes()
}

// rgbNamedYCbCr renames a YCbCr JPEG's components 'R','G','B' and adds an
// Adobe APP14 marker whose transform says YCbCr: libjpeg-turbo (browsers)
// follows the marker, image/jpeg followed the names.
func rgbNamedYCbCr(j []byte) []byte {
	out := append([]byte(nil), j[:2]...)
	adobe := []byte{0xff, 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 1}
	out = append(out, adobe...)
	rest := append([]byte(nil), j[2:]...)
	for i := 0; i+4 < len(rest); {
		if rest[i] != 0xff {
			break
		}
		m := rest[i+1]
		n := int(rest[i+2])<<8 | int(rest[i+3])
		seg := rest[i+4 : i+2+n]
		switch {
		case m == 0xc0 || m == 0xc2:
			for c := 0; c < int(seg[5]) && c < 3; c++ {
				seg[6+3*c] = "RGB"[c]
			}
		case m == 0xc4 || m == 0xdb || (m >= 0xe0 && m <= 0xef):
		case m == 0xda:
			for c := 0; c < int(seg[0]) && c < 3; c++ {
				seg[1+2*c] = "RGB"[c]
			}
			return append(out, rest...)
		}
		i += 2 + n
	}
	return append(out, rest...)
}
