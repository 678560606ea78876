package jpegx

import (
	"errors"
	"fmt"
	"image"
	"image/color"
	"math"
	"testing"

	"github.com/mediaguard/mediaguard/internal/jpegenc"
)

// idctBlock is the textbook 8×8 inverse DCT (T.81 A.3.3) of one block,
// level shift included.
func idctBlock(f []float32) (out [64]float64) {
	c := func(u int) float64 {
		if u == 0 {
			return 1 / math.Sqrt2
		}
		return 1
	}
	for y := range 8 {
		for x := range 8 {
			var s float64
			for v := range 8 {
				for u := range 8 {
					s += c(u) * c(v) / 4 * float64(f[v*8+u]) *
						math.Cos(float64((2*x+1)*u)*math.Pi/16) * math.Cos(float64((2*y+1)*v)*math.Pi/16)
				}
			}
			out[y*8+x] = s + 128
		}
	}
	return out
}

// The blocks LumaBlocks hands over are the luma the full decode shows:
// transformed back, every pixel within rounding of the decoded picture's
// luma, clamped blocks included, for each layout it takes.
func TestLumaBlocksAreTheLuma(t *testing.T) {
	pic := synthPicture(203, 77, 9)
	type layout struct {
		name string
		o    jpegenc.Options
	}
	cases := []layout{
		{"baseline 4:2:0", jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1}},
		{"progressive 4:2:0", jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, Progressive: true}},
		{"4:2:2 with restarts", jpegenc.Options{Comps: jpegenc.Components(1, 2, 1, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, Restart: 3}},
		{"4:4:4 arithmetic", jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, Arith: true}},
		{"grey", jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", JFIF: true, Adobe: -1}},
		{"grey progressive", jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", JFIF: true, Adobe: -1, Progressive: true}},
		// Every block corrected: red past the RGB cube everywhere.
		{"colours clipping everywhere", jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1,
			EditPlanes: func(p [][]float64, w, h int) {
				for i := range p[2] {
					p[2][i] = 255
				}
			}}},
		{"non-interleaved scans", jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1,
			Scans: []jpegenc.Scan{{Comps: []int{1}, Se: 63}, {Comps: []int{0}, Se: 63}, {Comps: []int{2}, Se: 63}}}},
	}
	// Clipping where the chroma varies across a block, in every
	// sampling layout: which chroma sample each pixel takes matters
	// there (a constant chroma would hide a wrong one).
	for _, l := range []struct {
		name string
		hv   []int
	}{
		{"4:4:4", []int{1, 1, 1, 1, 1, 1}}, {"4:2:2", []int{2, 1, 1, 1, 1, 1}}, {"4:2:0", []int{2, 2, 1, 1, 1, 1}},
		{"4:4:0", []int{1, 2, 1, 1, 1, 1}}, {"4:1:1", []int{4, 1, 1, 1, 1, 1}}, {"4:1:0", []int{4, 2, 1, 1, 1, 1}},
		{"4x4 luma", []int{4, 4, 1, 1, 1, 1}}, {"3x1", []int{3, 1, 1, 1, 1, 1}}, {"1x3", []int{1, 3, 1, 1, 1, 1}},
		{"3x3", []int{3, 3, 1, 1, 1, 1}}, {"4x2 with 2x1 chroma", []int{4, 2, 2, 1, 2, 1}},
	} {
		o := jpegenc.Options{Comps: jpegenc.Components(1, l.hv...), Color: "ycbcr", JFIF: true, Adobe: -1, EditPlanes: clipStripes}
		cases = append(cases, layout{"stripes clipping, " + l.name, o})
		o.Progressive = true
		cases = append(cases, layout{"stripes clipping, progressive " + l.name, o})
	}
	for _, order := range [][]int{{1, 0, 2}, {1, 2, 0}, {2, 0, 1}} {
		// Go's image/jpeg shows a scan in any order (libjpeg-turbo
		// refuses one not in frame order); the luma must still be
		// judged with its own rows' chroma.
		cases = append(cases, layout{fmt.Sprintf("stripes clipping, scan order %v", order), jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1),
			Color: "ycbcr", JFIF: true, Adobe: -1, EditPlanes: clipStripes, Scans: []jpegenc.Scan{{Comps: order, Se: 63}}}})
	}
	// Past white and black, within what every decoder clamps alike
	// (further is ErrAmbiguous: TestAmbiguousSamples).
	for _, y := range []float64{600, -350} {
		cases = append(cases, layout{fmt.Sprintf("grey coded at %v in stripes", y), jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", JFIF: true, Adobe: -1,
			EditPlanes: func(p [][]float64, w, h int) {
				for i := range p[0] {
					if (i%w/6+i/w/5)%2 == 0 {
						p[0][i] = y
					}
				}
			}}})
	}
	// Flat areas past the cube and past white: blocks without AC terms,
	// corrected through their DC alone.
	flat := func(p [][]float64, w, h int) {
		for i := range p[0] {
			switch x := i % w; {
			case len(p) == 1:
				if x < w/2 {
					p[0][i] = 600
				}
			case x < w/3:
				p[0][i], p[2][i] = 250, 255
			case x < 2*w/3:
				p[0][i], p[1][i], p[2][i] = 600, 128, 128
			}
		}
	}
	cases = append(cases,
		layout{"flat areas clipping, 4:4:4", jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, EditPlanes: flat}},
		layout{"flat areas clipping, 4:2:0", jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, EditPlanes: flat}},
		layout{"flat areas clipping, grey", jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", JFIF: true, Adobe: -1, EditPlanes: flat}})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			data := encodeJPEG(pic, c.o)
			full, err := DecodeBytes(data, 0)
			if err != nil {
				t.Fatal(err)
			}
			// What a viewer sees, as luma: Y, or the BT.601 luma of
			// the RGB a decoder converts YCbCr to (clamped).
			lumaAt := func(x, y int) float64 {
				switch m := full.Image.(type) {
				case *image.YCbCr:
					c := m.YCbCrAt(x, y)
					r, g, b := color.YCbCrToRGB(c.Y, c.Cb, c.Cr)
					return 0.299*float64(r) + 0.587*float64(g) + 0.114*float64(b)
				case *image.Gray:
					return float64(m.GrayAt(x, y).Y)
				}
				t.Fatalf("decoded as %T", full.Image)
				return 0
			}
			var info LumaInfo
			rows := 0
			worst := 0.0
			truncated, err := LumaBlocks(data, 0, func(i LumaInfo) func(int, []float32, []uint8) {
				info = i
				return func(by int, blocks []float32, nz []uint8) {
					if by != rows {
						t.Fatalf("row %d handed over as row %d", rows, by)
					}
					rows++
					for bx := range info.BlocksW {
						blk := blocks[bx*64 : bx*64+64]
						for v := range 8 {
							if nz[bx]&(1<<v) == 0 {
								clear(blk[v*8 : v*8+8]) // rows without their bit are not promised clear
							}
						}
						px := idctBlock(blk)
						for j := range 8 {
							for i := range 8 {
								xx, yy := bx*8+i, by*8+j
								if xx >= info.Width || yy >= info.Height {
									continue
								}
								// Not clamped: the consumer sums these
								// values as they are.
								worst = max(worst, math.Abs(px[j*8+i]-lumaAt(xx, yy)))
							}
						}
					}
				}
			})
			if err != nil || truncated {
				t.Fatalf("truncated %v, %v", truncated, err)
			}
			if info.Width != 203 || info.Height != 77 || rows != info.BlocksH || info.BlocksW*8 < 203 || info.BlocksH*8 < 77 {
				t.Fatalf("geometry %+v, %d rows", info, rows)
			}
			// The decoder's integer rounding of Y, Cb, Cr and RGB.
			if worst > 2 {
				t.Errorf("luma off the decoded picture's by up to %.2f", worst)
			}
		})
	}
}

