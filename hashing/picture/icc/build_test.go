package icc

// Test helpers: ICC profiles written byte by byte (header, tag table, tags)
// and reference colour math written independently of the package (the sRGB
// colorants are the published D50 values, not derived).

import (
	"encoding/binary"
	"image"
	"image/color"
	"math"
)

type tag struct {
	sig  string
	data []byte
}

// buildProfile writes a profile: a 128-byte header, the tag table, then
// each tag's data at a 4-byte aligned offset. Tags with identical data are
// written once and shared, as profiles often do.
func buildProfile(major byte, class, space, pcs string, tags ...tag) []byte {
	h := make([]byte, 128)
	h[8], h[9] = major, 0x20
	copy(h[12:], class)
	copy(h[16:], space)
	copy(h[20:], pcs)
	binary.BigEndian.PutUint16(h[24:], 2024) // date
	copy(h[36:], "acsp")
	copy(h[68:], append(append(s15(0.9642), s15(1)...), s15(0.8249)...))
	table := make([]byte, 4+12*len(tags))
	binary.BigEndian.PutUint32(table, uint32(len(tags)))
	var data []byte
	base := 128 + len(table)
	offs := map[string]int{}
	for i, t := range tags {
		off, ok := offs[string(t.data)]
		if !ok {
			off = base + len(data)
			offs[string(t.data)] = off
			data = append(data, t.data...)
			for len(data)%4 != 0 {
				data = append(data, 0)
			}
		}
		e := table[4+12*i:]
		copy(e, t.sig)
		binary.BigEndian.PutUint32(e[4:], uint32(off))
		binary.BigEndian.PutUint32(e[8:], uint32(len(t.data)))
	}
	b := append(append(h, table...), data...)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}

func u16s(v ...uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, x := range v {
		binary.BigEndian.PutUint16(b[2*i:], x)
	}
	return b
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }

func s15(x float64) []byte { return u32(uint32(int32(math.Round(x * 65536)))) }

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func xyzTag(x, y, z float64) []byte {
	return cat([]byte("XYZ \x00\x00\x00\x00"), s15(x), s15(y), s15(z))
}

// curvTag is a curveType with the given entries (none: identity, one:
// u8Fixed8 gamma, more: a table).
func curvTag(entries ...uint16) []byte {
	return cat([]byte("curv\x00\x00\x00\x00"), u32(uint32(len(entries))), u16s(entries...))
}

func gammaTag(g float64) []byte { return curvTag(uint16(math.Round(g * 256))) }

// tableOf samples f on n equally spaced points as 16-bit entries.
func tableOf(n int, f func(x float64) float64) []uint16 {
	t := make([]uint16, n)
	for i := range t {
		t[i] = uint16(math.Round(65535 * clampF(f(float64(i)/float64(n-1)))))
	}
	return t
}

func curvFunc(n int, f func(x float64) float64) []byte { return curvTag(tableOf(n, f)...) }

func paraTag(typ uint16, params ...float64) []byte {
	b := cat([]byte("para\x00\x00\x00\x00"), u16s(typ, 0))
	for _, p := range params {
		b = append(b, s15(p)...)
	}
	return b
}

// pad4 pads a curve element as lutAtoBType lays them out.
func pad4(b []byte) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

var identityMatrix = cat(s15(1), s15(0), s15(0), s15(0), s15(1), s15(0), s15(0), s15(0), s15(1))

// mft2Tag is a lut16Type: input tables, CLUT, output tables.
func mft2Tag(in, grid int, inTabs [][]uint16, clut []uint16, outTabs [][]uint16) []byte {
	b := cat([]byte("mft2\x00\x00\x00\x00"), []byte{byte(in), 3, byte(grid), 0}, identityMatrix,
		u16s(uint16(len(inTabs[0])), uint16(len(outTabs[0]))))
	for _, t := range inTabs {
		b = append(b, u16s(t...)...)
	}
	b = append(b, u16s(clut...)...)
	for _, t := range outTabs {
		b = append(b, u16s(t...)...)
	}
	return b
}

// mft1Tag is a lut8Type with identity 256-entry input and output tables.
func mft1Tag(in, grid int, clut []uint8) []byte {
	b := cat([]byte("mft1\x00\x00\x00\x00"), []byte{byte(in), 3, byte(grid), 0}, identityMatrix)
	ramp := make([]byte, 256)
	for i := range ramp {
		ramp[i] = byte(i)
	}
	for i := 0; i < in; i++ {
		b = append(b, ramp...)
	}
	b = append(b, clut...)
	for i := 0; i < 3; i++ {
		b = append(b, ramp...)
	}
	return b
}

// mab is a lutAtoBType; nil elements are left out.
type mab struct {
	in     int
	a      [][]byte
	grid   []int
	prec   int
	clut   []uint16 // 16-bit values; written as their high byte when prec is 1
	m      [][]byte
	matrix []float64 // 12 values: 3×3 then offsets
	b      [][]byte
}

func (m mab) tag() []byte {
	body := make([]byte, 32)
	copy(body, "mAB ")
	body[8], body[9] = byte(m.in), 3
	put := func(at int, elem []byte) {
		if elem == nil {
			return
		}
		binary.BigEndian.PutUint32(body[at:], uint32(len(body)))
		body = append(body, pad4(elem)...)
	}
	curves := func(cs [][]byte) []byte {
		if cs == nil {
			return nil
		}
		var b []byte
		for _, c := range cs {
			b = append(b, pad4(c)...)
		}
		return b
	}
	put(12, curves(m.b))
	if m.matrix != nil {
		var mx []byte
		for _, v := range m.matrix {
			mx = append(mx, s15(v)...)
		}
		put(16, mx)
	}
	put(20, curves(m.m))
	if m.clut != nil {
		c := make([]byte, 20)
		for i, g := range m.grid {
			c[i] = byte(g)
		}
		c[16] = byte(m.prec)
		for _, v := range m.clut {
			if m.prec == 1 {
				c = append(c, byte(v>>8))
			} else {
				c = append(c, u16s(v)...)
			}
		}
		put(24, c)
	}
	put(28, curves(m.a))
	return body
}

