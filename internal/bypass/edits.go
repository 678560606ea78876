package bypass

import (
	"image"

	"github.com/mediaguard/mediaguard/internal/edits"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// Edits are the cheap edits that beat the hash of the
// picture as displayed, each undone by a variant of the default search
// (pdq_search default): a listed picture edited so must be refused, a
// clean one edited alike must pass.
var Edits = []Form{
	{"white border 10%", "image/jpeg", jpegOf(func(img *image.NRGBA) image.Image { return edits.Border(img, 0.10, edits.White) })},
	{"black border 25%", "image/jpeg", jpegOf(func(img *image.NRGBA) image.Image { return edits.Border(img, 0.25, edits.Black) })},
	{"white border 50%", "image/png", pngOf(func(img *image.NRGBA) image.Image { return edits.Border(img, 0.50, edits.White) })},
	{"letterboxed to a square", "image/jpeg", jpegOf(func(img *image.NRGBA) image.Image { return edits.Letterbox(img) })},
	{"half size on a blank canvas", "image/png", pngOf(func(img *image.NRGBA) image.Image {
		return edits.OnCanvas(img, edits.White, nil, 0.8, 0.1)
	})},
	{"caption bars above and below (a meme)", "image/jpeg", jpegOf(func(img *image.NRGBA) image.Image {
		return edits.Caption(img, "NOBODY WILL", "NOTICE THIS")
	})},
	{"two halves with a gap", "image/png", pngOf(func(img *image.NRGBA) image.Image { return edits.Gap(img, 0.1) })},
	{"one quarter of a 2x2 collage", "image/jpeg", jpegOf(func(img *image.NRGBA) image.Image {
		b := img.Bounds()
		w, h := 2*b.Dx(), 2*b.Dy()
		return edits.Collage([4]image.Image{testimg.Photo(901, w, h), img, testimg.Photo(902, w, h), testimg.Photo(903, w, h)}, w, h, 8)
	})},
	{"2x2 tiling", "image/png", pngOf(func(img *image.NRGBA) image.Image {
		b := img.Bounds()
		return edits.Tile(edits.Scale(img, 2*b.Dx(), 2*b.Dy()))
	})},
	{"colour negative", "image/jpeg", jpegOf(func(img *image.NRGBA) image.Image { return edits.Negative(img) })},
	{"contrast squeezed to 44-56%", "image/png", pngOf(func(img *image.NRGBA) image.Image { return edits.Squeeze(img, 0.44, 0.56) })},
}

// DeepEdits are undone only by the deep search (pdq_search deep).
var DeepEdits = []Form{
	{"half size on a busy canvas", "image/png", pngOf(func(img *image.NRGBA) image.Image {
		b := img.Bounds()
		return edits.OnCanvas(img, nil, testimg.Photo(904, b.Dx(), b.Dy()), 0.35, 0.75)
	})},
	// No row or column of the frame is uniform, so trimming and peeling
	// do not see it; the paste search finds the picture's straight edges.
	{"framed by a colour gradient", "image/jpeg", jpegOf(func(img *image.NRGBA) image.Image { return edits.GradientFrame(img, 0.15) })},
	{"rotated 3° with white corners", "image/png", pngOf(func(img *image.NRGBA) image.Image { return edits.Rotate(img, 3, edits.White) })},
	{"rotated 10° with white corners", "image/png", pngOf(func(img *image.NRGBA) image.Image { return edits.Rotate(img, -10, edits.White) })},
}

func jpegOf(edit func(*image.NRGBA) image.Image) func(*image.NRGBA) []byte {
	return func(img *image.NRGBA) []byte { return testimg.JPEG(edit(img), 92) }
}

func pngOf(edit func(*image.NRGBA) image.Image) func(*image.NRGBA) []byte {
	return func(img *image.NRGBA) []byte { return testimg.PNG(edit(img)) }
}
