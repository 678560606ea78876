package picture

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"math"
	"testing"
)

// photo is a deterministic test picture with structure at several scales
// (gradients, a disc, stripes), so that a wrong row order, a swapped
// channel or a shifted frame shows in a coarse luma comparison.
func photo(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			r := 255 * fx
			g := 255 * fy
			b := 128 + 100*math.Sin(6*fx+3*fy)
			dx, dy := fx-0.35, fy-0.6
			if dx*dx+dy*dy < 0.04 {
				r, g, b = 250, 240, 30
			}
			if (x/max(1, w/8))%2 == 0 && fy < 0.2 {
				r, g, b = 20, 20, 20
			}
			m.SetNRGBA(x, y, color.NRGBA{uint8(r), uint8(g), uint8(b), 255})
		}
	}
	return m
}

// lumaGrid averages luma over an n×n grid, pixels composited over black.
func lumaGrid(img image.Image, n int) []float64 {
	b := img.Bounds()
	out := make([]float64, n*n)
	cnt := make([]float64, n*n)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			l := (0.299*float64(r) + 0.587*float64(g) + 0.114*float64(bb)) / 257
			i := ((y-b.Min.Y)*n/b.Dy())*n + (x-b.Min.X)*n/b.Dx()
			out[i] += l
			cnt[i]++
		}
	}
	for i := range out {
		if cnt[i] > 0 {
			out[i] /= cnt[i]
		}
	}
	return out
}

// assertLooksLike fails unless got's coarse luma is within tol (0..255 per
// cell, as a mean absolute difference) of want's.
func assertLooksLike(t *testing.T, got, want image.Image, tol float64) {
	t.Helper()
	if got == nil {
		t.Fatal("no image")
	}
	gb, wb := got.Bounds(), want.Bounds()
	if gb.Dx()*wb.Dy() != gb.Dy()*wb.Dx() && (abs(gb.Dx()*wb.Dy()-gb.Dy()*wb.Dx()) > gb.Dx()*wb.Dy()/20) {
		t.Fatalf("aspect differs: got %v want %v", gb, wb)
	}
	g, w := lumaGrid(got, 8), lumaGrid(want, 8)
	d := 0.0
	for i := range g {
		d += math.Abs(g[i] - w[i])
	}
	d /= float64(len(g))
	if d > tol {
		t.Fatalf("picture differs: mean luma difference %.1f > %.1f\n got %v\nwant %v", d, tol, fmtGrid(g), fmtGrid(w))
	}
}

func fmtGrid(g []float64) []int {
	out := make([]int, len(g))
	for i, v := range g {
		out[i] = int(v)
	}
	return out
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// samePixels fails unless a and b have the same bounds and colours
// (compared as 16-bit RGBA).
func samePixels(t *testing.T, got, want image.Image) {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds: got %v want %v", got.Bounds(), want.Bounds())
	}
	b := got.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r1, g1, b1, a1 := got.At(x, y).RGBA()
			r2, g2, b2, a2 := want.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				t.Fatalf("pixel (%d,%d): got %v want %v", x, y, got.At(x, y), want.At(x, y))
			}
		}
	}
}

func decodeBytes1(t *testing.T, data []byte, opt Options) *Picture {
	t.Helper()
	pic, err := Decode(bytes.NewReader(data), opt)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(pic.Frames) == 0 || len(pic.Frames) != len(pic.FrameIndex) {
		t.Fatalf("bad frames: %d frames, %d indices", len(pic.Frames), len(pic.FrameIndex))
	}
	return pic
}

func mustErr(t *testing.T, data []byte, opt Options, want error) {
	t.Helper()
	_, err := Decode(bytes.NewReader(data), opt)
	if !errors.Is(err, want) {
		t.Fatalf("Decode error %v, want %v", err, want)
	}
}

// at returns the NRGBA colour of img at (x, y).
func at(img image.Image, x, y int) color.NRGBA {
	return color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
