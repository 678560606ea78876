package pdq

import "math"

// Hashing from DCT blocks.
//
// Everything PDQ does to the luma before its own 16×16 DCT is linear: two
// box-filter passes per axis and a decimation to 64×64 samples. Each
// sample is therefore a fixed weighted sum of luma pixels, separable into
// a horizontal and a vertical kernel, and the luma of a JPEG is itself a
// linear function of its dequantised 8×8 DCT coefficients. So the 64×64
// grid can be computed straight from the coefficients, never making the
// pixels: per block, the kernel is projected onto the eight cosine basis
// functions of each axis once, and each coefficient costs one
// multiply-add per sample it reaches. A 12-megapixel photo's grid costs
// about what decoding a 1/8-scale thumbnail would, and it is the
// full-resolution filter, not a smaller picture's. What a decoder does
// that is not linear, clamping samples and colours to 0..255, is the
// block source's to fold in (jpegx.LumaBlocks corrects the blocks that
// clip); what remains is the decoder's rounding to whole levels, which
// the filter averages over hundreds of pixels.

// axisMap is the kernels of one picture axis, projected onto the 8-point
// DCT basis of the blocks they reach: output o (a sample of the grid or a
// pixel of the variants' plane) reads blocks first[o] .. first[o]+n[o]-1,
// with k weights per block in w[o].
type axisMap struct {
	outs  int
	first []int32
	n     []int32
	w     [][]float32 // per output: n*8 weights, basis index fastest
	// byBlock lists, per block, the outputs reading it.
	byBlock [][]int32
}

// basis[u][t] = C(u)/2·cos((2t+1)uπ/16): the 8-point inverse DCT JPEG
// uses (ITU T.81 A.3.3), split per axis.
var basis = func() (b [8][8]float64) {
	for u := range 8 {
		c := 1.0
		if u == 0 {
			c = 1 / math.Sqrt2
		}
		for t := range 8 {
			b[u][t] = c / 2 * math.Cos(float64((2*t+1)*u)*math.Pi/16)
		}
	}
	return b
}()

// newAxisMap projects pixel kernels onto block bases. kernel(o) returns
// output o's weights over pixels lo..lo+len(ws)-1 of an axis n pixels
// long; blocks is the number of 8-pixel blocks the coefficients cover
// (padding included: padding pixels get no weight).
func newAxisMap(outs, n, blocks int, kernel func(o int) (lo int, ws []float64)) *axisMap {
	m := &axisMap{outs: outs, first: make([]int32, outs), n: make([]int32, outs), w: make([][]float32, outs), byBlock: make([][]int32, blocks)}
	for o := range outs {
		lo, ws := kernel(o)
		hi := lo + len(ws) - 1
		b0, b1 := lo/8, min(hi/8, blocks-1)
		if hi < lo || b0 > b1 {
			continue
		}
		m.first[o], m.n[o] = int32(b0), int32(b1-b0+1)
		w := make([]float32, (b1-b0+1)*8)
		for b := b0; b <= b1; b++ {
			for u := range 8 {
				var s float64
				for t := range 8 {
					if x := b*8 + t; x >= lo && x <= hi && x < n {
						s += ws[x-lo] * basis[u][t]
					}
				}
				w[(b-b0)*8+u] = float32(s)
			}
			m.byBlock[b] = append(m.byBlock[b], int32(o))
		}
		m.w[o] = w
	}
	return m
}

// jaroszKernel is the weight each pixel of an axis n long has in the
// box filter's output at position c after numJaroszPasses passes of
// window w, with box1D's windows: output i averages inputs
// i-(w-half) .. i+half-1, clipped to the axis.
func jaroszKernel(n, w, c int) (lo int, ws []float64) {
	half := (w + 2) / 2
	win := func(i int) (int, int) { return max(0, i-(w-half)), min(n-1, i+half-1) }
	// Start from a unit impulse at c and spread it back through each
	// pass: the adjoint of averaging.
	lo, hi := c, c
	cur := []float64{1}
	for range numJaroszPasses {
		// Inputs reaching outputs lo..hi span win(lo)'s start to
		// win(hi)'s end.
		nlo, _ := win(lo)
		_, nhi := win(hi)
		next := make([]float64, nhi-nlo+1)
		for i := lo; i <= hi; i++ {
			a, b := win(i)
			share := cur[i-lo] / float64(b-a+1)
			for x := a; x <= b; x++ {
				next[x-nlo] += share
			}
		}
		lo, hi, cur = nlo, nhi, next
	}
	return lo, cur
}

// sampleAt is decimate's sample index along an axis n long.
func sampleAt(i, n int) int { return int((float64(i) + 0.5) * float64(n) / 64) }

