package pdq

import (
	"image"
	"image/color"
	"testing"

	"github.com/mediaguard/mediaguard/internal/testimg"
)

// orientImage applies EXIF orientation o to img's pixels, as a viewer
// displays it (EXIF 2.32, tag 0x0112).
func orientImage(img image.Image, o int) *image.NRGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	ow, oh := w, h
	if o >= 5 {
		ow, oh = h, w
	}
	out := image.NewNRGBA(image.Rect(0, 0, ow, oh))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			var dx, dy int
			switch o {
			case 1:
				dx, dy = x, y
			case 2: // mirrored horizontally
				dx, dy = w-1-x, y
			case 3: // rotated 180
				dx, dy = w-1-x, h-1-y
			case 4: // mirrored vertically
				dx, dy = x, h-1-y
			case 5: // transposed
				dx, dy = y, x
			case 6: // rotate 90 clockwise to display
				dx, dy = h-1-y, x
			case 7: // transversed
				dx, dy = h-1-y, w-1-x
			case 8: // rotate 90 counter-clockwise to display
				dx, dy = y, w-1-x
			}
			out.Set(dx, dy, img.At(b.Min.X+x, b.Min.Y+y))
		}
	}
	return out
}

// The "displayed" form of a picture stored with EXIF orientation o is
// the hash of its pixels re-oriented as a viewer shows them.
func TestDisplayedOrientation(t *testing.T) {
	for _, size := range [][2]int{{96, 64}, {240, 180}, {61, 117}} {
		testDisplayedOrientation(t, testimg.Photo(3, size[0], size[1]))
	}
}

func testDisplayedOrientation(t *testing.T, photo image.Image) {
	for o := 2; o <= 8; o++ {
		want := FromImage(orientImage(photo, o), Options{}).Hash
		res := HashViewed(Viewed{Frames: []image.Image{photo}, Orientation: o}, Options{})
		if res.Hash != FromImage(photo, Options{}).Hash {
			t.Fatalf("orientation %d changed the stored hash", o)
		}
		var got *Form
		for i := range res.Forms {
			if res.Forms[i].Name == "displayed" {
				got = &res.Forms[i]
			}
		}
		if got == nil {
			t.Fatalf("orientation %d: no displayed form in %+v", o, res.Forms)
		}
		if d := Distance(got.Hash, want); d != 0 {
			t.Errorf("%v orientation %d: displayed form is %d bits from the re-oriented picture", photo.Bounds().Size(), o, d)
		}
	}
}

// Transparency is composited on white and on black: a black picture whose
// alpha carries the photo is the photo on a white page.
func TestAlphaComposites(t *testing.T) {
	photo := testimg.Photo(4, 80, 80)
	b := photo.Bounds()
	hidden := image.NewNRGBA(b)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			c := color.GrayModel.Convert(photo.At(x, y)).(color.Gray)
			hidden.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 255 - c.Y})
		}
	}
	grey := image.NewGray(b)
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			grey.Set(x, y, photo.At(x, y))
		}
	}
	want := FromImage(grey, Options{}).Hash
	res := HashViewed(Viewed{Frames: []image.Image{hidden}}, Options{})
	best := 256
	var name string
	for _, f := range res.Forms {
		if d := Distance(f.Hash, want); d < best {
			best, name = d, f.Name
		}
	}
	if best > 16 || name != "on white" {
		t.Fatalf("closest form %q at distance %d", name, best)
	}
	// An opaque picture has no composite forms.
	if res := HashViewed(Viewed{Frames: []image.Image{photo}}, Options{}); len(res.Forms) != 0 {
		t.Fatalf("opaque picture got forms %+v", res.Forms)
	}
}

// Every frame is a form, named by its number in the animation.
func TestFramesAreForms(t *testing.T) {
	a, b := testimg.Photo(5, 64, 64), testimg.Photo(6, 64, 64)
	res := HashViewed(Viewed{Frames: []image.Image{a, b}, FrameIndex: []int{0, 4}}, Options{})
	if res.Hash != FromImage(a, Options{}).Hash || len(res.Forms) != 1 || res.Forms[0].Name != "frame 5" || res.Forms[0].Hash != FromImage(b, Options{}).Hash {
		t.Fatalf("%+v", res)
	}
}
