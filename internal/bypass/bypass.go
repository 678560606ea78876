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
		return withEXIFOrientation(testimg.JPEG(rotateCCW(img), 92), 6)
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

// withEXIFOrientation inserts an APP1 Exif segment holding only the
// orientation tag (0x0112) after a JPEG's SOI.
func withEXIFOrientation(jpg []byte, o uint16) []byte {
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
