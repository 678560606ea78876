package icc

import (
	"fmt"
	"math"
)

// curve is a one-dimensional transfer function on [0,1]: a curveType
// ('curv', ICC.1:2010 §10.5) or parametricCurveType ('para', §10.15), or a
// lut8/lut16 input or output table.
type curve struct {
	kind  int
	gamma float64    // curveGamma
	table []float64  // curveTable: normalized entries, len ≥ 2
	ptype int        // curvePara: function type 0..4
	p     [7]float64 // curvePara: g a b c d e f
}

const (
	curveIdentity = iota
	curveGamma
	curveTable
	curvePara
)

// eval maps x (clamped to [0,1]) through the curve; the result is clamped
// to [0,1] too, so garbage parameters give garbage but finite values.
func (c *curve) eval(x float64) float64 {
	x = clamp01(x)
	switch c.kind {
	case curveGamma:
		return clamp01(math.Pow(x, c.gamma))
	case curveTable:
		// Entries are equally spaced over [0,1]; linear interpolation
		// between them (§10.5). Decreasing tables are as valid as
		// increasing ones: they are how a stored negative is shown as a
		// positive.
		n := len(c.table)
		pos := x * float64(n-1)
		i := int(pos)
		if i >= n-1 {
			return c.table[n-1]
		}
		f := pos - float64(i)
		return c.table[i] + f*(c.table[i+1]-c.table[i])
	case curvePara:
		return clamp01(c.para(x))
	}
	return x
}

// para evaluates the parametric curve functions of ICC.1:2010 Table 65.
// math.Pow of a negative base gives NaN, which clamp01 turns into 0.
func (c *curve) para(x float64) float64 {
	g, a, b, cc, d, e, f := c.p[0], c.p[1], c.p[2], c.p[3], c.p[4], c.p[5], c.p[6]
	switch c.ptype {
	case 0:
		return math.Pow(x, g)
	case 1:
		if x >= -b/a {
			return math.Pow(a*x+b, g)
		}
		return 0
	case 2:
		if x >= -b/a {
			return math.Pow(a*x+b, g) + cc
		}
		return cc
	case 3:
		if x >= d {
			return math.Pow(a*x+b, g)
		}
		return cc * x
	default:
		if x >= d {
			return math.Pow(a*x+b, g) + e
		}
		return cc*x + f
	}
}

// isIdentity reports whether the curve is y = x within a 16-bit step.
func (c *curve) isIdentity() bool {
	if c.kind == curveIdentity {
		return true
	}
	for i := 0; i <= 256; i++ {
		x := float64(i) / 256
		if d := c.eval(x) - x; d > 1.0/65535 || d < -1.0/65535 {
			return false
		}
	}
	return true
}

// paraParams is the number of s15Fixed16 parameters of each function type.
var paraParams = [5]int{1, 3, 4, 5, 7}

// parseCurve reads a curv or para element at t[off:]. It returns the
// curve and the element's length in bytes (without padding).
func parseCurve(t []byte, off int) (*curve, int, error) {
	if off < 0 || off > len(t)-12 {
		return nil, 0, fmt.Errorf("%w: curve outside its tag", ErrMalformed)
	}
	d := t[off:]
	switch string(d[:4]) {
	case "curv":
		n := be32(d[8:])
		if n > uint32(len(d)-12)/2 {
			return nil, 0, fmt.Errorf("%w: curv of %d entries in %d bytes", ErrMalformed, n, len(d))
		}
		size := 12 + 2*int(n)
		switch n {
		case 0:
			return &curve{kind: curveIdentity}, size, nil
		case 1:
			g := float64(be16(d[12:])) / 256 // u8Fixed8Number
			return &curve{kind: curveGamma, gamma: g}, size, nil
		}
		tab := make([]float64, n)
		for i := range tab {
			tab[i] = float64(be16(d[12+2*i:])) / 65535
		}
		return &curve{kind: curveTable, table: tab}, size, nil
	case "para":
		typ := int(be16(d[8:]))
		if typ > 4 {
			return nil, 0, fmt.Errorf("%w: para function type %d", ErrUnsupported, typ)
		}
		np := paraParams[typ]
		size := 12 + 4*np
		if size > len(d) {
			return nil, 0, fmt.Errorf("%w: para type %d truncated", ErrMalformed, typ)
		}
		c := &curve{kind: curvePara, ptype: typ}
		for i := 0; i < np; i++ {
			c.p[i] = s15f16(d[12+4*i:])
		}
		return c, size, nil
	}
	return nil, 0, fmt.Errorf("%w: curve type %q", ErrUnsupported, d[:4])
}

// parseCurves reads n curves stored one after another, each padded to a
// multiple of four bytes (lutAtoBType, §10.12).
func parseCurves(t []byte, off, n int) ([]*curve, error) {
	cs := make([]*curve, n)
	for i := range cs {
		c, size, err := parseCurve(t, off)
		if err != nil {
			return nil, err
		}
		cs[i] = c
		off += (size + 3) &^ 3
	}
	return cs, nil
}

// tableCurve builds a curve from lut8/lut16 table entries read by get.
func tableCurve(n int, get func(i int) float64) *curve {
	tab := make([]float64, n)
	for i := range tab {
		tab[i] = get(i)
	}
	return &curve{kind: curveTable, table: tab}
}
