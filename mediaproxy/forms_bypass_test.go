package mediaproxy

import (
	"bytes"
	"encoding/binary"
	"image"
	"image/color"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"testing"
)

// bypassForm turns a picture into one trick for getting it past the proxy.
type bypassForm struct {
	name string
	make func(t *testing.T, img *image.NRGBA) []byte
}

// imageBypassForms is the picture half of the bypass corpus: each form is
// shown as the picture by a browser or phone. Each is tried with a listed
// photo (must be refused on upload and on download) and with a clean one
// (must pass): refusing a whole format is not a fix.
var imageBypassForms = []bypassForm{
	{"jpeg missing its last two bytes", func(t *testing.T, img *image.NRGBA) []byte {
		b := jpegBytes(img, 90)
		return b[:len(b)-2]
	}},
	{"gif frame 2 behind a decoy", func(t *testing.T, img *image.NRGBA) []byte {
		decoy := testPhoto(999, img.Bounds().Dx(), img.Bounds().Dy())
		g := &gif.GIF{Image: []*image.Paletted{paletted(decoy), paletted(img)}, Delay: []int{50, 50}}
		var b bytes.Buffer
		if err := gif.EncodeAll(&b, g); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}},
	{"pixels rotated behind EXIF orientation 6", func(t *testing.T, img *image.NRGBA) []byte {
		return withEXIFOrientation(jpegBytes(rotateCCW(img), 92), 6)
	}},
	{"black image whose alpha is the picture", func(t *testing.T, img *image.NRGBA) []byte {
		b := img.Bounds()
		out := image.NewNRGBA(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				g := color.GrayModel.Convert(img.At(x, y)).(color.Gray).Y
				out.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 255 - g})
			}
		}
		return encodePNG(out)
	}},
	{"picture declared video/mp4 (content type only)", func(t *testing.T, img *image.NRGBA) []byte {
		return jpegBytes(img, 80)
	}},
	{"listed jpeg with megabytes appended", func(t *testing.T, img *image.NRGBA) []byte {
		return append(jpegBytes(img, 90), bytes.Repeat([]byte{0x42}, 1<<20)...)
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

func TestImageBypassCorpus(t *testing.T) {
	listedImg := testPhoto(80, 240, 180)
	cleanImg := testPhoto(81, 240, 180)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listedImg)).String()}, func(c *Config) { c.MaxDownloadBuffer = 512 << 10 })
	for i, f := range imageBypassForms {
		t.Run(f.name, func(t *testing.T) {
			ct := "image/jpeg"
			if bytes.Contains([]byte(f.name), []byte("video/mp4")) {
				ct = "video/mp4"
			}
			listed, clean := f.make(t, listedImg), f.make(t, cleanImg)
			before := e.up.uploads.Load()
			if resp, code := e.upload(t, ct, listed); resp.StatusCode != 403 || code != "M_FORBIDDEN" {
				t.Fatalf("listed upload: %d %s (%s)", resp.StatusCode, code, e.obs.last().Outcome)
			}
			if e.up.uploads.Load() != before {
				t.Fatal("a listed upload reached the homeserver")
			}
			if d := e.obs.last(); len(d.Verdict.Evidence) > 0 {
				t.Logf("matched %s form %q at distance %d", d.Verdict.HashType, d.Verdict.Evidence[0].Form, d.Verdict.Distance)
			}
			if resp, _ := e.upload(t, ct, clean); resp.StatusCode != 200 {
				t.Fatalf("clean twin upload: %d (%s: %s)", resp.StatusCode, e.obs.last().Outcome, e.obs.last().UnscannableReason)
			}
			bad, good := "fb"+string(rune('a'+i)), "fg"+string(rune('a'+i))
			e.up.put(bad, listed, ct)
			e.up.put(good, clean, ct)
			if resp, _ := e.do(t, "GET", "/_matrix/client/v1/media/download/hs.example/"+bad, "", nil); resp.StatusCode != 404 {
				t.Fatalf("listed download: %d", resp.StatusCode)
			}
			if resp, body := e.do(t, "GET", "/_matrix/client/v1/media/download/hs.example/"+good, "", nil); resp.StatusCode != 200 || !bytes.Equal(body, clean) {
				t.Fatalf("clean twin download: %d", resp.StatusCode)
			}
		})
	}
}
