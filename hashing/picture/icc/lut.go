package icc

import (
	"fmt"
)

// A LUT-based transform (A2Bx tag) is a chain of stages on up to four
// normalized channels. They are evaluated in float64, only while a profile's
// lookup tables are built, never per pixel.
type stage interface {
	apply(v *[4]float64)
}

// curves applies one curve per channel.
type curves []*curve

func (cs curves) apply(v *[4]float64) {
	for i, c := range cs {
		v[i] = c.eval(v[i])
	}
}

// matrix3 is the 3×3 matrix plus offset of lutAtoBType (§10.12.4). Results
// are clamped to [0,1] as the following B curves expect.
type matrix3 struct {
	m   [9]float64
	off [3]float64
}

func (m *matrix3) apply(v *[4]float64) {
	x := apply3(m.m, [3]float64{v[0], v[1], v[2]})
	for i := range x {
		v[i] = clamp01(x[i] + m.off[i])
	}
}

// clut is a multidimensional colour lookup table, the first input channel
// varying slowest (§10.10, §10.12.3). Entries are normalized to 0..65535.
type clut struct {
	in, out int
	grid    [4]int
	stride  [4]int
	data    []uint16
}

// apply interpolates multilinearly. The ICC specification leaves the
// interpolation to the CMM; at grid nodes every method agrees, and the
// per-pixel grid holds every node of CLUTs of 2, 3, 5, 9 or 17 points (33
// too for RGB), so methods differ only inside cells.
func (c *clut) apply(v *[4]float64) {
	var idx [4]int
	var frac [4]float64
	for i := 0; i < c.in; i++ {
		g := c.grid[i]
		if g < 2 {
			continue // one node: constant in this dimension
		}
		x := clamp01(v[i]) * float64(g-1)
		k := int(x)
		if k > g-2 {
			k = g - 2
		}
		idx[i], frac[i] = k, x-float64(k)
	}
	var acc [3]float64
	for corner := 0; corner < 1<<c.in; corner++ {
		w := 1.0
		off := 0
		for i := 0; i < c.in; i++ {
			k := idx[i]
			if corner&(1<<i) != 0 {
				if frac[i] == 0 {
					w = 0
					break
				}
				w *= frac[i]
				k++
			} else {
				w *= 1 - frac[i]
			}
			off += k * c.stride[i]
		}
		if w == 0 {
			continue
		}
		for o := 0; o < c.out; o++ {
			acc[o] += w * float64(c.data[off+o])
		}
	}
	for o := 0; o < c.out; o++ {
		v[o] = acc[o] / 65535
	}
}

// newCLUT checks the grid against the bytes available before allocating:
// a hostile tag can declare 255^4 nodes in a few bytes.
func newCLUT(in, out int, grid []int, prec int, avail int) (*clut, error) {
	c := &clut{in: in, out: out}
	n := out
	for i := in - 1; i >= 0; i-- {
		g := grid[i]
		if g < 1 {
			return nil, fmt.Errorf("%w: CLUT grid dimension %d", ErrMalformed, g)
		}
		c.grid[i] = g
		c.stride[i] = n
		if n > MaxSize/(g*prec) {
			return nil, fmt.Errorf("%w: CLUT grid %v is absurd", ErrMalformed, grid[:in])
		}
		n *= g
		if n*prec > avail {
			return nil, fmt.Errorf("%w: CLUT grid %v of %d-byte entries exceeds its %d-byte tag", ErrMalformed, grid[:in], prec, avail)
		}
	}
	c.data = make([]uint16, n)
	return c, nil
}

// lutPipeline is a parsed A2Bx tag.
type lutPipeline struct {
	stages []stage
	pcs    int // encoding of the output: pcsXYZ, pcsLab, pcsLabLegacy
	typ    string
}

// parseLUT parses an A2Bx tag of type lut8Type, lut16Type or lutAtoBType
// with nIn input channels and three PCS output channels.
func parseLUT(t []byte, nIn int, pcsIsLab bool) (*lutPipeline, error) {
	if len(t) < 12 {
		return nil, fmt.Errorf("%w: A2B tag of %d bytes", ErrMalformed, len(t))
	}
	typ := string(t[:4])
	in, out := int(t[8]), int(t[9])
	if typ == "mft1" || typ == "mft2" || typ == "mAB " {
		if in != nIn || out != 3 {
			return nil, fmt.Errorf("%w: %s with %d→%d channels for a %d-channel colour space", ErrMalformed, typ, in, out, nIn)
		}
	}
	var (
		lp  *lutPipeline
		err error
	)
	switch typ {
	case "mft1":
		lp, err = parseLut8(t, in)
	case "mft2":
		lp, err = parseLut16(t, in)
	case "mAB ":
		lp, err = parseLutAtoB(t, in)
	default:
		return nil, fmt.Errorf("%w: A2B tag type %q", ErrUnsupported, typ)
	}
	if err != nil {
		return nil, err
	}
	lp.typ = typ
	switch {
	case !pcsIsLab:
		lp.pcs = pcsXYZ
	case typ == "mft2":
		lp.pcs = pcsLabLegacy
	default:
		lp.pcs = pcsLab
	}
	return lp, nil
}

