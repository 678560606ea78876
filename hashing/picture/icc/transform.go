package icc

import (
	"math"
	"sync"
)

// transform is the per-profile fast form of device → sRGB, built once.
//
//   - tfMatrix (matrix/TRC RGB): three 256-entry tables to linear light,
//     one 3×3 matrix (colorants then XYZ(D50) → linear sRGB) and a table
//     for sRGB's transfer curve. This is exact, not sampled.
//   - tfCLUT3, tfCLUT4 (LUT profiles): the LUT's leading per-channel
//     curves become 256-entry tables giving a position in a uniform grid
//     over which the rest of the pipeline (CLUT, matrices, curves, PCS
//     → sRGB) is sampled; pixels are interpolated tetrahedrally (and
//     linearly in the fourth, CMYK, dimension).
//   - tfGray: a 256-entry table, exact.
type transform struct {
	kind int

	lin [3][256]float32
	m   [9]float32
	off [3]float32

	pre   [4][256]gridPos
	g     int // grid points per dimension
	s     [4]int
	grid  []uint16 // sRGB, 8-bit values scaled by 256
	gray  [256]uint8
	gray3 [256][3]uint8 // RGB profiles: what a gray pixel (v,v,v) becomes

	identOnce sync.Once
	ident     bool
}

// gridPos is an input value's place in the sampled grid: the offset of the
// lower grid node (already multiplied by the dimension's stride) and the
// fraction towards the next node, 0..1<<16.
type gridPos struct {
	off  int32
	frac int32
}

const (
	tfMatrix = iota
	tfCLUT3
	tfCLUT4
	tfGray
)

// Grid sizes of the sampled pipeline. CLUTs of 2, 3, 5, 9, 17 (and 33 in
// three dimensions) points fall on grid nodes, so between the tetrahedral
// interpolation here and the multilinear one of the CLUT only the cells
// differ, and every curve or PCS non-linearity after the CLUT is sampled at
// least as finely as the CLUT itself.
const (
	grid3 = 33 // 33³×3×2 = 216 KB
	grid4 = 17 // 17⁴×3×2 = 501 KB
)

// encBits sets the size of the table for sRGB's transfer curve: 2^14
// entries keep the error under 0.15 of an 8-bit step even where the curve
// is steepest (slope 12.92 near black).
const (
	encBits = 14
	encSize = 1 << encBits
	encMax  = encSize - 1
)

var encTable = func() *[encSize]uint8 {
	var t [encSize]uint8
	for i := range t {
		t[i] = uint8(math.Round(255 * srgbEncode(float64(i)/encMax)))
	}
	return &t
}()

func (p *Profile) transform() *transform {
	p.once.Do(func() { p.tf = p.build() })
	return p.tf
}

// toXYZ runs the whole device → PCS XYZ transform in float64; used only to
// build tables.
func (p *Profile) toXYZ(v [4]float64) [3]float64 {
	if p.lut != nil {
		return p.lut.xyzFrom(0, v)
	}
	if p.space == sigGray {
		// The kTRC gives the PCS's achromatic value: Y for an XYZ PCS, L*
		// (0..1 for 0..100) for a Lab PCS (ICC.1:2010 §F.2).
		y := p.trc[0].eval(v[0])
		if p.pcs == sigLab {
			return labToXYZ(100*y, 0, 0)
		}
		return [3]float64{d50[0] * y, d50[1] * y, d50[2] * y}
	}
	lin := [3]float64{p.trc[0].eval(v[0]), p.trc[1].eval(v[1]), p.trc[2].eval(v[2])}
	return apply3(p.colorant, lin)
}

// xyzFrom runs stages[from:] on v and decodes the PCS.
func (lp *lutPipeline) xyzFrom(from int, v [4]float64) [3]float64 {
	for _, s := range lp.stages[from:] {
		s.apply(&v)
	}
	return decodePCS(lp.pcs, [3]float64{clamp01(v[0]), clamp01(v[1]), clamp01(v[2])})
}

// xyzToSRGB8 gives encoded sRGB scaled to 0..255 (not rounded), clamped.
func xyzToSRGB8(xyz [3]float64) [3]float64 {
	l := apply3(xyzToLinearSRGB, xyz)
	return [3]float64{255 * encodeFine(l[0]), 255 * encodeFine(l[1]), 255 * encodeFine(l[2])}
}

