package icc

import (
	"errors"
	"image"
	"math"
	"strings"
	"testing"
)

// Profiles as attackers and ordinary cameras write them.

func srgbMatrixTags(trc []byte) []tag {
	c := srgbColorants
	return []tag{
		{"rXYZ", xyzTag(c[0][0], c[0][1], c[0][2])},
		{"gXYZ", xyzTag(c[1][0], c[1][1], c[1][2])},
		{"bXYZ", xyzTag(c[2][0], c[2][1], c[2][2])},
		{"rTRC", trc}, {"gTRC", trc}, {"bTRC", trc},
		{"wtpt", xyzTag(0.9642, 1, 0.8249)},
	}
}

func matrixProfile(major byte, trc []byte) []byte {
	return buildProfile(major, "mntr", "RGB ", "XYZ ", srgbMatrixTags(trc)...)
}

// srgbPara is sRGB's curve as parametric function type 3.
var srgbPara = paraTag(3, 2.4, 1/1.055, 0.055/1.055, 1/12.92, 0.04045)

// invert applies f to the negative: the stored value x shows as f(1-x).
func invert(f func(float64) float64) func(float64) float64 {
	return func(x float64) float64 { return f(1 - x) }
}

func negative(rgb [3]float64) [3]float64 { return [3]float64{1 - rgb[0], 1 - rgb[1], 1 - rgb[2]} }

// labCLUT samples "device value → Lab of the sRGB colour dev(v)".
func labCLUT(n, g int, enc func([3]float64) [3]float64, dev func(v []float64) [3]float64) []uint16 {
	return to16(gridNodes(n, g, func(v []float64) [3]float64 { return enc(xyzToLab(srgbToXYZ(dev(v)))) }))
}

func rgbOf(v []float64) [3]float64 { return [3]float64{v[0], v[1], v[2]} }

// cmykToRGB is the naive device CMYK of the CMYK test profiles.
func cmykToRGB(v []float64) [3]float64 {
	k := 1 - v[3]
	return [3]float64{(1 - v[0]) * k, (1 - v[1]) * k, (1 - v[2]) * k}
}

// cmykOf stores a picture in that naive CMYK.
func cmykOf(src *image.NRGBA) *image.CMYK {
	dst := image.NewCMYK(src.Rect)
	for i := 0; i < len(src.Pix); i += 4 {
		r, g, b := float64(src.Pix[i])/255, float64(src.Pix[i+1])/255, float64(src.Pix[i+2])/255
		k := 1 - math.Max(r, math.Max(g, b))
		c, m, y := 0.0, 0.0, 0.0
		if k < 1 {
			c, m, y = (1-r-k)/(1-k), (1-g-k)/(1-k), (1-b-k)/(1-k)
		}
		dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = q8(c), q8(m), q8(y), q8(k)
	}
	return dst
}

func opaque(img *image.NRGBA) *image.NRGBA {
	o := image.NewNRGBA(img.Rect)
	copy(o.Pix, img.Pix)
	for i := 3; i < len(o.Pix); i += 4 {
		o.Pix[i] = 255
	}
	return o
}

type convCase struct {
	name     string
	profile  []byte
	stored   image.Image // the pixels as decoded, e.g. the negative
	want     image.Image // what a viewer shows: the intended picture
	maxErr   int         // per channel, 8-bit levels
	meanErr  float64
	identity bool
}

