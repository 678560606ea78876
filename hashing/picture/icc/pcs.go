package icc

import "math"

// The profile connection space (PCS) is CIE XYZ or CIELAB relative to the
// D50 illuminant (ICC.1:2010 §6.3). Every source profile takes device values
// to the PCS; the viewer's output is sRGB, so the last step is always
// PCS XYZ(D50) → linear sRGB → sRGB transfer curve.

// d50 is the PCS illuminant, ICC.1:2010 §7.2.16 (as encoded, s15Fixed16).
var d50 = [3]float64{0.9642, 1.0, 0.8249}

// xyzToLinearSRGB maps PCS XYZ (D50, white Y = 1) to linear sRGB.
var xyzToLinearSRGB = computeXYZToLinearSRGB()

// computeXYZToLinearSRGB derives the matrix from first principles: the sRGB
// primaries and D65 white of IEC 61966-2-1 give RGB→XYZ(D65); a Bradford
// chromatic adaptation D65→D50 (as ICC.1:2010 Annex E recommends for
// colorant tags) makes it RGB→XYZ(D50); its inverse is what we want. The
// colorants this produces are those every sRGB ICC profile carries
// (0.4361 0.2225 0.0139 …), so an sRGB profile round-trips to identity.
func computeXYZToLinearSRGB() [9]float64 {
	prim := [3][2]float64{{0.64, 0.33}, {0.30, 0.60}, {0.15, 0.06}}
	wx, wy := 0.3127, 0.3290
	d65 := [3]float64{wx / wy, 1, (1 - wx - wy) / wy}
	var p [9]float64 // columns: XYZ of each primary at Y = 1
	for i, c := range prim {
		x, y := c[0], c[1]
		p[i] = x / y
		p[3+i] = 1
		p[6+i] = (1 - x - y) / y
	}
	pinv, _ := inv3(p)
	s := apply3(pinv, d65) // scale each primary so that R=G=B=1 is white
	var rgbToXYZ65 [9]float64
	for r := 0; r < 3; r++ {
		for c := 0; c < 3; c++ {
			rgbToXYZ65[3*r+c] = p[3*r+c] * s[c]
		}
	}
	bradford := [9]float64{
		0.8951, 0.2664, -0.1614,
		-0.7502, 1.7135, 0.0367,
		0.0389, -0.0685, 1.0296,
	}
	binv, _ := inv3(bradford)
	src := apply3(bradford, d65)
	dst := apply3(bradford, d50)
	scale := [9]float64{dst[0] / src[0], 0, 0, 0, dst[1] / src[1], 0, 0, 0, dst[2] / src[2]}
	adapt := mul3(binv, mul3(scale, bradford))
	rgbToXYZ50 := mul3(adapt, rgbToXYZ65)
	m, _ := inv3(rgbToXYZ50)
	return m
}

func mul3(a, b [9]float64) [9]float64 {
	var m [9]float64
	for r := 0; r < 3; r++ {
		for c := 0; c < 3; c++ {
			m[3*r+c] = a[3*r]*b[c] + a[3*r+1]*b[3+c] + a[3*r+2]*b[6+c]
		}
	}
	return m
}

func apply3(m [9]float64, v [3]float64) [3]float64 {
	return [3]float64{
		m[0]*v[0] + m[1]*v[1] + m[2]*v[2],
		m[3]*v[0] + m[4]*v[1] + m[5]*v[2],
		m[6]*v[0] + m[7]*v[1] + m[8]*v[2],
	}
}

func inv3(m [9]float64) ([9]float64, bool) {
	c0 := m[4]*m[8] - m[5]*m[7]
	c1 := m[5]*m[6] - m[3]*m[8]
	c2 := m[3]*m[7] - m[4]*m[6]
	det := m[0]*c0 + m[1]*c1 + m[2]*c2
	if det == 0 || math.IsNaN(det) || math.IsInf(det, 0) {
		return [9]float64{}, false
	}
	d := 1 / det
	return [9]float64{
		c0 * d, (m[2]*m[7] - m[1]*m[8]) * d, (m[1]*m[5] - m[2]*m[4]) * d,
		c1 * d, (m[0]*m[8] - m[2]*m[6]) * d, (m[2]*m[3] - m[0]*m[5]) * d,
		c2 * d, (m[1]*m[6] - m[0]*m[7]) * d, (m[0]*m[4] - m[1]*m[3]) * d,
	}, true
}

// clamp01 clamps to [0,1]; NaN becomes 0.
func clamp01(x float64) float64 {
	if !(x > 0) {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// srgbEncode is the sRGB transfer function (IEC 61966-2-1), linear → encoded.
func srgbEncode(x float64) float64 {
	x = clamp01(x)
	if x <= 0.0031308 {
		return 12.92 * x
	}
	return 1.055*math.Pow(x, 1/2.4) - 0.055
}

// labToXYZ is CIELAB → XYZ relative to the D50 PCS white (ICC.1:2010 Annex A).
func labToXYZ(l, a, b float64) [3]float64 {
	fy := (l + 16) / 116
	fx := fy + a/500
	fz := fy - b/200
	return [3]float64{d50[0] * labFInv(fx), d50[1] * labFInv(fy), d50[2] * labFInv(fz)}
}

func labFInv(t float64) float64 {
	const e = 6.0 / 29
	if t > e {
		return t * t * t
	}
	return 3 * e * e * (t - 4.0/29)
}

// PCS encodings of a LUT's normalized [0,1] output.
const (
	pcsXYZ       = iota // u1Fixed15 XYZ: 1.0 is 0x8000 of 0xFFFF
	pcsLab              // 8-bit and v4 16-bit Lab: L 0..100, a/b -128..127
	pcsLabLegacy        // lut16Type (v2 and v4) Lab: L 100 at 0xFF00, a/b 0 at 0x8000
)

// decodePCS turns normalized LUT output into PCS XYZ (D50).
func decodePCS(enc int, v [3]float64) [3]float64 {
	switch enc {
	case pcsLab:
		return labToXYZ(v[0]*100, v[1]*255-128, v[2]*255-128)
	case pcsLabLegacy:
		return labToXYZ(v[0]*65535/65280*100, v[1]*65535/256-128, v[2]*65535/256-128)
	default:
		const k = 65535.0 / 32768
		return [3]float64{v[0] * k, v[1] * k, v[2] * k}
	}
}
