package jpegx

import "math"

// Clipping. The luma a viewer sees is not the Y channel where a decoder
// clamps: Y samples to 0..255, and the RGB it converts them to. A block
// of pure white whose coefficients say "700" shows as 255, as does one
// that says 255; and saturated chroma makes the clamped RGB's brightness
// differ from Y. A consumer summing raw coefficients would see neither,
// so an attacker could shift a picture's hash without changing what it
// shows. Each block is therefore bounded (its DC plus the largest any
// combination of its AC terms can add, per channel); where its Y or its
// RGB might leave 0..255 its samples are computed, and what clamping
// them (Y, Cb, Cr, then the RGB, chroma from the nearest sample, as Go's
// image/jpeg and mediaguard's pixel path show it) changes in its BT.601
// luma is transformed and added to its coefficients.

// maxFixedPercent is the share of a picture's blocks needing correction
// past which LumaBlocks gives it back to the pixel path (ErrUnsupported),
// as soon as that many are corrected: a correction costs about what
// decoding the block's pixels would, on top of the entropy decoding. (A
// share judged on the blocks seen so far would give up on a photo whose
// top is a saturated sky: the PDQ vectors' bridge corrects a quarter of
// its blocks, nearly all of its first rows.)
const maxFixedPercent = 40

// earlyFixedPercent gives a picture back sooner, once an eighth of its
// blocks are seen, when nearly all of them needed correcting: a noisy,
// saturated picture (90–94 % of its blocks) then wastes an eighth of a
// decode rather than 40 %. The bridge's sky rows stay under 50 %.
const earlyFixedPercent = 75

// clipDelta is the change to a sample's luma below which a block is
// taken not to clip (float noise). Smaller real changes still count: a
// sky clamped by a third of a level over a wide area moves a hash.
const clipDelta = 0.01

// clipMargin sends blocks within this distance of 0 or 255 to the exact
// check: the bound is on the transform's values, which the samples'
// rounding moves by up to half a level.
const clipMargin = 1

// bnd[n] is the largest |b_u(x)·b_v(y)| over a block's pixels for
// natural index n = v*8+u (0 for the DC, which is the centre).
var bnd = func() (b [64]float32) {
	var m [8]float64
	for u := range 8 {
		c := 1.0
		if u == 0 {
			c = 1 / math.Sqrt2
		}
		for t := range 8 {
			m[u] = max(m[u], math.Abs(c/2*math.Cos(float64((2*t+1)*u)*math.Pi/16)))
		}
	}
	for n := 1; n < 64; n++ {
		b[n] = float32(m[n/8] * m[n%8])
	}
	return b
}()

// basis32[u][t] = C(u)/2·cos((2t+1)uπ/16), for the forward DCT of a
// repaired block.
var basis32 = func() (b [8][8]float32) {
	for u := range 8 {
		c := 1.0
		if u == 0 {
			c = 1 / math.Sqrt2
		}
		for t := range 8 {
			b[u][t] = float32(c / 2 * math.Cos(float64((2*t+1)*u)*math.Pi/16))
		}
	}
	return b
}()

// span is a block's samples' centre (level shift removed) and the most
// they can differ from it.
type span struct{ c, r float32 }

// blockSpan bounds the samples of a block of natural-order coefficients
// dequantised by q.
func blockSpan(blk []int16, q *[64]float32) span {
	s := span{c: float32(blk[0]) * q[0] / 8}
	for n := 1; n < 64; n++ {
		if v := blk[n]; v != 0 {
			s.r += float32(max(v, -v)) * q[n] * bnd[n]
		}
	}
	return s
}

// clipState is what a luma-blocks decode keeps to repair blocks.
type clipState struct {
	ready bool
	q     [maxComponents][64]float32 // natural order
	t     [maxComponents]*idctTables
	// the last chroma block bounded, and the last transformed, per
	// component
	lastKey [maxComponents][2]int
	lastS   [maxComponents]span
	pixKey  [maxComponents][2]int
	pix     [maxComponents][64]float32
	pixSpan [maxComponents]span // of pix, level shift removed
	// seen and fixed count the luma blocks handed over and those
	// corrected; abandon stops the decode when too many need it.
	seen, fixed int
	abandon     bool
	// sub[ci][0][x], sub[ci][1][y]: the chroma sample offset of luma
	// sample x (y) within its block's share of the chroma block.
	sub [maxComponents][2][8]uint8
}

func (d *decoder) clipSetup() {
	k := &d.clip
	for i := range d.comps {
		c := &d.comps[i]
		q := c.q
		if !c.latched && c.tq < 4 {
			q = d.qt[c.tq]
		}
		for z, n := range unzig {
			k.q[i][n] = float32(q[z])
		}
		k.t[i] = makeIDCTTables(&q, d.precision)
		k.lastKey[i] = [2]int{-1, -1}
		k.pixKey[i] = [2]int{-1, -1}
		for t := range 8 {
			k.sub[i][0][t] = uint8(t * c.h / d.hmax)
			k.sub[i][1][t] = uint8(t * c.v / d.vmax)
		}
	}
	k.ready = true
}