func convCases() []convCase {
	pic := photo(96, 64)
	gray := grayOf(pic)
	linearOf := mapNRGBA(pic, func(c [3]float64) [3]float64 { return [3]float64{decode(c[0]), decode(c[1]), decode(c[2])} })
	gamma22Of := mapNRGBA(pic, func(c [3]float64) [3]float64 {
		return [3]float64{math.Pow(decode(c[0]), 1/2.2), math.Pow(decode(c[1]), 1/2.2), math.Pow(decode(c[2]), 1/2.2)}
	})
	neg := mapNRGBA(pic, negative)
	linearNeg := mapNRGBA(linearOf, negative)
	invTable := func(n int) []byte { return curvFunc(n, invert(decode)) }
	lStar := func(x float64) float64 { return xyzToLab([3]float64{0, decode(x), 0})[0] / 100 }

	return []convCase{
		{name: "sRGB matrix/TRC, curv table", profile: matrixProfile(2, curvFunc(1024, decode)),
			stored: pic, want: pic, maxErr: 1, meanErr: 0.1, identity: true},
		{name: "sRGB matrix/TRC, para type 3", profile: matrixProfile(4, srgbPara),
			stored: pic, want: pic, maxErr: 1, meanErr: 0.1, identity: true},
		// Linear data in 8 bits loses the darkest levels: the loose
		// maximum is that quantization, not the conversion.
		{name: "gamma 1.0 linear", profile: matrixProfile(2, gammaTag(1)),
			stored: linearOf, want: pic, maxErr: 7, meanErr: 0.5},
		{name: "gamma 1.0 as curv with no entries", profile: matrixProfile(4, curvTag()),
			stored: linearOf, want: pic, maxErr: 7, meanErr: 0.5},
		{name: "para type 0 gamma 2.2", profile: matrixProfile(4, paraTag(0, 2.2)),
			stored: gamma22Of, want: pic, maxErr: 2, meanErr: 0.3},
		{name: "para type 1 (no linear segment)", profile: matrixProfile(4, paraTag(1, 2.4, 1/1.055, 0.055/1.055)),
			stored: pic, want: pic, maxErr: 3, meanErr: 0.2},
		{name: "para type 2 (offset below the threshold)", profile: matrixProfile(4, paraTag(2, 2.4, 1/1.055, 0.055/1.055, 0)),
			stored: pic, want: pic, maxErr: 3, meanErr: 0.2},
		{name: "para type 4", profile: matrixProfile(4, paraTag(4, 2.4, 1/1.055, 0.055/1.055, 1/12.92, 0.04045, 0, 0)),
			stored: pic, want: pic, maxErr: 1, meanErr: 0.1, identity: true},
		// The attack: decreasing TRC tables show the stored negative as
		// the photo.
		{name: "INVERTING curv, 4096 entries, v2", profile: matrixProfile(2, invTable(4096)),
			stored: neg, want: pic, maxErr: 1, meanErr: 0.1},
		{name: "INVERTING curv, 256 entries, v4", profile: matrixProfile(4, invTable(256)),
			stored: neg, want: pic, maxErr: 2, meanErr: 0.3},
		{name: "INVERTING para type 4 (1-x, linear)", profile: matrixProfile(4, paraTag(4, 1, -1, 1, 0, 0, 0, 0)),
			stored: linearNeg, want: pic, maxErr: 7, meanErr: 0.5},
		{name: "INVERTING gray kTRC", profile: buildProfile(2, "mntr", "GRAY", "XYZ ", tag{"kTRC", curvFunc(1024, invert(decode))}),
			stored: mapGray(gray, func(v float64) float64 { return 1 - v }), want: gray, maxErr: 1, meanErr: 0.1},
		{name: "gray kTRC with PCS Lab (kTRC gives L*)", profile: buildProfile(2, "mntr", "GRAY", "Lab ", tag{"kTRC", curvFunc(1024, lStar)}),
			stored: gray, want: gray, maxErr: 1, meanErr: 0.1, identity: true},
		{name: "INVERTING mft2, PCS Lab", profile: buildProfile(2, "mntr", "RGB ", "Lab ",
			tag{"A2B0", mft2Tag(3, 17,
				[][]uint16{{65535, 0}, {65535, 0}, {65535, 0}}, // the decreasing input tables invert
				labCLUT(3, 17, labLegacy, rgbOf),
				[][]uint16{{0, 65535}, {0, 65535}, {0, 65535}})}),
			stored: neg, want: pic, maxErr: 2, meanErr: 0.3},
		{name: "INVERTING mAB, PCS Lab, 16-bit CLUT", profile: buildProfile(4, "mntr", "RGB ", "Lab ",
			tag{"A2B0", mab{in: 3,
				a:    [][]byte{curvTag(65535, 0), curvTag(65535, 0), curvTag(65535, 0)},
				grid: []int{17, 17, 17}, prec: 2, clut: labCLUT(3, 17, labV4, rgbOf),
				b: [][]byte{curvTag(), curvTag(), curvTag()}}.tag()}),
			stored: neg, want: pic, maxErr: 2, meanErr: 0.3},
		{name: "INVERTING mAB, PCS Lab, 8-bit CLUT, para A curves", profile: buildProfile(4, "mntr", "RGB ", "Lab ",
			tag{"A2B0", mab{in: 3,
				a:    [][]byte{paraTag(4, 1, -1, 1, 0, 0, 0, 0), paraTag(4, 1, -1, 1, 0, 0, 0, 0), paraTag(4, 1, -1, 1, 0, 0, 0, 0)},
				grid: []int{17, 9, 17}, prec: 1, clut: labCLUT3(17, 9, 17),
				b: [][]byte{curvTag(), gammaTag(1), paraTag(0, 1)}}.tag()}),
			// The test's own coarse 8-bit Lab CLUT is off by up to ten
			// levels in dark saturated colours; the float pipeline agrees.
			stored: neg, want: pic, maxErr: 12, meanErr: 0.8},
		{name: "INVERTING mAB M curves + matrix, PCS XYZ", profile: buildProfile(4, "mntr", "RGB ", "XYZ ",
			tag{"A2B0", mab{in: 3,
				m:      [][]byte{curvFunc(1024, invert(decode)), curvFunc(1024, invert(decode)), curvFunc(1024, invert(decode))},
				matrix: xyzMatrix(),
				b:      [][]byte{curvTag(), curvTag(), curvTag()}}.tag()}),
			stored: neg, want: pic, maxErr: 1, meanErr: 0.2},
		{name: "A2B0 preferred over an inverting matrix/TRC", profile: buildProfile(4, "mntr", "RGB ", "Lab ",
			append(srgbMatrixTags(invTable(256)), tag{"A2B0", mab{in: 3,
				grid: []int{17, 17, 17}, prec: 2, clut: labCLUT(3, 17, labV4, rgbOf),
				b: [][]byte{curvTag(), curvTag(), curvTag()}}.tag()})...),
			stored: pic, want: pic, maxErr: 2, meanErr: 0.3},
		{name: "CMYK lut8, PCS Lab", profile: buildProfile(2, "prtr", "CMYK", "Lab ",
			tag{"A2B0", mft1Tag(4, 9, to8s(labCLUT(4, 9, labV4, cmykToRGB)))}),
			stored: cmykOf(pic), want: opaque(pic), maxErr: 12, meanErr: 1.2},
		{name: "CMYK mAB, PCS Lab", profile: buildProfile(4, "prtr", "CMYK", "Lab ",
			tag{"A2B0", mab{in: 4,
				a:    [][]byte{curvTag(), curvTag(), curvTag(), curvTag()},
				grid: []int{9, 9, 9, 9}, prec: 2, clut: labCLUT(4, 9, labV4, cmykToRGB),
				b: [][]byte{curvTag(), curvTag(), curvTag()}}.tag()}),
			stored: cmykOf(pic), want: opaque(pic), maxErr: 8, meanErr: 1},
	}
}