// clipStripes paints stripes a few pixels wide of colours past the RGB
// cube (Cr or Cb at their limits, some with bright Y), so the clamping
// varies within blocks and with the chroma sample each pixel takes.
func clipStripes(p [][]float64, w, h int) {
	for y := range h {
		for x := range w {
			i := y*w + x
			switch (x/5 + y/7) % 4 {
			case 0:
				p[2][i] = 255
			case 1:
				p[1][i], p[0][i] = 0, 240
			case 2:
				p[2][i], p[1][i] = 0, 255
			}
		}
	}
}

// What LumaBlocks does not take is ErrUnsupported before any row, so
// the caller decodes pixels; data that ends early is reported.
func TestLumaBlocksDeclines(t *testing.T) {
	pic := synthPicture(64, 48, 3)
	ycc := jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1}
	for _, c := range []struct {
		name string
		data []byte
		max  int
	}{
		{"cmyk", encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1, 1, 1), Color: "cmyk", Adobe: 0}), 0},
		{"adobe rgb", encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1), Color: "rgb", Adobe: 0}), 0},
		{"12-bit", encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, Precision: 12}), 0},
		{"lossless", encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Adobe: -1, Lossless: true, Predictor: 1}), 0},
		{"subsampled luma", encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 2, 2, 2, 2), Color: "ycbcr", JFIF: true, Adobe: -1}), 0},
		{"over the pixel limit", encodeJPEG(pic, ycc), 64*48 - 1},
		{"cb and cr sampled differently", encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 2, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1}), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			called := false
			_, err := LumaBlocks(c.data, c.max, func(LumaInfo) func(int, []float32, []uint8) {
				called = true
				return func(int, []float32, []uint8) {}
			})
			if !errors.Is(err, ErrUnsupported) || called {
				t.Fatalf("err %v, started %v; want ErrUnsupported before any row", err, called)
			}
		})
	}
	data := encodeJPEG(pic, ycc)
	truncated, err := LumaBlocks(data[:len(data)*2/3], 0, func(LumaInfo) func(int, []float32, []uint8) {
		return func(int, []float32, []uint8) {}
	})
	if err != nil || !truncated {
		t.Fatalf("two thirds of a JPEG: truncated %v, %v", truncated, err)
	}
	if _, err := LumaBlocks([]byte("not a jpeg"), 0, nil); !errors.Is(err, ErrNotJPEG) {
		t.Fatalf("not a JPEG: %v", err)
	}
}