// chromaBlock is the stored block of component ci covering luma block
// (bx, by), or nil where none is held (never decoded: zeros).
func (d *decoder) chromaBlock(ci, bx, by int) ([]int16, int, int) {
	c := &d.comps[ci]
	cbx, cby := bx*c.h/d.hmax, by*c.v/d.vmax
	row := cby
	if d.streaming {
		row -= c.rowOff
	}
	held := len(c.coef) / (c.bw * 64)
	if cbx >= c.bw || row < 0 || row >= held {
		return nil, cbx, cby
	}
	i := (row*c.bw + cbx) * 64
	return c.coef[i : i+64], cbx, cby
}

func (d *decoder) chromaSpan(ci, bx, by int) span {
	k := &d.clip
	blk, cbx, cby := d.chromaBlock(ci, bx, by)
	if k.lastKey[ci] == [2]int{cbx, cby} {
		return k.lastS[ci]
	}
	var s span
	if blk != nil {
		s = blockSpan(blk, &k.q[ci])
	}
	k.lastKey[ci], k.lastS[ci] = [2]int{cbx, cby}, s
	return s
}

// mayClip reports whether luma block (bx, by), bounded by y, could have
// a sample a decoder clamps.
func (d *decoder) mayClip(bx, by int, y span) bool {
	const lo, hi = clipMargin, 255 - clipMargin
	yl, yh := y.c+128-y.r, y.c+128+y.r
	if yl < lo || yh > hi {
		return true
	}
	if len(d.comps) == 1 {
		return false
	}
	return rgbMayClip(y, d.chromaSpan(1, bx, by), d.chromaSpan(2, bx, by))
}

// rgbMayClip reports whether luma in y (level shift removed) with Cb
// and Cr in cb and cr (level shift removed) could make a Y, Cb, Cr or
// RGB value a decoder clamps.
func rgbMayClip(y, cb, cr span) bool {
	const lo, hi = clipMargin, 255 - clipMargin
	yl, yh := y.c+128-y.r, y.c+128+y.r
	if yl < lo || yh > hi {
		return true
	}
	bl, bh := cb.c-cb.r, cb.c+cb.r
	rl, rh := cr.c-cr.r, cr.c+cr.r
	if bl+128 < lo || bh+128 > hi || rl+128 < lo || rh+128 > hi {
		return true
	}
	// color.YCbCrToRGB's coefficients (JFIF), over the intervals.
	r := [2]float32{yl + 1.402*rl, yh + 1.402*rh}
	g := [2]float32{yl - 0.34414*bh - 0.71414*rh, yh - 0.34414*bl - 0.71414*rl}
	b := [2]float32{yl + 1.772*bl, yh + 1.772*bh}
	for _, v := range [][2]float32{r, g, b} {
		if v[0] < lo || v[1] > hi {
			return true
		}
	}
	return false
}

// fix makes luma block (bx, by), whose bound says it might clip, what a
// viewer's luma is: its samples are computed (unclamped, as floats), and
// where Y, Cb, Cr or the RGB they make leave 0..255 the difference the
// clamping makes to the luma is transformed and added to dst. A block
// the bound flagged but that clips nowhere (most of them: the bound adds
// every AC term at its largest) is left as it was. It returns the rows
// of dst now in use.
func (d *decoder) fix(yblk []int16, bx, by int, dst *[64]float32, rows uint8) uint8 {
	k := &d.clip
	var ys [64]float32
	idct8f(yblk, k.t[0], &ys)
	ylo, yhi := rangeOf(&ys)
	if len(d.comps) > 1 {
		// The samples' real ranges, far tighter than the bound: most
		// flagged blocks stop here.
		_, _, b := d.chromaPixels(1, bx, by)
		_, _, r := d.chromaPixels(2, bx, by)
		if !rgbMayClip(span{(ylo + yhi) / 2, (yhi - ylo) / 2}, b, r) {
			return rows
		}
	} else if ylo >= 0 && yhi <= 255 {
		return rows
	}
	var delta [64]float32
	var drows uint8 // rows of delta not zero
	clips := false
	if len(d.comps) == 1 {
		for i, v := range ys {
			c := clamp255f(v)
			delta[i] = c - v
			if delta[i] != 0 {
				drows |= 1 << (i / 8)
			}
			clips = clips || delta[i] > clipDelta || delta[i] < -clipDelta
		}
	} else {
		yClips := ylo < 0 || yhi > 255
		cb, cbo, _ := d.chromaPixels(1, bx, by)
		cr, cro, _ := d.chromaPixels(2, bx, by)
		sx1, sy1, sx2, sy2 := &k.sub[1][0], &k.sub[1][1], &k.sub[2][0], &k.sub[2][1]
		for y := range 8 {
			r1, r2 := (cbo[1]+int(sy1[y]))*8+cbo[0], (cro[1]+int(sy2[y]))*8+cro[0]
			for x := range 8 {
				i := y*8 + x
				yv := ys[i]
				yc := yv
				if yClips {
					yc = clamp255f(yv)
				}
				b := cb[(r1+int(sx1[x]))&63]
				r := cr[(r2+int(sx2[x]))&63]
				// JFIF's conversion, then BT.601 luma of the clamped RGB,
				// as a viewer's decoder and the PDQ reference do it.
				l := 0.299*clamp255f(yc+1.402*r) + 0.587*clamp255f(yc-0.34414*b-0.71414*r) + 0.114*clamp255f(yc+1.772*b)
				dl := l - yv
				delta[i] = dl
				if dl != 0 {
					drows |= 1 << y
				}
				clips = clips || dl > clipDelta || dl < -clipDelta
			}
		}
	}
	if !clips {
		return rows
	}
	for v := range 8 {
		if rows&(1<<v) == 0 {
			clear(dst[v*8 : v*8+8])
		}
	}
	var t [64]float32 // rows transformed
	for y := range 8 {
		if drows&(1<<y) == 0 {
			continue
		}
		d := (*[8]float32)(delta[y*8:])
		for u := range 8 {
			bu := &basis32[u]
			t[y*8+u] = d[0]*bu[0] + d[1]*bu[1] + d[2]*bu[2] + d[3]*bu[3] + d[4]*bu[4] + d[5]*bu[5] + d[6]*bu[6] + d[7]*bu[7]
		}
	}
	for v := range 8 {
		bv := &basis32[v]
		for u := range 8 {
			// Rows of t not transformed are zero.
			dst[v*8+u] += t[u]*bv[0] + t[8+u]*bv[1] + t[16+u]*bv[2] + t[24+u]*bv[3] +
				t[32+u]*bv[4] + t[40+u]*bv[5] + t[48+u]*bv[6] + t[56+u]*bv[7]
		}
	}
	return 0xff
}