// encodeFine is srgbEncode by linear interpolation in a 4097-entry table:
// grids of up to 83521 nodes need three of them per node, and math.Pow was
// most of the cost. The error is below 1/50 of an 8-bit level.
func encodeFine(x float64) float64 {
	const n = len(encFine) - 1
	pos := clamp01(x) * float64(n)
	i := int(pos)
	if i >= n {
		return encFine[n]
	}
	return encFine[i] + (pos-float64(i))*(encFine[i+1]-encFine[i])
}

var encFine = func() (t [4097]float64) {
	for i := range t {
		t[i] = srgbEncode(float64(i) / float64(len(t)-1))
	}
	return t
}()

func (p *Profile) build() *transform {
	t := &transform{}
	switch {
	case p.space == sigGray:
		t.kind = tfGray
		for i := range t.gray {
			// A gray profile's PCS colour is (ideally) neutral; what a
			// gray output shows is its luminance Y relative to white.
			xyz := p.toXYZ([4]float64{float64(i) / 255})
			t.gray[i] = uint8(math.Round(255 * srgbEncode(xyz[1])))
		}
		return t
	case p.lut == nil:
		t.kind = tfMatrix
		for c := range t.lin {
			for i := range t.lin[c] {
				t.lin[c][i] = float32(p.trc[c].eval(float64(i) / 255))
			}
		}
		t.setMatrix(mul3(xyzToLinearSRGB, p.colorant), [3]float64{})
	default:
		if pre, mx, ok := p.lut.asMatrix(); ok {
			// A LUT that is only curves and a matrix (lutAtoB's "M,
			// matrix, B" with identity B curves) is a matrix/TRC profile
			// in disguise: convert it exactly rather than sampled, as a
			// grid over linear light would smear the darkest levels.
			t.kind = tfMatrix
			for c := range t.lin {
				for i := range t.lin[c] {
					x := float64(i) / 255
					for _, cs := range pre {
						x = cs[c].eval(x)
					}
					t.lin[c][i] = float32(x)
				}
			}
			const k = 65535.0 / 32768 // normalized u1Fixed15 XYZ
			var m [9]float64
			for i := range m {
				m[i] = k * mx.m[i]
			}
			off := apply3(xyzToLinearSRGB, [3]float64{k * mx.off[0], k * mx.off[1], k * mx.off[2]})
			t.setMatrix(mul3(xyzToLinearSRGB, m), off)
			break
		}
		t.buildGrid(p)
	}
	if p.space != sigRGB {
		return t
	}
	for i := range t.gray3 {
		v := uint8(i)
		px := [4]uint8{v, v, v, 255}
		t.rgbRow(px[:])
		t.gray3[i] = [3]uint8{px[0], px[1], px[2]}
	}
	return t
}

// setMatrix sets the matrix path's linear → linear sRGB affine map,
// clamping garbage so that no sum is NaN or overflows encIndex: inputs are
// in [0,1], so |sum| ≤ 4·1e4, times encMax < 2^31. Real coefficients are
// below 10.
func (t *transform) setMatrix(m [9]float64, off [3]float64) {
	fix := func(x float64) float32 {
		if math.IsNaN(x) {
			return 0
		}
		return float32(math.Max(-1e4, math.Min(1e4, x)))
	}
	for i := range m {
		t.m[i] = fix(m[i])
	}
	for i := range off {
		t.off[i] = fix(off[i])
	}
}

// asMatrix reports whether the pipeline is per-channel curves, then a
// matrix, then identity curves, with PCS XYZ; if so it returns the leading
// curves and the matrix. (The matrix's clamping of out-of-range values is
// then left to the final clamp, which only affects colours outside sRGB.)
func (lp *lutPipeline) asMatrix() ([]curves, *matrix3, bool) {
	if lp.pcs != pcsXYZ {
		return nil, nil, false
	}
	var pre []curves
	var mx *matrix3
	for _, s := range lp.stages {
		switch s := s.(type) {
		case curves:
			if len(s) != 3 {
				return nil, nil, false
			}
			if mx == nil {
				pre = append(pre, s)
				continue
			}
			for _, c := range s {
				if !c.isIdentity() {
					return nil, nil, false
				}
			}
		case *matrix3:
			if mx != nil {
				return nil, nil, false
			}
			mx = s
		default:
			return nil, nil, false
		}
	}
	return pre, mx, mx != nil
}

