package jpegx

import "math"

// Inverse DCTs. The full 8x8 one is the Arai-Agui-Nakajima factorisation
// in float32 with the AAN output scaling folded into the dequantisation
// table; the reduced ones (4x4, 2x2, 1x1) evaluate the 8-point IDCT of the
// low-frequency corner at the centres of 2x2, 4x4 and 8x8 pixel groups,
// i.e. the N-point IDCT of the N×N lowest coefficients.

// aanScale[k] = cos(k*pi/16)*sqrt(2) for k>0, 1 for k=0.
var aanScale = func() (s [8]float64) {
	s[0] = 1
	for k := 1; k < 8; k++ {
		s[k] = math.Cos(float64(k)*math.Pi/16) * math.Sqrt2
	}
	return s
}()

// reducedMatrix[N][x][u] = C(u)/2 * cos((2x+1)u*pi/(2N)), C(0) = 1/sqrt2.
var reduced2 = reducedMatrix(2)

func reducedMatrix(n int) [][]float32 {
	m := make([][]float32, n)
	for x := range n {
		m[x] = make([]float32, n)
		for u := range n {
			c := 1.0
			if u == 0 {
				c = 1 / math.Sqrt2
			}
			m[x][u] = float32(c / 2 * math.Cos(float64((2*x+1)*u)*math.Pi/float64(2*n)))
		}
	}
	return m
}

// zigzag index of natural (row, col) for the reduced corners.
var zigOf = func() (z [64]int) {
	for i, n := range unzig {
		z[n] = i
	}
	return z
}()

// idctTables are a component's dequantisation tables.
type idctTables struct {
	aan   [64]float32 // by natural index: q * aanScale[row] * aanScale[col] / 8
	plain [64]float32 // by zig-zag index: q
	q4    [16]float32 // 4x4 corner by v*4+u: q * s(v) * s(u)
	q0    int32
	// dcShift: a flat block's value is (dc*q0 + round) >> dcShift.
	dcShift uint
}

// makeIDCTTables builds the tables for quantisation table q. 12-bit data
// is brought to 8 bits by folding the /16 into the tables: the IDCT is
// linear and the level shift 2048/16 is the 8-bit 128.
func makeIDCTTables(q *[64]uint16, precision int) *idctTables {
	t := &idctTables{q0: int32(q[0]), dcShift: 3}
	scale := 1.0
	if precision == 12 {
		scale = 1.0 / 16
		t.dcShift = 7
	}
	for z := range 64 {
		n := unzig[z]
		r, c := n/8, n%8
		t.aan[n] = float32(float64(q[z]) * scale * aanScale[r] * aanScale[c] / 8)
		t.plain[z] = float32(float64(q[z]) * scale)
	}
	// 4-point IDCT factors: C(u)/2, times cos(pi/4) for u=2.
	s4 := [4]float64{0.5 / math.Sqrt2, 0.5, 0.5 / math.Sqrt2, 0.5}
	for v := range 4 {
		for u := range 4 {
			t.q4[v*4+u] = float32(float64(q[zigOf[v*8+u]]) * scale * s4[v] * s4[u])
		}
	}
	return t
}

func clampByte(v float32) byte {
	// +128 level shift and round half up; float→int truncates towards
	// zero, which only matters below 0 where the clamp applies anyway.
	i := int32(v + 128.5)
	if uint32(i) > 255 {
		if i < 0 {
			return 0
		}
		return 255
	}
	return byte(i)
}