// chromaPixels is the samples of the chroma block of component ci
// covering luma block (bx, by), clamped and level-shifted as the
// conversion to RGB takes them; where within it that luma block's
// samples start (x, y); and the samples' span before clamping. A block
// never decoded is mid-grey.
func (d *decoder) chromaPixels(ci, bx, by int) (*[64]float32, [2]int, span) {
	k := &d.clip
	c := &d.comps[ci]
	off := [2]int{(bx * 8 * c.h / d.hmax) % 8, (by * 8 * c.v / d.vmax) % 8}
	blk, cbx, cby := d.chromaBlock(ci, bx, by)
	if k.pixKey[ci] != [2]int{cbx, cby} {
		k.pixKey[ci] = [2]int{cbx, cby}
		if blk == nil {
			for i := range k.pix[ci] {
				k.pix[ci][i] = 128
			}
		} else {
			idct8f(blk, k.t[ci], &k.pix[ci])
		}
		lo, hi := rangeOf(&k.pix[ci])
		k.pixSpan[ci] = span{(lo+hi)/2 - 128, (hi - lo) / 2}
		for i, v := range k.pix[ci] {
			k.pix[ci][i] = clamp255f(v) - 128 // as the conversion takes it
		}
	}
	return &k.pix[ci], off, k.pixSpan[ci]
}

// clamp255f clamps to 0..255 with plain comparisons: the builtin min
// and max order NaNs and signed zeros, a cost in this loop.
func clamp255f(v float32) float32 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return v
}

// idct8f is idct8 without the rounding and clamping: the block's samples
// as the transform gives them, level shift included.
func idct8f(blk []int16, t *idctTables, out *[64]float32) {
	blk = blk[:64]
	q := &t.aan
	var ws [64]float32
	for c := range 8 {
		o0, o1, o2, o3, o4, o5, o6, o7 := aan1D(
			float32(blk[c])*q[c], float32(blk[8+c])*q[8+c], float32(blk[16+c])*q[16+c], float32(blk[24+c])*q[24+c],
			float32(blk[32+c])*q[32+c], float32(blk[40+c])*q[40+c], float32(blk[48+c])*q[48+c], float32(blk[56+c])*q[56+c])
		ws[c], ws[8+c], ws[16+c], ws[24+c], ws[32+c], ws[40+c], ws[48+c], ws[56+c] = o0, o1, o2, o3, o4, o5, o6, o7
	}
	for y := range 8 {
		r := ws[y*8 : y*8+8]
		o0, o1, o2, o3, o4, o5, o6, o7 := aan1D(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
		out[y*8], out[y*8+1], out[y*8+2], out[y*8+3] = o0+128, o1+128, o2+128, o3+128
		out[y*8+4], out[y*8+5], out[y*8+6], out[y*8+7] = o4+128, o5+128, o6+128, o7+128
	}
}

// rangeOf is the least and greatest of 64 samples (plain comparisons, as
// in clamp255f).
func rangeOf(p *[64]float32) (lo, hi float32) {
	lo, hi = p[0], p[0]
	for _, v := range p {
		if v < lo {
			lo = v
		}
		if v > hi {
			hi = v
		}
	}
	return lo, hi
}
