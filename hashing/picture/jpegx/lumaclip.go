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

// basisAt[t][u] = basis32[u][t]: sample t's weight in each coefficient.
var basisAt = func() (b [8][8]float32) {
	for u := range 8 {
		for t := range 8 {
			b[t][u] = basis32[u][t]
		}
	}
	return b
}()

// span is a block's samples' centre (level shift removed) and the most
// they can differ from it.
type span struct{ c, r float32 }

// blockSpan bounds the samples of a block of natural-order coefficients
// dequantised by q: its DC plus every AC term at its largest, rows
// without a coefficient skipped (most are).
func blockSpan(blk []int16, q *[64]float32) span {
	s := span{c: float32(blk[0]) * q[0] / 8}
	for v := range 8 {
		row := (*[8]int16)(blk[v*8:])
		if row[0]|row[1]|row[2]|row[3]|row[4]|row[5]|row[6]|row[7] == 0 {
			continue
		}
		for u, c := range row {
			if n := v*8 + u; n != 0 && c != 0 {
				s.r += abs32(float32(c)*q[n]) * bnd[n]
			}
		}
	}
	return s
}

// clipState is what a luma-blocks decode keeps to repair blocks.
type clipState struct {
	ready  bool
	tables bool                       // q and t made
	q      [maxComponents][64]float32 // natural order
	t      [maxComponents]*idctTables
	// chroma[cbx] is the chroma block pair at (cbx, its cby) as the
	// conversion to RGB sees it, kept for the row of luma blocks that
	// share it.
	chroma  []chromaPair
	scratch chromaPair // past the row's end (never in a valid file)
}

// floatTables makes each component's dequantisation table (natural
// order) and IDCT tables for the float transforms, once the tables are
// latched (at the first rows handed over or checked).
func (d *decoder) floatTables() {
	k := &d.clip
	if k.tables {
		return
	}
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
	}
	k.tables = true
}

