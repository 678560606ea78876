package pdq

import (
	"math"
	"math/rand/v2"
	"testing"
)

// lumaBlocks is the forward 8×8 DCT of a rows×cols luma (level shift
// 128), padded to whole blocks by repeating the edge as encoders do: the
// blocks a JPEG of this luma would carry, before quantisation.
func lumaBlocks(luma []float32, rows, cols int) (bw, bh int, rowsOut [][]float32) {
	bw, bh = (cols+7)/8, (rows+7)/8
	for by := range bh {
		row := make([]float32, bw*64)
		for bx := range bw {
			for v := range 8 {
				for u := range 8 {
					var s float64
					for y := range 8 {
						for x := range 8 {
							py, px := min(by*8+y, rows-1), min(bx*8+x, cols-1)
							s += float64(luma[py*cols+px]-128) * basis[v][y] * basis[u][x]
						}
					}
					// basis is orthonormal: T.81's forward DCT is
					// the same sum.
					row[bx*64+v*8+u] = float32(s)
				}
			}
		}
		rowsOut = append(rowsOut, row)
	}
	return bw, bh, rowsOut
}

// smoothLuma is a photo-like luma: smooth shapes plus a little noise.
func smoothLuma(rows, cols int, seed uint64) []float32 {
	r := rand.New(rand.NewPCG(seed, 1))
	l := make([]float32, rows*cols)
	type blob struct{ x, y, s, a float64 }
	var bs []blob
	for range 12 {
		bs = append(bs, blob{r.Float64() * float64(cols), r.Float64() * float64(rows), 10 + r.Float64()*float64(cols)/3, r.Float64()*160 - 80})
	}
	for y := range rows {
		for x := range cols {
			v := 128.0
			for _, b := range bs {
				dx, dy := float64(x)-b.x, float64(y)-b.y
				v += b.a * math.Exp(-(dx*dx+dy*dy)/(2*b.s*b.s))
			}
			v += r.Float64()*8 - 4
			l[y*cols+x] = float32(v)
		}
	}
	return l
}

func TestBlockHasherMatchesPixels(t *testing.T) {
	for _, c := range []struct{ rows, cols, o int }{
		{100, 160, 1}, {101, 163, 6}, {64, 64, 3}, {37, 300, 5}, {250, 90, 8}, {120, 200, 2}, {120, 200, 4}, {120, 200, 7}, {700, 530, 1},
	} {
		luma := smoothLuma(c.rows, c.cols, uint64(c.rows*c.cols+c.o))
		bw, bh, rows := lumaBlocks(luma, c.rows, c.cols)
		bhs := NewBlockHasher(c.cols, c.rows, bw, bh, c.o, true)
		all := make([]uint8, bw)
		for i := range all {
			all[i] = 0xff
		}
		for by, r := range rows {
			bhs.Row(by, r, all)
		}
		// Pixels: stored, displayed, plane.
		a := append([]float32(nil), luma...)
		want := hashLuma(a, make([]float32, len(a)), c.rows, c.cols, false, 1)
		gs := grid(bhs.stored, 1)
		got := hashGrid(gs, false)
		if d := Distance(want.Hash, got.Hash); d > 2 {
			t.Errorf("%+v stored: distance %d", c, d)
		}
		if want.Quality != got.Quality {
			t.Logf("%+v stored: quality %d, pixels %d", c, got.Quality, want.Quality)
		}
		if c.o > 1 {
			sh := make([]float32, len(luma))
			ow, oh := orientLuma(luma, sh, c.cols, c.rows, c.o)
			want := hashLuma(sh, make([]float32, len(sh)), oh, ow, false, 1)
			got := hashGrid(grid(bhs.shown, c.o), false)
			if d := Distance(want.Hash, got.Hash); d > 2 {
				t.Errorf("%+v displayed: distance %d", c, d)
			}
		}
		p := downscale(luma, c.rows, c.cols, workSide)
		if p.w != bhs.pw || p.h != bhs.ph {
			t.Fatalf("%+v plane %dx%d, want %dx%d", c, bhs.pw, bhs.ph, p.w, p.h)
		}
		worst := 0.0
		for i, v := range p.pix {
			worst = max(worst, math.Abs(float64(v-(bhs.plane.out[i]+128))))
		}
		if worst > 0.01 {
			t.Errorf("%+v plane: off by up to %g", c, worst)
		}
	}
}