// gridAxis is the axisMap of one axis of the 64×64 grid of a picture
// shown n pixels long on this axis (stored axis blocks wide), read
// backwards when flip (a mirrored orientation).
func gridAxis(n, blocks int, flip bool) *axisMap {
	w := jaroszWindow(n)
	return newAxisMap(64, n, blocks, func(o int) (int, []float64) {
		lo, ws := jaroszKernel(n, w, sampleAt(o, n))
		if !flip {
			return lo, ws
		}
		rev := make([]float64, len(ws))
		for i, v := range ws {
			rev[len(ws)-1-i] = v
		}
		return n - 1 - (lo + len(ws) - 1), rev
	})
}

// planeAxis is downscale's area average along an axis n pixels long
// brought to outs pixels.
func planeAxis(n, outs, blocks int) *axisMap {
	return newAxisMap(outs, n, blocks, func(o int) (int, []float64) {
		// Pixels x with x*outs/n == o.
		lo := (o*n + outs - 1) / outs
		hi := ((o+1)*n+outs-1)/outs - 1
		hi = min(hi, n-1)
		if hi < lo {
			return lo, nil
		}
		ws := make([]float64, hi-lo+1)
		for i := range ws {
			ws[i] = 1 / float64(len(ws))
		}
		return lo, ws
	})
}

// projection accumulates one separable linear map of the luma: out[q][p]
// = 128 + Σ ky_q(y)·kx_p(x)·(luma(y,x)-128), from the blocks a row at a
// time.
type projection struct {
	x, y *axisMap
	out  []float32 // y.outs × x.outs
	t    []float32 // 8 × x.outs: the current block row, projected across
	// low keeps only the 4×4 lowest frequencies of each block: for a
	// plane a third of the picture's size or less, where an output
	// pixel averages 3 or more pixels and what finer detail leaves of
	// the average is under the decoder's own rounding; a quarter of the
	// multiply-adds.
	low bool
}

func newProjection(x, y *axisMap) *projection {
	return &projection{x: x, y: y, out: make([]float32, x.outs*y.outs), t: make([]float32, 8*x.outs)}
}

// row adds block row by (blocks of 64 dequantised coefficients in
// natural order; rows[bx] bit v says row v of block bx is not all zero,
// and the rows that are, which are most of them, are not read).
func (p *projection) row(by int, blocks []float32, rows []uint8) {
	if by >= len(p.y.byBlock) || len(p.y.byBlock[by]) == 0 {
		return
	}
	P := p.x.outs
	t := p.t
	clear(t)
	var any uint8 // rows of coefficients not zero in some block
	for bx, outs := range p.x.byBlock {
		if len(outs) == 0 || (bx+1)*64 > len(blocks) {
			continue
		}
		f := (*[64]float32)(blocks[bx*64 : bx*64+64])
		nz := rows[bx]
		if p.low {
			nz &= 0x0f
		}
		if nz == 0 {
			continue
		}
		any |= nz
		for _, o := range outs {
			g := (*[8]float32)(p.x.w[o][(int32(bx)-p.x.first[o])*8:])
			for v := range 8 {
				if nz&(1<<v) == 0 {
					continue
				}
				r := (*[8]float32)(f[v*8 : v*8+8])
				var s float32
				if p.low {
					s = r[0]*g[0] + r[1]*g[1] + r[2]*g[2] + r[3]*g[3]
				} else {
					s = r[0]*g[0] + r[1]*g[1] + r[2]*g[2] + r[3]*g[3] + r[4]*g[4] + r[5]*g[5] + r[6]*g[6] + r[7]*g[7]
				}
				t[v*P+int(o)] += s
			}
		}
	}
	if any == 0 {
		return
	}
	for _, q := range p.y.byBlock[by] {
		g := p.y.w[q][(int32(by)-p.y.first[q])*8:]
		dst := p.out[int(q)*P : int(q)*P+P]
		for v := range 8 {
			gv := g[v]
			if gv == 0 || any&(1<<v) == 0 {
				continue
			}
			src := t[v*P : v*P+P]
			for i := range dst {
				dst[i] += gv * src[i]
			}
		}
	}
}

// BlockHasher hashes a picture from its luma's 8×8 DCT blocks (a JPEG's,
// dequantised, coefficients in natural order, level shift of 128
// implied) as FromImage hashes its pixels, for the picture as stored and,
// with an EXIF orientation, as displayed; and makes the variants' plane.
// Feed it every block row with Row, then read Result.
type BlockHasher struct {
	w, h, o int
	stored  *projection
	shown   *projection // nil unless oriented
	plane   *projection // nil unless asked
	pw, ph  int
}