// labCLUT3 is labCLUT on a grid with a different size per dimension.
func labCLUT3(g0, g1, g2 int) []uint16 {
	var out []float64
	for i := 0; i < g0; i++ {
		for j := 0; j < g1; j++ {
			for k := 0; k < g2; k++ {
				rgb := [3]float64{float64(i) / float64(g0-1), float64(j) / float64(g1-1), float64(k) / float64(g2-1)}
				lab := labV4(xyzToLab(srgbToXYZ(rgb)))
				out = append(out, lab[:]...)
			}
		}
	}
	return to16(out)
}

// xyzMatrix maps linear sRGB to normalized (u1Fixed15 / 0xFFFF) PCS XYZ.
func xyzMatrix() []float64 {
	m := make([]float64, 12)
	for r := 0; r < 3; r++ {
		for c := 0; c < 3; c++ {
			m[3*r+c] = srgbColorants[c][r] * 32768 / 65535
		}
	}
	return m
}

func to8s(v []uint16) []uint8 {
	o := make([]uint8, len(v))
	for i, x := range v {
		o[i] = uint8((int(x) + 128) / 257)
	}
	return o
}

// diff compares colours (and alpha, exactly) of two images of one kind.
func diff(t *testing.T, got, want image.Image) (maxErr int, mean float64) {
	t.Helper()
	var gp, wp []uint8
	step, nc := 4, 3
	switch w := want.(type) {
	case *image.NRGBA:
		g, ok := got.(*image.NRGBA)
		if !ok {
			t.Fatalf("got %T, want *image.NRGBA", got)
		}
		gp, wp = g.Pix, w.Pix
	case *image.Gray:
		g, ok := got.(*image.Gray)
		if !ok {
			t.Fatalf("got %T, want *image.Gray", got)
		}
		gp, wp, step, nc = g.Pix, w.Pix, 1, 1
	}
	if got.Bounds() != want.Bounds() || len(gp) != len(wp) {
		t.Fatalf("bounds %v, want %v", got.Bounds(), want.Bounds())
	}
	sum := 0
	for i := 0; i < len(wp); i += step {
		for c := 0; c < nc; c++ {
			d := int(gp[i+c]) - int(wp[i+c])
			if d < 0 {
				d = -d
			}
			sum += d
			maxErr = max(maxErr, d)
		}
		if step == 4 && gp[i+3] != wp[i+3] {
			t.Fatalf("alpha at byte %d: %d, want %d", i+3, gp[i+3], wp[i+3])
		}
	}
	return maxErr, float64(sum) / float64(len(wp)/step*nc)
}