// parseLut8 reads a lut8Type (§10.11): input tables, CLUT, output tables,
// all 8-bit. The matrix applies only to XYZ input, which a device colour
// space never is, so it is ignored.
func parseLut8(t []byte, in int) (*lutPipeline, error) {
	if len(t) < 48 {
		return nil, fmt.Errorf("%w: lut8 of %d bytes", ErrMalformed, len(t))
	}
	g := int(t[10])
	off := 48
	avail := len(t) - off - 256*in - 256*3
	if avail < 0 {
		return nil, fmt.Errorf("%w: lut8 tables truncated", ErrMalformed)
	}
	grid := []int{g, g, g, g}
	c, err := newCLUT(in, 3, grid, 1, avail)
	if err != nil {
		return nil, err
	}
	ins := make(curves, in)
	for i := range ins {
		base := off + 256*i
		ins[i] = tableCurve(256, func(j int) float64 { return float64(t[base+j]) / 255 })
	}
	off += 256 * in
	for i := range c.data {
		c.data[i] = uint16(t[off+i]) * 257
	}
	off += len(c.data)
	outs := make(curves, 3)
	for i := range outs {
		base := off + 256*i
		outs[i] = tableCurve(256, func(j int) float64 { return float64(t[base+j]) / 255 })
	}
	return &lutPipeline{stages: []stage{ins, c, outs}}, nil
}

// parseLut16 reads a lut16Type (§10.10): like lut8 with 16-bit entries and
// table sizes of its own.
func parseLut16(t []byte, in int) (*lutPipeline, error) {
	if len(t) < 52 {
		return nil, fmt.Errorf("%w: lut16 of %d bytes", ErrMalformed, len(t))
	}
	g := int(t[10])
	n, m := int(be16(t[48:])), int(be16(t[50:]))
	if n < 2 || m < 2 {
		return nil, fmt.Errorf("%w: lut16 tables of %d and %d entries", ErrMalformed, n, m)
	}
	off := 52
	avail := len(t) - off - 2*n*in - 2*m*3
	if avail < 0 {
		return nil, fmt.Errorf("%w: lut16 tables truncated", ErrMalformed)
	}
	grid := []int{g, g, g, g}
	c, err := newCLUT(in, 3, grid, 2, avail)
	if err != nil {
		return nil, err
	}
	ins := make(curves, in)
	for i := range ins {
		base := off + 2*n*i
		ins[i] = tableCurve(n, func(j int) float64 { return float64(be16(t[base+2*j:])) / 65535 })
	}
	off += 2 * n * in
	for i := range c.data {
		c.data[i] = be16(t[off+2*i:])
	}
	off += 2 * len(c.data)
	outs := make(curves, 3)
	for i := range outs {
		base := off + 2*m*i
		outs[i] = tableCurve(m, func(j int) float64 { return float64(be16(t[base+2*j:])) / 65535 })
	}
	return &lutPipeline{stages: []stage{ins, c, outs}}, nil
}

// parseLutAtoB reads a lutAtoBType (§10.12): A curves → CLUT → M curves →
// matrix → B curves, each element optional but B. Elements are found by
// their offsets from the start of the tag.
func parseLutAtoB(t []byte, in int) (*lutPipeline, error) {
	if len(t) < 32 {
		return nil, fmt.Errorf("%w: lutAtoB of %d bytes", ErrMalformed, len(t))
	}
	offB, offMat, offM := int(be32(t[12:])), int(be32(t[16:])), int(be32(t[20:]))
	offCLUT, offA := int(be32(t[24:])), int(be32(t[28:]))
	for _, o := range []int{offB, offMat, offM, offCLUT, offA} {
		if o < 0 || o >= len(t) {
			return nil, fmt.Errorf("%w: lutAtoB element offset %d outside its %d-byte tag", ErrMalformed, o, len(t))
		}
	}
	if offB == 0 {
		return nil, fmt.Errorf("%w: lutAtoB without B curves", ErrMalformed)
	}
	if offCLUT == 0 && in != 3 {
		return nil, fmt.Errorf("%w: lutAtoB with %d inputs and no CLUT", ErrMalformed, in)
	}
	var stages []stage
	if offA != 0 {
		a, err := parseCurves(t, offA, in)
		if err != nil {
			return nil, err
		}
		stages = append(stages, curves(a))
	}
	if offCLUT != 0 {
		if offCLUT > len(t)-20 {
			return nil, fmt.Errorf("%w: lutAtoB CLUT header truncated", ErrMalformed)
		}
		d := t[offCLUT:]
		prec := int(d[16])
		if prec != 1 && prec != 2 {
			return nil, fmt.Errorf("%w: lutAtoB CLUT precision %d", ErrMalformed, prec)
		}
		grid := make([]int, in)
		for i := range grid {
			grid[i] = int(d[i])
		}
		c, err := newCLUT(in, 3, grid, prec, len(d)-20)
		if err != nil {
			return nil, err
		}
		for i := range c.data {
			if prec == 1 {
				c.data[i] = uint16(d[20+i]) * 257
			} else {
				c.data[i] = be16(d[20+2*i:])
			}
		}
		stages = append(stages, c)
	}
	if offM != 0 {
		m, err := parseCurves(t, offM, 3)
		if err != nil {
			return nil, err
		}
		stages = append(stages, curves(m))
	}
	if offMat != 0 {
		if offMat > len(t)-48 {
			return nil, fmt.Errorf("%w: lutAtoB matrix truncated", ErrMalformed)
		}
		mx := &matrix3{}
		for i := range mx.m {
			mx.m[i] = s15f16(t[offMat+4*i:])
		}
		for i := range mx.off {
			mx.off[i] = s15f16(t[offMat+36+4*i:])
		}
		stages = append(stages, mx)
	}
	b, err := parseCurves(t, offB, 3)
	if err != nil {
		return nil, err
	}
	stages = append(stages, curves(b))
	return &lutPipeline{stages: stages}, nil
}