// idct8 writes the 8x8 block of natural-order coefficients blk to dst.
func idct8(blk []int16, t *idctTables, dst []byte, stride int) {
	blk = blk[:64]
	q := &t.aan
	var ws [64]float32
	ac := blk[1] | blk[2] | blk[3] | blk[4] | blk[5] | blk[6] | blk[7]
	// Columns, dequantising on the way in.
	for c := range 8 {
		colAC := blk[8+c] | blk[16+c] | blk[24+c] | blk[32+c] | blk[40+c] | blk[48+c] | blk[56+c]
		if colAC == 0 {
			v := float32(blk[c]) * q[c]
			ws[c], ws[8+c], ws[16+c], ws[24+c], ws[32+c], ws[40+c], ws[48+c], ws[56+c] = v, v, v, v, v, v, v, v
			continue
		}
		ac |= colAC
		o0, o1, o2, o3, o4, o5, o6, o7 := aan1D(
			float32(blk[c])*q[c], float32(blk[8+c])*q[8+c], float32(blk[16+c])*q[16+c], float32(blk[24+c])*q[24+c],
			float32(blk[32+c])*q[32+c], float32(blk[40+c])*q[40+c], float32(blk[48+c])*q[48+c], float32(blk[56+c])*q[56+c])
		ws[c], ws[8+c], ws[16+c], ws[24+c], ws[32+c], ws[40+c], ws[48+c], ws[56+c] = o0, o1, o2, o3, o4, o5, o6, o7
	}
	if ac == 0 {
		// Flat block: the common case in smooth areas.
		v := clampByte(ws[0])
		for y := range 8 {
			row := dst[y*stride : y*stride+8]
			row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7] = v, v, v, v, v, v, v, v
		}
		return
	}
	// Rows.
	for y := range 8 {
		r := ws[y*8 : y*8+8]
		o0, o1, o2, o3, o4, o5, o6, o7 := aan1D(r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7])
		out := dst[y*stride : y*stride+8]
		out[0] = clampByte(o0)
		out[1] = clampByte(o1)
		out[2] = clampByte(o2)
		out[3] = clampByte(o3)
		out[4] = clampByte(o4)
		out[5] = clampByte(o5)
		out[6] = clampByte(o6)
		out[7] = clampByte(o7)
	}
}

// aan1D is the 8-point AAN inverse DCT of inputs pre-scaled by aanScale.
func aan1D(i0, i1, i2, i3, i4, i5, i6, i7 float32) (o0, o1, o2, o3, o4, o5, o6, o7 float32) {
	// Even half.
	e10 := i0 + i4
	e11 := i0 - i4
	e13 := i2 + i6
	e12 := (i2-i6)*1.414213562 - e13
	e0 := e10 + e13
	e3 := e10 - e13
	e1 := e11 + e12
	e2 := e11 - e12
	// Odd half.
	z13 := i5 + i3
	z10 := i5 - i3
	z11 := i1 + i7
	z12 := i1 - i7
	t7 := z11 + z13
	t11 := (z11 - z13) * 1.414213562
	z5 := (z10 + z12) * 1.847759065
	t10 := z12*1.082392200 - z5
	t12 := z10*-2.613125930 + z5
	t6 := t12 - t7
	t5 := t11 - t6
	t4 := t10 + t5
	return e0 + t7, e1 + t6, e2 + t5, e3 - t4, e3 + t4, e2 - t5, e1 - t6, e0 - t7
}

// idct4 writes the 4x4 reduction of blk (at least 25 zig-zag
// coefficients): the 4-point IDCT of the 4x4 corner, a butterfly of six
// multiplies per line, with C(u)/2 and the u=2 cosine folded into the
// dequantisation table q4.
func idct4(blk []int16, t *idctTables, dst []byte, stride int) {
	blk = blk[:25]
	q := &t.q4
	var f [16]float32
	ac := int16(0)
	for i, z := range zig4 {
		if c := blk[z]; c != 0 {
			f[i] = float32(c) * q[i]
			if i != 0 {
				ac |= c
			}
		}
	}
	if ac == 0 {
		b := dcPixel(blk[0], t)
		for y := range 4 {
			row := dst[y*stride : y*stride+4]
			row[0], row[1], row[2], row[3] = b, b, b, b
		}
		return
	}
	// Rows (u across), in place.
	for v := range 4 {
		r := f[v*4 : v*4+4]
		r[0], r[1], r[2], r[3] = idct4Line(r[0], r[1], r[2], r[3])
	}
	// Columns, out to pixels.
	for x := range 4 {
		o0, o1, o2, o3 := idct4Line(f[x], f[4+x], f[8+x], f[12+x])
		dst[x] = clampByte(o0)
		dst[stride+x] = clampByte(o1)
		dst[2*stride+x] = clampByte(o2)
		dst[3*stride+x] = clampByte(o3)
	}
}