func TestToSRGBShowsTheIntendedPicture(t *testing.T) {
	for _, tc := range convCases() {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse(tc.profile)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			got := p.ToSRGB(tc.stored)
			maxErr, mean := diff(t, got, tc.want)
			t.Logf("%v: max error %d, mean %.3f", p, maxErr, mean)
			if maxErr > tc.maxErr || mean > tc.meanErr {
				t.Errorf("max error %d (allowed %d), mean %.3f (allowed %.2f)", maxErr, tc.maxErr, mean, tc.meanErr)
			}
			if p.IsIdentity() != tc.identity {
				t.Errorf("IsIdentity = %v, want %v", p.IsIdentity(), tc.identity)
			}
			if !strings.HasPrefix(tc.name, "INVERTING") {
				return
			}
			// Without the profile the stored picture is far from it.
			if _, mean := diff(t, tc.stored, tc.want); mean < 20 {
				t.Errorf("stored picture already close to the intended one (mean %.1f): test proves nothing", mean)
			}
		})
	}
}

// The exact reference: the table-driven result equals the float pipeline
// evaluated per pixel, within one level, for every case's profile.
func TestFastPathMatchesFloatPipeline(t *testing.T) {
	for _, tc := range convCases() {
		p, err := Parse(tc.profile)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := p.ToSRGB(tc.stored)
		worst := 0
		b := tc.stored.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				var v [4]float64
				var g []uint8
				switch s := tc.stored.(type) {
				case *image.NRGBA:
					px := s.Pix[s.PixOffset(x, y):]
					v = [4]float64{float64(px[0]) / 255, float64(px[1]) / 255, float64(px[2]) / 255}
					g = got.(*image.NRGBA).Pix[s.PixOffset(x, y):][:3]
				case *image.Gray:
					v[0] = float64(s.Pix[s.PixOffset(x, y)]) / 255
					g = got.(*image.Gray).Pix[s.PixOffset(x, y):][:1]
				case *image.CMYK:
					px := s.Pix[s.PixOffset(x, y):]
					v = [4]float64{float64(px[0]) / 255, float64(px[1]) / 255, float64(px[2]) / 255, float64(px[3]) / 255}
					g = got.(*image.NRGBA).Pix[s.PixOffset(x, y):][:3]
				}
				ref := xyzToSRGB8(p.toXYZ(v))
				if len(g) == 1 {
					ref[0] = 255 * srgbEncode(p.toXYZ(v)[1])
				}
				for c := range g {
					d := math.Abs(float64(g[c]) - ref[c])
					if int(math.Round(d)) > worst {
						worst = int(math.Round(d))
					}
				}
			}
		}
		// The matrix and gray paths are exact; sampled LUTs interpolate
		// between 33 (17 for CMYK) grid points, which is off by a few
		// levels only where a channel clips at 0, sRGB's steepest place.
		limit := 1
		if p.tf.kind == tfCLUT3 || p.tf.kind == tfCLUT4 {
			limit = 4
		}
		if worst > limit {
			t.Errorf("%s: fast path differs from the float pipeline by %d levels", tc.name, worst)
		}
	}
}

