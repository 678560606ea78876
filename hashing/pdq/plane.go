package pdq

import "image"

// plane is a luma picture, row-major, values 0..255: what the variants
// are cut from. It is the picture as displayed, area-averaged down to at
// most workSide on its longer side, taken from the luma the displayed
// form's own hash computed, so no pixel is decoded or converted twice.
type plane struct {
	w, h int
	pix  []float32
}

// workSide is the longer side variants are hashed at. PDQ keeps only a
// 64×64 grid after its box filter, so 512 loses nothing it would keep
// (the filter of a 512 px side already averages 4 px), and it bounds a
// variant's cost whatever the upload's size.
const workSide = 512

// deepSide is the longer side the deep search (49 windows, 30 angles)
// works at: each window or angle then costs a quarter of a default
// variant, and a 128 px window is still twice PDQ's 64×64 grid.
const deepSide = 256

func (p *plane) row(y int) []float32 { return p.pix[y*p.w : (y+1)*p.w] }

// downscale area-averages the rows×cols luma in src to fit within side,
// in one pass over src. Smaller pictures are copied.
func downscale(src []float32, rows, cols, side int) *plane {
	w, h := cols, rows
	if m := max(rows, cols); m > side {
		w = max(1, cols*side/m)
		h = max(1, rows*side/m)
	}
	p := &plane{w: w, h: h, pix: make([]float32, w*h)}
	if w == cols && h == rows {
		copy(p.pix, src[:rows*cols])
		return p
	}
	xs := make([]int32, cols)
	colN := make([]float32, w)
	for x := range cols {
		xs[x] = int32(x * w / cols)
		colN[xs[x]]++
	}
	acc := make([]float32, w)
	rowN := 0
	dy := 0
	flush := func() {
		out := p.row(dy)
		for i, v := range acc {
			out[i] = v / (colN[i] * float32(rowN))
			acc[i] = 0
		}
		rowN = 0
	}
	for y := range rows {
		if ty := y * h / rows; ty != dy {
			flush()
			dy = ty
		}
		for x, v := range src[y*cols : (y+1)*cols] {
			acc[xs[x]] += v
		}
		rowN++
	}
	flush()
	return p
}

// sub copies the rectangle r of p.
func (p *plane) sub(r image.Rectangle) *plane {
	q := &plane{w: r.Dx(), h: r.Dy(), pix: make([]float32, r.Dx()*r.Dy())}
	for y := range q.h {
		copy(q.row(y), p.pix[(r.Min.Y+y)*p.w+r.Min.X:(r.Min.Y+y)*p.w+r.Max.X])
	}
	return q
}

// orient returns p as shown under EXIF orientation o (see
// fromImageOriented).
func (p *plane) orient(o int) *plane {
	if o <= 1 || o > 8 {
		return p
	}
	q := &plane{pix: make([]float32, len(p.pix))}
	q.w, q.h = orientLuma(p.pix, q.pix, p.w, p.h, o)
	return q
}

// hash hashes p (or the rectangle r of it) as FromImage hashes pixels.
// It does not modify p.
func (p *plane) hash(r image.Rectangle) Result {
	w, h := r.Dx(), r.Dy()
	if w < MinDim || h < MinDim {
		return Result{}
	}
	s := getScratch()
	s.grow(w * h)
	for y := range h {
		copy(s.a[y*w:(y+1)*w], p.pix[(r.Min.Y+y)*p.w+r.Min.X:(r.Min.Y+y)*p.w+r.Max.X])
	}
	res := hashLuma(s.a, s.b, h, w, false, 1)
	putScratch(s)
	return res
}

func (p *plane) bounds() image.Rectangle { return image.Rect(0, 0, p.w, p.h) }
