package mediaproxy

import (
	"image"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// fakeSynapse is the shared fake Synapse (internal/fakes.Synapse): an
// httptest upstream that mimics Synapse's media repository where Dendrite
// cannot be used; internal/fakes says what each answer follows.
type fakeSynapse = fakes.Synapse

var newFakeSynapse = fakes.NewSynapse

func halve(img image.Image) image.Image {
	b := img.Bounds()
	return testimg.Resize(img, b.Dx()/2, b.Dy()/2)
}

func encodePNG(img image.Image) []byte { return testimg.PNG(img) }