const (
	cos1_8 = 0.9238795325112867 // cos(pi/8)
	cos3_8 = 0.3826834323650898 // cos(3pi/8)
)

func idct4Line(f0, f1, f2, f3 float32) (float32, float32, float32, float32) {
	e0, e1 := f0+f2, f0-f2
	o0 := cos1_8*f1 + cos3_8*f3
	o1 := cos3_8*f1 - cos1_8*f3
	return e0 + o0, e1 + o1, e1 - o1, e0 - o0
}

// zig4[v*4+u] is the zig-zag index of coefficient (v, u) of the 4x4 corner.
var zig4 = func() (z [16]int) {
	for v := range 4 {
		for u := range 4 {
			z[v*4+u] = zigOf[v*8+u]
		}
	}
	return z
}()

// idct2 writes the 2x2 reduction of blk (at least 5 zig-zag coefficients).
func idct2(blk []int16, t *idctTables, dst []byte, stride int) {
	f00 := float32(blk[0]) * t.plain[0]
	f01 := float32(blk[1]) * t.plain[1] // (0,1): horizontal
	f10 := float32(blk[2]) * t.plain[2] // (1,0): vertical
	f11 := float32(blk[4]) * t.plain[4]
	m := reduced2
	// tmp[v][x]
	t00 := m[0][0]*f00 + m[0][1]*f01
	t01 := m[1][0]*f00 + m[1][1]*f01
	t10 := m[0][0]*f10 + m[0][1]*f11
	t11 := m[1][0]*f10 + m[1][1]*f11
	dst[0] = clampByte(m[0][0]*t00 + m[0][1]*t10)
	dst[1] = clampByte(m[0][0]*t01 + m[0][1]*t11)
	dst[stride] = clampByte(m[1][0]*t00 + m[1][1]*t10)
	dst[stride+1] = clampByte(m[1][0]*t01 + m[1][1]*t11)
}

func dcPixel(dc int16, t *idctTables) byte {
	v := (int32(dc)*t.q0 + 1<<(t.dcShift-1)) >> t.dcShift
	v += 128
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return byte(v)
}

// idctTablesFor returns the component's dequantisation tables: the
// latched ones, or the current table for a component no scan reached.
func (d *decoder) idctTablesFor(c *component) *idctTables {
	q := c.q
	if !c.latched && c.tq < 4 {
		q = d.qt[c.tq]
	}
	return makeIDCTTables(&q, d.precision)
}

// newPlane allocates a component's sample plane at the decoder's scale:
// bw*bs × bh*bs bytes, stride bw*bs.
func (d *decoder) newPlane(c *component) (plane []byte, stride int) {
	bs := 8 / d.scale
	stride = c.bw * bs
	return make([]byte, stride*c.bh*bs), stride
}

// idctComponent turns a component's stored coefficients into its plane.
func (d *decoder) idctComponent(c *component) (plane []byte, stride int) {
	plane, stride = d.newPlane(c)
	d.idctRows(c, d.idctTablesFor(c), c.coef, plane, stride, 0, c.bh)
	return plane, stride
}

// idctRows transforms nrows block rows held in coef (starting with block
// row by0 of the component) into plane.
func (d *decoder) idctRows(c *component, t *idctTables, coef []int16, plane []byte, stride, by0, nrows int) {
	bs := 8 / d.scale
	K := d.kstore
	for r := range nrows {
		rowBase := (by0 + r) * bs * stride
		for bx := range c.bw {
			bi := r*c.bw + bx
			blk := coef[bi*K : bi*K+K]
			dst := plane[rowBase+bx*bs:]
			switch bs {
			case 8:
				idct8(blk, t, dst, stride)
			case 4:
				idct4(blk, t, dst, stride)
			case 2:
				idct2(blk, t, dst, stride)
			default:
				dst[0] = dcPixel(blk[0], t)
			}
		}
	}
}