// buildGrid samples a LUT pipeline. Its first stage, when it is a set of
// per-channel curves (lut8/lut16 input tables, lutAtoB A curves or M
// curves), goes into the 256-entry pre tables; the rest is sampled.
func (t *transform) buildGrid(p *Profile) {
	n := p.channels
	lp := p.lut
	from := 0
	var pre curves
	if cs, ok := lp.stages[0].(curves); ok {
		pre, from = cs, 1
	}
	t.kind, t.g = tfCLUT3, grid3
	if n == 4 {
		t.kind, t.g = tfCLUT4, grid4
	}
	g := t.g
	stride := 3
	for c := n - 1; c >= 0; c-- {
		t.s[c] = stride
		stride *= g
	}
	for c := 0; c < n; c++ {
		for i := 0; i < 256; i++ {
			x := float64(i) / 255
			if pre != nil {
				x = pre[c].eval(x)
			}
			pos := x * float64(g-1)
			k := int(pos)
			if k > g-2 {
				k = g - 2
			}
			t.pre[c][i] = gridPos{off: int32(k * t.s[c]), frac: int32(math.Round((pos - float64(k)) * 65536))}
		}
	}
	t.grid = make([]uint16, stride)
	var idx [4]int
	for node := 0; node < stride; node += 3 {
		var v [4]float64
		for c := 0; c < n; c++ {
			v[c] = float64(idx[c]) / float64(g-1)
		}
		rgb := xyzToSRGB8(lp.xyzFrom(from, v))
		for k := range rgb {
			t.grid[node+k] = uint16(math.Round(rgb[k] * 256))
		}
		for c := n - 1; c >= 0; c-- { // next node, last channel fastest
			idx[c]++
			if idx[c] < g {
				break
			}
			idx[c] = 0
		}
	}
}

// rgbRow converts a row of non-premultiplied RGBA pixels in place; alpha
// is left alone.
func (t *transform) rgbRow(row []uint8) {
	switch t.kind {
	case tfMatrix:
		t.matrixRow(row)
	case tfCLUT3:
		t.clut3Row(row)
	}
}

func (t *transform) matrixRow(row []uint8) {
	m, o := &t.m, &t.off
	lr, lg, lb := &t.lin[0], &t.lin[1], &t.lin[2]
	enc := encTable
	for i := 0; i+4 <= len(row); i += 4 {
		px := row[i : i+4 : i+4]
		r, g, b := lr[px[0]], lg[px[1]], lb[px[2]]
		px[0] = enc[encIndex(m[0]*r+m[1]*g+m[2]*b+o[0])]
		px[1] = enc[encIndex(m[3]*r+m[4]*g+m[5]*b+o[1])]
		px[2] = enc[encIndex(m[6]*r+m[7]*g+m[8]*b+o[2])]
	}
}

// encIndex maps linear light to an index of encTable, clamping without
// branches. setMatrix bounds the coefficients so that |x·encMax| < 2^31.
func encIndex(x float32) int {
	i := int32(x*encMax + 0.5)
	i &^= i >> 31           // negative: 0
	i |= (encMax - i) >> 31 // above encMax: all ones
	return int(i & encMax)
}

func (t *transform) clut3Row(row []uint8) {
	p0, p1, p2 := &t.pre[0], &t.pre[1], &t.pre[2]
	for i := 0; i+4 <= len(row); i += 4 {
		px := row[i : i+4 : i+4]
		a, b, c := p0[px[0]], p1[px[1]], p2[px[2]]
		r, g, bl := t.tetra(int(a.off)+int(b.off)+int(c.off), int(a.frac), int(b.frac), int(c.frac), t.s[0], t.s[1], t.s[2])
		px[0], px[1], px[2] = to8(r), to8(g), to8(bl)
	}
}

// cmykRow converts a row of CMYK pixels in place to RGB with opaque alpha.
func (t *transform) cmykRow(row []uint8) {
	p0, p1, p2, p3 := &t.pre[0], &t.pre[1], &t.pre[2], &t.pre[3]
	for i := 0; i+4 <= len(row); i += 4 {
		px := row[i : i+4 : i+4]
		a, b, c, d := p0[px[0]], p1[px[1]], p2[px[2]], p3[px[3]]
		base := int(b.off) + int(c.off) + int(d.off)
		r0, g0, b0 := t.tetra(int(a.off)+base, int(b.frac), int(c.frac), int(d.frac), t.s[1], t.s[2], t.s[3])
		f := int(a.frac)
		if f != 0 {
			r1, g1, b1 := t.tetra(int(a.off)+t.s[0]+base, int(b.frac), int(c.frac), int(d.frac), t.s[1], t.s[2], t.s[3])
			r0 += (r1 - r0) * f >> 16
			g0 += (g1 - g0) * f >> 16
			b0 += (b1 - b0) * f >> 16
		}
		px[0], px[1], px[2], px[3] = to8(r0), to8(g0), to8(b0), 255
	}
}

