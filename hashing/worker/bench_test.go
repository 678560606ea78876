package worker

import (
	"bytes"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/gen2brain/avif"
	"golang.org/x/image/bmp"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// encodeWith runs one of Debian's encoders on a PNG of img, or returns
// nil where it is not installed.
func encodeWith(b *testing.B, img image.Image, name string, args func(in, out string) []string) []byte {
	if _, err := exec.LookPath(name); err != nil {
		return nil
	}
	dir := b.TempDir()
	in, out := filepath.Join(dir, "in.png"), filepath.Join(dir, "out")
	os.WriteFile(in, testimg.PNG(img), 0o600)
	if o, err := exec.Command(name, args(in, out)...).CombinedOutput(); err != nil {
		b.Fatalf("%s: %v %s", name, err, o)
	}
	data, _ := os.ReadFile(out)
	return data
}

// BenchmarkHashFormats: bytes to PDQ for one 1600×1000 photo in each
// format. "reference" is the Go-standard-decoder path the proxy used
// before it judged displayed forms (pdq.HashBytes), "viewed" what it does
// now (hashing/picture, every form); their ratio is the cost of judging
// what a viewer sees. Formats image/* cannot read have no reference.
func BenchmarkHashFormats(b *testing.B) {
	photo := testimg.Photo(5, 1600, 1000)
	var pngb, bmpb, gifb, anim, avifb bytes.Buffer
	png.Encode(&pngb, photo)
	bmp.Encode(&bmpb, photo)
	pal := func(img image.Image) *image.Paletted {
		pm := image.NewPaletted(img.Bounds(), palette.Plan9)
		draw.Draw(pm, img.Bounds(), img, image.Point{}, draw.Src)
		return pm
	}
	gif.Encode(&gifb, pal(photo), nil)
	var frames []*image.Paletted
	for i := range 8 {
		frames = append(frames, pal(testimg.Photo(10+i, 1600, 1000)))
	}
	gif.EncodeAll(&anim, &gif.GIF{Image: frames, Delay: make([]int, 8)})
	avif.Encode(&avifb, photo, avif.Options{Quality: 80, Speed: 10})
	cases := []struct {
		name      string
		data      []byte
		reference bool
	}{
		{"jpeg", testimg.JPEG(photo, 90), true},
		{"png", pngb.Bytes(), true},
		{"bmp", bmpb.Bytes(), true},
		{"gif", gifb.Bytes(), true},
		{"gif-8-frames", anim.Bytes(), true},
		{"webp", encodeWith(b, photo, "cwebp", func(in, out string) []string { return []string{"-quiet", "-q", "90", in, "-o", out} }), true},
		{"avif", avifb.Bytes(), false},
		{"heic", encodeWith(b, photo, "heif-enc", func(in, out string) []string { return []string{"-q", "90", in, "-o", out} }), false},
		{"jxl", encodeWith(b, photo, "cjxl", func(in, out string) []string { return []string{in, out, "-q", "90", "--quiet"} }), false},
		{"jpeg-arithmetic", encodeJPEGArith(b, photo), false},
	}
	for _, c := range cases {
		if c.data == nil {
			b.Logf("SKIPPED %s: encoder not installed", c.name)
			continue
		}
		if c.reference {
			b.Run(c.name+"/reference", func(b *testing.B) {
				b.SetBytes(int64(len(c.data)))
				for b.Loop() {
					if _, _, err := pdq.HashBytes(c.data, pdq.DecodeOptions{}, pdq.Options{Workers: 1}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		b.Run(c.name+"/viewed", func(b *testing.B) {
			b.SetBytes(int64(len(c.data)))
			for b.Loop() {
				if _, _, err := HashViewed(bytes.NewReader(c.data), pdq.DecodeOptions{Viewed: true}, pdq.Options{Workers: 1}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func encodeJPEGArith(b *testing.B, img *image.NRGBA) []byte {
	if _, err := exec.LookPath("cjpeg"); err != nil {
		return nil
	}
	dir := b.TempDir()
	in, out := filepath.Join(dir, "in.bmp"), filepath.Join(dir, "out.jpg")
	var bb bytes.Buffer
	bmp.Encode(&bb, img)
	os.WriteFile(in, bb.Bytes(), 0o600)
	if o, err := exec.Command("cjpeg", "-arithmetic", "-quality", "90", "-outfile", out, in).CombinedOutput(); err != nil {
		b.Fatalf("cjpeg: %v %s", err, o)
	}
	data, _ := os.ReadFile(out)
	return data
}