func TestSRGBDerivation(t *testing.T) {
	// The derived XYZ(D50) → sRGB matrix inverts the published colorants.
	var m [9]float64
	for r := 0; r < 3; r++ {
		for c := 0; c < 3; c++ {
			m[3*r+c] = srgbColorants[c][r]
		}
	}
	id := mul3(xyzToLinearSRGB, m)
	for i, v := range id {
		want := 0.0
		if i%4 == 0 {
			want = 1
		}
		if math.Abs(v-want) > 5e-4 {
			t.Fatalf("xyzToLinearSRGB × sRGB colorants = %v, not identity", id)
		}
	}
}

func TestCurves(t *testing.T) {
	para := func(typ int, p ...float64) *curve {
		c := &curve{kind: curvePara, ptype: typ}
		copy(c.p[:], p)
		return c
	}
	tests := []struct {
		name string
		c    *curve
		f    func(x float64) float64
	}{
		{"identity", &curve{kind: curveIdentity}, func(x float64) float64 { return x }},
		{"gamma 2.2", &curve{kind: curveGamma, gamma: 2.2}, func(x float64) float64 { return math.Pow(x, 2.2) }},
		{"decreasing table", &curve{kind: curveTable, table: []float64{1, 0.25, 0}}, func(x float64) float64 {
			if x < 0.5 {
				return 1 - 1.5*x
			}
			return 0.5 - 0.5*x
		}},
		{"para 0", para(0, 1.8), func(x float64) float64 { return math.Pow(x, 1.8) }},
		{"para 1", para(1, 2, 2, -0.5), func(x float64) float64 {
			if x >= 0.25 {
				return math.Pow(2*x-0.5, 2)
			}
			return 0
		}},
		{"para 2", para(2, 2, 1, -0.2, 0.1), func(x float64) float64 {
			if x >= 0.2 {
				return math.Pow(x-0.2, 2) + 0.1
			}
			return 0.1
		}},
		{"para 3", para(3, 2.4, 1/1.055, 0.055/1.055, 1/12.92, 0.04045), decode},
		{"para 4", para(4, 1, -1, 1, 0.5, 0.5, -0.2, 0.1), func(x float64) float64 {
			if x >= 0.5 {
				return 1 - x - 0.2
			}
			return 0.5*x + 0.1
		}},
		{"para garbage is clamped", para(1, -3, 0, 0), func(x float64) float64 {
			if x == 0 {
				return 1
			}
			return 0
		}},
	}
	for _, tc := range tests {
		for i := 0; i <= 20; i++ {
			x := float64(i) / 20
			got, want := tc.c.eval(x), clampF(tc.f(x))
			if tc.name == "para garbage is clamped" && (math.IsNaN(got) || got < 0 || got > 1) {
				t.Fatalf("%s(%v) = %v", tc.name, x, got)
			} else if tc.name != "para garbage is clamped" && math.Abs(got-want) > 1e-9 {
				t.Errorf("%s(%v) = %v, want %v", tc.name, x, got, want)
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := matrixProfile(4, srgbPara)
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	put32 := func(b []byte, at int, v uint32) []byte { copy(b[at:], u32(v)); return b }
	absurdGrid := buildProfile(4, "prtr", "CMYK", "Lab ", tag{"A2B0",
		cat([]byte("mft2\x00\x00\x00\x00"), []byte{4, 3, 255, 0}, identityMatrix, u16s(2, 2), make([]byte, 64))})
	tests := []struct {
		name string
		b    []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"header only", good[:128], ErrMalformed},
		{"size beyond the data", good[:len(good)-1], ErrMalformed},
		{"size too small", mut(func(b []byte) []byte { return put32(b, 0, 100) }), ErrMalformed},
		{"huge size", mut(func(b []byte) []byte { return put32(b, 0, 1<<30) }), ErrUnsupported},
		{"no acsp", mut(func(b []byte) []byte { b[36] = 'x'; return b }), ErrMalformed},
		{"iccMAX", mut(func(b []byte) []byte { b[8] = 5; return b }), ErrUnsupported},
		{"device link", mut(func(b []byte) []byte { copy(b[12:], "link"); return b }), ErrUnsupported},
		{"Lab data", mut(func(b []byte) []byte { copy(b[16:], "Lab "); return b }), ErrUnsupported},
		{"odd PCS", mut(func(b []byte) []byte { copy(b[20:], "RGB "); return b }), ErrUnsupported},
		{"absurd tag count", mut(func(b []byte) []byte { return put32(b, 128, 1<<31) }), ErrMalformed},
		{"tag count beyond the data", mut(func(b []byte) []byte { return put32(b, 128, 100) }), ErrMalformed},
		{"TRC tag outside the profile", mut(func(b []byte) []byte { return put32(b, 132+12*3+4, 1<<31) }), ErrMalformed},
		{"missing TRC", buildProfile(4, "mntr", "RGB ", "XYZ ", srgbMatrixTags(srgbPara)[:4]...), ErrUnsupported},
		{"curv count beyond its tag", matrixProfile(4, cat([]byte("curv\x00\x00\x00\x00"), u32(1<<30))), ErrMalformed},
		{"para type 5", matrixProfile(4, paraTag(5, 1, 1, 1, 1, 1, 1, 1)), ErrUnsupported},
		{"para truncated", matrixProfile(4, paraTag(4, 1, 1)), ErrMalformed},
		{"XYZ tag of another type", buildProfile(4, "mntr", "RGB ", "XYZ ", append(srgbMatrixTags(srgbPara)[1:], tag{"rXYZ", curvTag()})...), ErrMalformed},
		{"CMYK without A2B", buildProfile(4, "prtr", "CMYK", "Lab "), ErrUnsupported},
		{"absurd CLUT grid 255^4", absurdGrid, ErrMalformed},
		{"mAB offset outside its tag", buildProfile(4, "mntr", "RGB ", "Lab ", tag{"A2B0",
			cat([]byte("mAB \x00\x00\x00\x00"), []byte{3, 3, 0, 0}, u32(1<<20), make([]byte, 20))}), ErrMalformed},
		{"mAB CLUT precision 3", buildProfile(4, "mntr", "RGB ", "Lab ", tag{"A2B0", mab{in: 3,
			grid: []int{2, 2, 2}, prec: 3, clut: make([]uint16, 24), b: [][]byte{curvTag(), curvTag(), curvTag()}}.tag()}), ErrMalformed},
		{"mAB without B curves", buildProfile(4, "mntr", "RGB ", "Lab ", tag{"A2B0", mab{in: 3,
			grid: []int{2, 2, 2}, prec: 2, clut: make([]uint16, 24)}.tag()}), ErrMalformed},
		{"mft2 with channels not matching the colour space", buildProfile(2, "mntr", "RGB ", "Lab ", tag{"A2B0",
			mft2Tag(1, 2, [][]uint16{{0, 65535}}, make([]uint16, 6), [][]uint16{{0, 65535}, {0, 65535}, {0, 65535}})}), ErrMalformed},
		{"mft2 CLUT truncated", buildProfile(2, "mntr", "RGB ", "Lab ", tag{"A2B0",
			mft2Tag(3, 17, [][]uint16{{0, 65535}, {0, 65535}, {0, 65535}}, make([]uint16, 100), [][]uint16{{0, 65535}, {0, 65535}, {0, 65535}})}), ErrMalformed},
		{"A2B0 of type mpet", buildProfile(4, "mntr", "RGB ", "Lab ", tag{"A2B0", []byte("mpet\x00\x00\x00\x00\x00\x03\x00\x03")}), ErrUnsupported},
	}
	for _, tc := range tests {
		p, err := Parse(tc.b)
		if err == nil {
			t.Errorf("%s: parsed as %v", tc.name, p)
			continue
		}
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// A bad A2B0 does not hide a usable matrix/TRC: viewers fall back too, and
// refusing the profile would hash the negative they do not show.
func TestBadA2B0FallsBackToMatrixTRC(t *testing.T) {
	b := buildProfile(4, "mntr", "RGB ", "Lab ", append(srgbMatrixTags(curvFunc(4096, invert(decode))),
		tag{"A2B0", []byte("mAB \x00\x00\x00\x00\x03\x03\x00\x00garbage-garbage-garbage")})...)
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	pic := photo(32, 16)
	if m, _ := diff(t, p.ToSRGB(mapNRGBA(pic, negative)), pic); m > 1 {
		t.Errorf("max error %d", m)
	}
}

func TestCopiesTheProfileBytes(t *testing.T) {
	b := matrixProfile(4, curvFunc(256, invert(decode)))
	p, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range b {
		b[i] = 0
	}
	pic := photo(16, 16)
	if m, _ := diff(t, p.ToSRGB(mapNRGBA(pic, negative)), pic); m > 2 {
		t.Errorf("max error %d after the caller reused its buffer", m)
	}
}