// NewBlockHasher prepares for a w×h picture whose luma blocks are
// blocksW × blocksH (padding included), shown under EXIF orientation o;
// withPlane also makes the plane the variants of Search are cut from.
func NewBlockHasher(w, h, blocksW, blocksH, o int, withPlane bool) *BlockHasher {
	if o < 1 || o > 8 {
		o = 1
	}
	b := &BlockHasher{w: w, h: h, o: o}
	if w < MinDim || h < MinDim {
		return b
	}
	b.stored = newProjection(gridAxis(w, blocksW, false), gridAxis(h, blocksH, false))
	if o > 1 {
		// The displayed picture's rows run along the stored x axis for
		// the transposing orientations (5..8); flips read an axis back.
		var fx, fy bool // stored axis read backwards
		switch o {
		case 2:
			fx = true
		case 3:
			fx, fy = true, true
		case 4:
			fy = true
		case 5:
		case 6:
			fy = true // displayed x = h-1-y
		case 7:
			fx, fy = true, true
		case 8:
			fx = true // displayed y = w-1-x
		}
		b.shown = newProjection(gridAxis(w, blocksW, fx), gridAxis(h, blocksH, fy))
	}
	if withPlane {
		b.pw, b.ph = w, h
		if m := max(w, h); m > workSide {
			b.pw, b.ph = max(1, w*workSide/m), max(1, h*workSide/m)
		}
		b.plane = newProjection(planeAxis(w, b.pw, blocksW), planeAxis(h, b.ph, blocksH))
		b.plane.low = w >= 3*b.pw
	}
	return b
}

// Row adds block row by: blocksW blocks of 64 coefficients each, and
// per block a bit per row of coefficients that is not all zero (rows
// without their bit are never read, so need not be cleared).
func (b *BlockHasher) Row(by int, blocks []float32, rows []uint8) {
	for _, p := range []*projection{b.stored, b.shown, b.plane} {
		if p != nil {
			p.row(by, blocks, rows)
		}
	}
}

// grid turns a projection's 64×64 samples (stored order) into the grid
// of the picture as shown under o.
func grid(p *projection, o int) *[64][64]float32 {
	var g [64][64]float32
	for q := range 64 {
		for x := range 64 {
			v := p.out[q*64+x] + 128
			if o >= 5 {
				g[x][q] = v // displayed row = stored column
			} else {
				g[q][x] = v
			}
		}
	}
	return &g
}

func hashGrid(g *[64][64]float32, dihedral bool) Result {
	var coef [16][16]float32
	dct64To16(g, &coef)
	res := Result{Hash: threshold(&coef), Quality: quality(g)}
	if dihedral {
		res.Dihedral = dihedrals(&coef)
	}
	return res
}

// Result hashes what was fed as HashViewed hashes a one-frame opaque
// picture without a colour profile: Hash and Quality are the picture as
// stored (Dihedral when asked), Forms its displayed form under the
// orientation and, with opt.Search, the variants cut from the displayed
// picture (which needs the plane: see NewBlockHasher).
func (b *BlockHasher) Result(opt Options) Result {
	if b.stored == nil {
		return hashLuma(nil, nil, b.h, b.w, opt.Dihedral, 1)
	}
	res := hashGrid(grid(b.stored, 1), opt.Dihedral)
	vs := variantSet{seen: map[Hash]int{res.Hash: res.Quality}}
	vs.budget = variantBudget(b.w * b.h)
	base := res
	if b.shown != nil {
		shown := hashGrid(grid(b.shown, b.o), false)
		vs.budget += variantBudget(b.w * b.h)
		if _, ok := vs.seen[shown.Hash]; !ok {
			vs.seen[shown.Hash] = shown.Quality
			res.Forms = append(res.Forms, Form{Name: "displayed", Variant: VariantDisplayed, Hash: shown.Hash, Quality: shown.Quality})
		}
		base = shown
	}
	if opt.Search == SearchOff || b.plane == nil {
		return res
	}
	if opt.Search == SearchDeep {
		vs.budget += deepAllowance
	}
	p := &plane{w: b.pw, h: b.ph, pix: b.plane.out}
	for i, v := range p.pix {
		p.pix[i] = min(max(v+128, 0), 255)
	}
	b.plane = nil // its buffer is the plane's now
	p = p.orient(b.o)
	defaultVariants(&vs, p, base, "")
	if opt.Search == SearchDeep {
		deepVariants(&vs, p, "")
	}
	res.Forms = append(res.Forms, vs.forms...)
	return res
}
