// Package testimg makes deterministic test pictures for tests across the
// repository: seeded discs on a gradient, which have PDQ quality 100 and
// stay within a few bits under re-encoding and resizing, like a photo.
package testimg

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math"
	"math/rand/v2"
	"slices"
)

// Photo returns a w×h picture determined by seed.
func Photo(seed, w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	type disc struct {
		cx, cy, r float64
		c         color.NRGBA
	}
	rng := uint32(seed*7919 + 1)
	next := func() float64 { rng = rng*1664525 + 1013904223; return float64(rng>>8) / (1 << 24) }
	var discs []disc
	for range 14 {
		discs = append(discs, disc{next() * float64(w), next() * float64(h), (0.05 + 0.2*next()) * float64(min(w, h)),
			color.NRGBA{uint8(next() * 255), uint8(next() * 255), uint8(next() * 255), 255}})
	}
	for y := range h {
		for x := range w {
			c := color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255}
			for _, d := range discs {
				if math.Hypot(float64(x)-d.cx, float64(y)-d.cy) < d.r {
					c = d.c
				}
			}
			img.SetNRGBA(x, y, c)
		}
	}
	return img
}

// Noisy copies img with sensor-like noise of ±amp per channel, from
// seed: every copy has its own bytes (and a slightly different PDQ hash)
// and compresses like a photo; where a channel is near 0 or 255 the
// decoded colours leave the RGB cube, as a camera's often do.
func Noisy(img *image.NRGBA, seed uint64, amp int) *image.NRGBA {
	out := &image.NRGBA{Pix: slices.Clone(img.Pix), Stride: img.Stride, Rect: img.Rect}
	rng := rand.New(rand.NewPCG(seed, 0x6d676c6f6164))
	span := uint64(2*amp + 1)
	for i := 0; i+3 < len(out.Pix); i += 4 {
		r := rng.Uint64()
		for c := range 3 {
			v := int(out.Pix[i+c]) + int((r>>(16*c))%span) - amp
			out.Pix[i+c] = uint8(min(255, max(0, v)))
		}
	}
	return out
}

// Resize scales by nearest neighbour.
func Resize(src image.Image, w, h int) *image.NRGBA {
	b := src.Bounds()
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			dst.Set(x, y, src.At(b.Min.X+x*b.Dx()/w, b.Min.Y+y*b.Dy()/h))
		}
	}
	return dst
}

// PNG encodes img as PNG.
func PNG(img image.Image) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, img)
	return buf.Bytes()
}

// JPEG encodes img as JPEG at quality q.
func JPEG(img image.Image, q int) []byte {
	var buf bytes.Buffer
	jpeg.Encode(&buf, img, &jpeg.Options{Quality: q})
	return buf.Bytes()
}