// to8 rounds an interpolated grid value (8-bit scaled by 256·65536).
func to8(v int) uint8 {
	v = (v + 1<<23) >> 24
	if v > 255 {
		return 255
	}
	if v < 0 {
		return 0
	}
	return uint8(v)
}

// tetraOrder lists, for each outcome of the comparisons fx≥fy, fy≥fz,
// fx≥fz (bits 2, 1, 0), the axes from largest fraction to smallest. With
// ties any of the tied orders is right. Outcomes 1 (x<y<z but x≥z) and 6
// (x≥y≥z but x<z) cannot happen.
var tetraOrder = [8][3]uint8{
	0: {2, 1, 0},
	1: {2, 1, 0},
	2: {1, 2, 0},
	3: {1, 0, 2},
	4: {2, 0, 1},
	5: {0, 2, 1},
	6: {0, 1, 2},
	7: {0, 1, 2},
}

// tetra interpolates the grid inside the cube at c0 with strides s and
// fractions f (0..1<<16): the cube is cut into six tetrahedra along its
// main diagonal and the one holding the point is interpolated linearly,
// four nodes read instead of eight. The tetrahedron is picked by table,
// not by branches, which photographs' texture would mispredict.
func (t *transform) tetra(c0, fx, fy, fz, sx, sy, sz int) (int, int, int) {
	f := [4]int{fx, fy, fz}
	s := [4]int{sx, sy, sz}
	k := 0
	if fx >= fy {
		k |= 4
	}
	if fy >= fz {
		k |= 2
	}
	if fx >= fz {
		k |= 1
	}
	o := &tetraOrder[k]
	a, b, c := o[0]&3, o[1]&3, o[2]&3
	c1 := c0 + s[a]
	c2 := c1 + s[b]
	c3 := c2 + s[c]
	w1, w2, w3 := f[a], f[b], f[c]
	g := t.grid
	v0, v1, v2, v3 := g[c0:c0+3:c0+3], g[c1:c1+3:c1+3], g[c2:c2+3:c2+3], g[c3:c3+3:c3+3]
	r := int(v0[0])<<16 + (int(v1[0])-int(v0[0]))*w1 + (int(v2[0])-int(v1[0]))*w2 + (int(v3[0])-int(v2[0]))*w3
	gg := int(v0[1])<<16 + (int(v1[1])-int(v0[1]))*w1 + (int(v2[1])-int(v1[1]))*w2 + (int(v3[1])-int(v2[1]))*w3
	bb := int(v0[2])<<16 + (int(v1[2])-int(v0[2]))*w1 + (int(v2[2])-int(v1[2]))*w2 + (int(v3[2])-int(v2[2]))*w3
	return r, gg, bb
}

// grayRow maps gray bytes in place.
func (t *transform) grayRow(row []uint8) {
	tab := &t.gray
	for i, v := range row {
		row[i] = tab[v]
	}
}

// IsIdentity reports whether the profile is (near enough) sRGB so callers
// can skip the conversion: within ±1 in 8 bits on a grid of samples (every
// 15th level of each channel, 0 and 255 included, for RGB; every level for
// Gray). CMYK profiles never are.
func (p *Profile) IsIdentity() bool {
	t := p.transform()
	t.identOnce.Do(func() {
		switch t.kind {
		case tfGray:
			t.ident = true
			for i, v := range t.gray {
				if d := int(v) - i; d < -1 || d > 1 {
					t.ident = false
				}
			}
		case tfMatrix, tfCLUT3:
			var row []uint8
			for r := 0; r < 256; r += 15 {
				for g := 0; g < 256; g += 15 {
					for b := 0; b < 256; b += 15 {
						row = append(row, uint8(r), uint8(g), uint8(b), 255)
					}
				}
			}
			in := append([]uint8(nil), row...)
			t.rgbRow(row)
			t.ident = true
			for i := range row {
				if d := int(row[i]) - int(in[i]); d < -1 || d > 1 {
					t.ident = false
					break
				}
			}
		}
	})
	return t.ident
}