// gridNodes calls f for every node of an n-dimensional grid of g points,
// first channel slowest, with coordinates in [0,1], and collects its three
// outputs.
func gridNodes(n, g int, f func(v []float64) [3]float64) []float64 {
	var out []float64
	idx := make([]int, n)
	for {
		v := make([]float64, n)
		for i := range v {
			v[i] = float64(idx[i]) / float64(g-1)
		}
		o := f(v)
		out = append(out, o[:]...)
		i := n - 1
		for ; i >= 0; i-- {
			idx[i]++
			if idx[i] < g {
				break
			}
			idx[i] = 0
		}
		if i < 0 {
			return out
		}
	}
}

func to16(v []float64) []uint16 {
	o := make([]uint16, len(v))
	for i, x := range v {
		o[i] = uint16(math.Round(65535 * clampF(x)))
	}
	return o
}

func clampF(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// Reference colour math.

func decode(v float64) float64 { // sRGB encoded → linear
	if v <= 0.04045 {
		return v / 12.92
	}
	return math.Pow((v+0.055)/1.055, 2.4)
}

func encode(v float64) float64 { // linear → sRGB encoded
	v = clampF(v)
	if v <= 0.0031308 {
		return 12.92 * v
	}
	return 1.055*math.Pow(v, 1/2.4) - 0.055
}

// sRGB colorants adapted to D50, as published in sRGB ICC profiles.
var srgbColorants = [3][3]float64{
	{0.4360747, 0.2225045, 0.0139322},
	{0.3850649, 0.7168786, 0.0971045},
	{0.1430804, 0.0606169, 0.7141733},
}

func srgbToXYZ(rgb [3]float64) [3]float64 {
	var xyz [3]float64
	for c := 0; c < 3; c++ {
		l := decode(rgb[c])
		for k := 0; k < 3; k++ {
			xyz[k] += l * srgbColorants[c][k]
		}
	}
	return xyz
}

func xyzToLab(xyz [3]float64) [3]float64 {
	f := func(t float64) float64 {
		if t > 216.0/24389 {
			return math.Cbrt(t)
		}
		return (24389.0/27*t + 16) / 116
	}
	fx, fy, fz := f(xyz[0]/0.9642), f(xyz[1]), f(xyz[2]/0.8249)
	return [3]float64{116*fy - 16, 500 * (fx - fy), 200 * (fy - fz)}
}

// Lab encodings as normalized [0,1] LUT outputs.
func labV4(lab [3]float64) [3]float64 {
	return [3]float64{lab[0] / 100, (lab[1] + 128) / 255, (lab[2] + 128) / 255}
}

func labLegacy(lab [3]float64) [3]float64 {
	return [3]float64{lab[0] / 100 * 65280 / 65535, (lab[1] + 128) * 256 / 65535, (lab[2] + 128) * 256 / 65535}
}

// photo is a synthetic photo-like picture: smooth shading, colour blobs,
// fine texture, a gray ramp and saturated patches, with varying alpha.
func photo(w, h int) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			r := 0.5 + 0.45*math.Sin(6*fx+1.3*fy) + 0.04*math.Sin(float64(x*y))
			g := 0.45 + 0.4*math.Cos(4*fy-2*fx) + 0.05*math.Sin(float64(3*x+7*y))
			b := 0.5 + 0.45*math.Sin(9*fx*fy+0.5) - 0.2*math.Exp(-((fx-0.3)*(fx-0.3)+(fy-0.6)*(fy-0.6))*20)
			switch {
			case y < 2: // gray ramp, black to white
				r = fx * float64(w) / float64(w-1)
				g, b = r, r
			case x < 3 && y < h/2: // primaries and extremes
				r, g, b = float64(y%2), float64(y/2%2), float64(y/4%2)
			}
			img.SetNRGBA(x, y, color.NRGBA{q8(r), q8(g), q8(b), uint8(255 - (x*y)%7*20)})
		}
	}
	return img
}

func q8(x float64) uint8 { return uint8(math.Round(255 * clampF(x))) }

// mapNRGBA makes a new image by mapping each pixel's colour (alpha kept).
func mapNRGBA(src *image.NRGBA, f func(rgb [3]float64) [3]float64) *image.NRGBA {
	dst := image.NewNRGBA(src.Rect)
	for i := 0; i < len(src.Pix); i += 4 {
		o := f([3]float64{float64(src.Pix[i]) / 255, float64(src.Pix[i+1]) / 255, float64(src.Pix[i+2]) / 255})
		dst.Pix[i], dst.Pix[i+1], dst.Pix[i+2], dst.Pix[i+3] = q8(o[0]), q8(o[1]), q8(o[2]), src.Pix[i+3]
	}
	return dst
}

func grayOf(src *image.NRGBA) *image.Gray {
	g := image.NewGray(src.Rect)
	for i := range g.Pix {
		g.Pix[i] = src.Pix[4*i+1]
	}
	return g
}

func mapGray(src *image.Gray, f func(v float64) float64) *image.Gray {
	dst := image.NewGray(src.Rect)
	for i, v := range src.Pix {
		dst.Pix[i] = q8(f(float64(v) / 255))
	}
	return dst
}