func (d *decoder) clipSetup() {
	k := &d.clip
	d.floatTables()
	if len(d.comps) == 3 {
		k.chroma = make([]chromaPair, d.comps[1].bw)
		for i := range k.chroma {
			k.chroma[i].cby, k.chroma[i].spanBy = -1, -1
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

// chromaSpans bounds the Cb and Cr samples covering luma block (bx, by)
// from their coefficients.
func (d *decoder) chromaSpans(bx, by int) (cb, cr span) {
	k := &d.clip
	blk, cbx, cby := d.chromaBlock(1, bx, by)
	p := &k.scratch
	if cbx < len(k.chroma) {
		p = &k.chroma[cbx]
	}
	if p.spanBy == cby && p != &k.scratch {
		return p.sb, p.sr
	}
	p.spanBy, p.sb, p.sr = cby, span{}, span{}
	if blk != nil {
		p.sb = blockSpan(blk, &k.q[1])
	}
	if blk, _, _ := d.chromaBlock(2, bx, by); blk != nil {
		p.sr = blockSpan(blk, &k.q[2])
	}
	return p.sb, p.sr
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
	if cb, cr := d.chromaSpans(bx, by); !rgbMayClip(y, cb, cr) {
		return false
	}
	// The chroma's own bound is as loose as the luma's; its samples,
	// shared by the blocks it covers, say what luma each allows.
	p, sx, sy := d.chromaPairAt(bx, by)
	need, room := float32(0), float32(255)
	for cy := sy[0]; cy <= sy[7]; cy++ {
		for s := cy*8 + sx[0]; s <= cy*8+sx[7]; s++ {
			need, room = max(need, p.lo[s&63]), min(room, p.hi[s&63])
		}
	}
	return yl < need+clipMargin || yh > room-clipMargin
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
	if r, done := d.fixFlat(yblk, bx, by, dst, rows); done {
		return r
	}
	var ys [64]float32
	idct8f(yblk, k.t[0], &ys)
	// The clipped samples and what clamping changes in their luma:
	// a handful per block where a block clips at all (most blocks the
	// bound flags clip nowhere: it adds every AC term at its largest).
	var at [64]uint8
	var delta [64]float32
	n := 0
	if len(d.comps) == 1 {
		for i, v := range ys {
			if v >= 0 && v <= 255 {
				continue
			}
			if dl := clamp255f(v) - v; dl > clipDelta || dl < -clipDelta {
				at[n], delta[n] = uint8(i), dl
				n++
			}
		}
	} else {
		p, sx, sy := d.chromaPairAt(bx, by)
		for y := range 8 {
			r := int(sy[y]) * 8
			for x := range 8 {
				yv, s := ys[y*8+x], (r+int(sx[x]))&63
				if yv >= p.lo[s] && yv <= p.hi[s] {
					continue // Y, R, G and B all within 0..255
				}
				// JFIF's conversion, then BT.601 luma of the clamped RGB,
				// as a viewer's decoder and the PDQ reference do it.
				yc, b, r := clamp255f(yv), p.cb[s], p.cr[s]
				l := 0.299*clamp255f(yc+1.402*r) + 0.587*clamp255f(yc-0.34414*b-0.71414*r) + 0.114*clamp255f(yc+1.772*b)
				if dl := l - yv; dl > clipDelta || dl < -clipDelta {
					at[n], delta[n] = uint8(y*8+x), dl
					n++
				}
			}
		}
	}
	if n == 0 {
		return rows
	}
	for v := range 8 {
		if rows&(1<<v) == 0 {
			clear(dst[v*8 : v*8+8])
		}
	}
	if n <= sparseFix {
		// Each clipped sample's change, transformed on its own: 64
		// products against the separable transform's 1,024.
		for j, i := range at[:n] {
			wx, wy := &basisAt[i%8], &basisAt[i/8]
			for v := range 8 {
				w := delta[j] * wy[v]
				row := (*[8]float32)(dst[v*8:])
				for u := range 8 {
					row[u] += w * wx[u]
				}
			}
		}
		return 0xff
	}
	var full [64]float32
	var drows uint8 // rows of full not zero
	for j, i := range at[:n] {
		full[i] = delta[j]
		drows |= 1 << (i / 8)
	}
	var t [64]float32 // rows transformed
	for y := range 8 {
		if drows&(1<<y) == 0 {
			continue
		}
		d := (*[8]float32)(full[y*8:])
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

// fixFlat is fix for a block whose samples are all alike (no AC terms
// in its luma, nor in its chroma where there is any), as in a flat
// saturated area: one sample's change, added to the DC. It reports
// false where the block is not flat.
func (d *decoder) fixFlat(yblk []int16, bx, by int, dst *[64]float32, rows uint8) (uint8, bool) {
	if rows&^1 != 0 || yblk[1]|yblk[2]|yblk[3]|yblk[4]|yblk[5]|yblk[6]|yblk[7] != 0 {
		return rows, false
	}
	yv := float32(yblk[0])*d.clip.q[0][0]/8 + 128
	dl := clamp255f(yv) - yv
	if len(d.comps) > 1 {
		p, sx, sy := d.chromaPairAt(bx, by)
		if !p.flat {
			return rows, false
		}
		s := sy[0]*8 + sx[0]
		yc, b, r := clamp255f(yv), p.cb[s], p.cr[s]
		dl = 0.299*clamp255f(yc+1.402*r) + 0.587*clamp255f(yc-0.34414*b-0.71414*r) + 0.114*clamp255f(yc+1.772*b) - yv
	}
	if dl <= clipDelta && dl >= -clipDelta {
		return rows, true
	}
	if rows&1 == 0 {
		clear(dst[:8])
	}
	dst[0] += 8 * dl // the DC's share of each sample is 1/8 of it
	return rows | 1, true
}

// sparseFix is the most clipped samples in a block that are transformed
// one by one rather than as a block: the crossover of 64 products each
// against the separable transform's 1,024 less its rows left zero.
const sparseFix = 12

// chromaPair is a block of Cb and its block of Cr as the conversion to
// RGB takes them, with what that means for the luma at each sample.
type chromaPair struct {
	cby    int
	cb, cr [64]float32 // clamped and level-shifted
	// lo[s] and hi[s] are the luma (level shift included) within which
	// sample s leaves Y, R, G and B all inside 0..255: what most pixels
	// of a flagged block need to know, with two comparisons.
	lo, hi [64]float32
	flat   bool // every sample alike
	// sb and sr bound the pair's samples from its coefficients (the
	// pair at spanBy): cheaper than the samples, which most blocks
	// never need.
	spanBy int
	sb, sr span
}

// chromaPairAt is the chroma pair covering luma block (bx, by), and the
// column (row) within it of the chroma sample each of the block's
// columns (rows) takes: the nearest sample, (bx·8+x)·h/hmax, as the pixel
// path upsamples. (An offset plus x·h/hmax would be the same only where
// the factor divides 8; a factor of 3 is legal.) A block never decoded
// is mid-grey. LumaBlocks only takes JPEGs whose Cb and Cr are sampled
// alike, so one position serves both.
func (d *decoder) chromaPairAt(bx, by int) (p *chromaPair, sx, sy [8]uint8) {
	k := &d.clip
	c := &d.comps[1]
	cb, cbx, cby := d.chromaBlock(1, bx, by)
	for t := range 8 {
		sx[t] = uint8(((bx*8+t)*c.h/d.hmax - cbx*8) & 7)
		sy[t] = uint8(((by*8+t)*c.v/d.vmax - cby*8) & 7)
	}
	p = &k.scratch
	if cbx < len(k.chroma) {
		p = &k.chroma[cbx]
	}
	if p.cby == cby && p != &k.scratch {
		return p, sx, sy
	}
	cr, _, _ := d.chromaBlock(2, bx, by)
	p.cby = cby
	p.flat = d.chromaSamples(1, cb, &p.cb)
	p.flat = d.chromaSamples(2, cr, &p.cr) && p.flat
	for s := range 64 {
		b, r := p.cb[s], p.cr[s]
		// R = Y+1.402·Cr, G = Y−0.34414·Cb−0.71414·Cr, B = Y+1.772·Cb:
		// Y must be at least the most negative offset's opposite, and at
		// most 255 less the most positive.
		rr, gg, bb := 1.402*r, -0.34414*b-0.71414*r, 1.772*b
		lo, hi := -min(0, rr, gg, bb), max(0, rr, gg, bb)
		p.lo[s], p.hi[s] = lo, 255-hi
	}
	return p, sx, sy
}

// chromaSamples writes the samples of component ci's block blk (nil:
// never decoded, mid-grey) to out, clamped and level-shifted as the
// conversion to RGB takes them, and reports whether they are all alike
// (no AC terms: a flat area costs no transform).
func (d *decoder) chromaSamples(ci int, blk []int16, out *[64]float32) bool {
	if blk == nil {
		*out = [64]float32{}
		return true
	}
	var ac int16
	for _, v := range blk[1:64] {
		ac |= v
	}
	if ac == 0 {
		v := clamp255f(float32(blk[0])*d.clip.q[ci][0]/8+128) - 128
		for i := range out {
			out[i] = v
		}
		return true
	}
	idct8f(blk, d.clip.t[ci], out)
	for i, v := range out {
		out[i] = clamp255f(v) - 128
	}
	return false
}

// abs32 is |v|, by its sign bit: the builtin max orders NaNs and signed
// zeros, a cost in the bound every block takes.
func abs32(v float32) float32 {
	return math.Float32frombits(math.Float32bits(v) &^ (1 << 31))
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
