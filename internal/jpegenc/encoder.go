// Package jpegenc is a small JPEG writer for tests (hashing/picture/jpegx's
// and the bypass corpus'). Go's image/jpeg writes only baseline 4:2:0 (or
// grey) with the Annex K tables; a tolerant decoder must also be fed
// progressive scans, odd sampling factors (3x1, 1x4, chroma finer than
// luma), RGB/CMYK/YCCK with or without an Adobe marker, lossless (SOF3)
// and arithmetic coding, restart intervals and table-less streams, so this
// writer produces them. It is deliberately plain (float DCT, flat Huffman
// codes for progressive scans) and shares no code with the decoder it
// tests: only T.81's tables, copied.
package jpegenc

import (
	"bytes"
	"image"
	"image/color"
	"math"
	"math/rand"
)

// synthPicture is photo-like: gradients, a few soft discs, texture and a
// little noise, so DCT blocks have real AC content.
func synthPicture(w, h int, seed int64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	rng := rand.New(rand.NewSource(seed))
	type disc struct{ x, y, r, cr, cg, cb float64 }
	discs := make([]disc, 5)
	for i := range discs {
		discs[i] = disc{rng.Float64() * float64(w), rng.Float64() * float64(h),
			(0.1 + 0.25*rng.Float64()) * float64(min(w, h)),
			rng.Float64() * 255, rng.Float64() * 255, rng.Float64() * 255}
	}
	for y := range h {
		for x := range w {
			fx, fy := float64(x)/float64(w), float64(y)/float64(h)
			r := 40 + 170*fx
			g := 60 + 150*fy
			b := 120 + 80*math.Sin(6*fx+3*fy)
			for _, d := range discs {
				dist := math.Hypot(float64(x)-d.x, float64(y)-d.y)
				a := 1 / (1 + math.Exp((dist-d.r)/2))
				r, g, b = r*(1-a)+d.cr*a, g*(1-a)+d.cg*a, b*(1-a)+d.cb*a
			}
			t := 12 * math.Sin(float64(x)*0.9) * math.Cos(float64(y)*0.7)
			n := rng.Float64()*6 - 3
			img.SetRGBA(x, y, color.RGBA{clampF(r + t + n), clampF(g + t + n), clampF(b + t + n), 255})
		}
	}
	return img
}

func clampF(v float64) uint8 {
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v + 0.5)
}

// planesFor converts the picture into full-resolution component planes.
func planesFor(img *image.RGBA, cs string) [][]float64 {
	b := img.Bounds()
	n := b.Dx() * b.Dy()
	var out [][]float64
	mk := func(k int) {
		out = make([][]float64, k)
		for i := range out {
			out[i] = make([]float64, n)
		}
	}
	switch cs {
	case "gray":
		mk(1)
	case "cmyk", "ycck":
		mk(4)
	default:
		mk(3)
	}
	i := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			p := img.RGBAAt(x, y)
			r, g, bb := float64(p.R), float64(p.G), float64(p.B)
			switch cs {
			case "gray":
				out[0][i] = 0.299*r + 0.587*g + 0.114*bb
			case "rgb":
				out[0][i], out[1][i], out[2][i] = r, g, bb
			case "ycbcr":
				out[0][i], out[1][i], out[2][i] = rgbToYCC(r, g, bb)
			case "cmyk", "ycck":
				// Adobe-inverted: browsers show R = C*K/255.
				k := math.Max(r, math.Max(g, bb))
				k = math.Max(k, 1)
				c, m, yy := r*255/k, g*255/k, bb*255/k
				if cs == "cmyk" {
					out[0][i], out[1][i], out[2][i] = c, m, yy
				} else {
					out[0][i], out[1][i], out[2][i] = rgbToYCC(255-c, 255-m, 255-yy)
				}
				out[3][i] = k
			}
			i++
		}
	}
	return out
}

func rgbToYCC(r, g, b float64) (float64, float64, float64) {
	return 0.299*r + 0.587*g + 0.114*b,
		128 - 0.168736*r - 0.331264*g + 0.5*b,
		128 + 0.5*r - 0.418688*g - 0.081312*b
}

var testQuant = func() (q [2][64]int) {
	for z := range 64 {
		n := unzigRef[z]
		r, c := n/8, n%8
		q[0][z] = 3 + r + c
		q[1][z] = 4 + 2*(r+c)
	}
	return q
}()

// unzigRef is the zig-zag order written out from T.81 Figure A.6, kept
// separate from the decoder's generated table so each checks the other.
var unzigRef = [64]int{
	0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5,
	12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21, 28,
	35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
	58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63,
}

type encBlockComp struct {
	Component
	bw, bh, cbw, cbh int
	coef             [][64]int // zig-zag, quantised
}

type bitWriter struct {
	buf  bytes.Buffer
	acc  uint32
	nacc uint
}

func (w *bitWriter) put(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | (v>>uint(i))&1
		w.nacc++
		if w.nacc == 8 {
			b := byte(w.acc)
			w.buf.WriteByte(b)
			if b == 0xFF {
				w.buf.WriteByte(0)
			}
			w.acc, w.nacc = 0, 0
		}
	}
}

func (w *bitWriter) flush() {
	for w.nacc != 0 {
		w.put(1, 1)
	}
}

type encTable struct {
	code [256]uint32
	size [256]int
	// DHT payload
	counts [16]byte
	vals   []byte
}

func makeEncTable(counts [17]int, vals []byte) *encTable {
	t := &encTable{}
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		t.counts[l-1] = byte(counts[l])
		for range counts[l] {
			t.code[vals[k]] = code
			t.size[vals[k]] = l
			code++
			k++
		}
		code <<= 1
	}
	t.vals = vals
	return t
}

// flat tables: every DC category at 4 bits, every AC symbol at 9 bits;
// valid for progressive scans (EOBn symbols) and easy to get right.
var flatDC = func() *encTable {
	var c [17]int
	c[5] = 16 // categories up to 15 for 12-bit data
	v := make([]byte, 16)
	for i := range v {
		v[i] = byte(i)
	}
	return makeEncTable(c, v)
}()

var flatAC = func() *encTable {
	var c [17]int
	c[9], c[10] = 255, 1
	v := make([]byte, 256)
	for i := range v {
		v[i] = byte(i)
	}
	return makeEncTable(c, v)
}()

var stdEnc = [2][2]*encTable{
	{makeEncTable(stdDCLumCounts, stdDCLumVals), makeEncTable(stdDCChrCounts, stdDCChrVals)},
	{makeEncTable(stdACLumCounts, stdACLumVals), makeEncTable(stdACChrCounts, stdACChrVals)},
}

func category(v int) int {
	if v < 0 {
		v = -v
	}
	n := 0
	for v > 0 {
		n++
		v >>= 1
	}
	return n
}

func magBits(v, s int) uint32 {
	if v < 0 {
		v += (1 << uint(s)) - 1
	}
	return uint32(v) & (1<<uint(s) - 1)
}

func segment(out *bytes.Buffer, m byte, payload []byte) {
	out.Write([]byte{0xFF, m, byte((len(payload) + 2) >> 8), byte(len(payload) + 2)})
	out.Write(payload)
}

// encodeJPEG writes img as a JPEG according to o.
func encodeJPEG(img *image.RGBA, o Options) []byte {
	W, H := img.Bounds().Dx(), img.Bounds().Dy()
	full := planesFor(img, o.Color)
	if o.EditPlanes != nil {
		o.EditPlanes(full, W, H)
	}
	level := 128.0
	if o.Precision == 12 {
		// 12-bit samples: the picture spread over 0..4095.
		level = 2048
		for _, p := range full {
			for i := range p {
				p[i] = p[i]*16 + 8
			}
		}
	}
	hmax, vmax := 1, 1
	for _, c := range o.Comps {
		hmax, vmax = max(hmax, c.H), max(vmax, c.V)
	}
	if o.Lossless {
		return encodeLossless(full, W, H, hmax, vmax, o)
	}
	mcusX := (W + 8*hmax - 1) / (8 * hmax)
	mcusY := (H + 8*vmax - 1) / (8 * vmax)
	comps := make([]encBlockComp, len(o.Comps))
	for i, c := range o.Comps {
		ec := &comps[i]
		ec.Component = c
		ec.bw, ec.bh = mcusX*c.H, mcusY*c.V
		cw := (W*c.H + hmax - 1) / hmax
		ch := (H*c.V + vmax - 1) / vmax
		ec.cbw, ec.cbh = (cw+7)/8, (ch+7)/8
		// Component samples: point-sample the full plane, replicate edges.
		pw, ph := ec.bw*8, ec.bh*8
		plane := make([]float64, pw*ph)
		for y := range ph {
			sy := min(y, ch-1) * vmax / c.V
			sy = min(sy, H-1)
			for x := range pw {
				sx := min(x, cw-1) * hmax / c.H
				sx = min(sx, W-1)
				plane[y*pw+x] = full[i][sy*W+sx]
			}
		}
		ec.coef = make([][64]int, ec.bw*ec.bh)
		q := testQuant[c.TQ]
		for by := range ec.bh {
			for bx := range ec.bw {
				var blk [64]float64
				for y := range 8 {
					for x := range 8 {
						blk[y*8+x] = plane[(by*8+y)*pw+bx*8+x] - level
					}
				}
				f := fdct(&blk)
				for z := range 64 {
					ec.coef[by*ec.bw+bx][z] = int(math.Round(f[unzigRef[z]] / float64(q[z])))
				}
			}
		}
	}

	var out bytes.Buffer
	out.Write([]byte{0xFF, 0xD8})
	if o.JFIF {
		segment(&out, 0xE0, []byte{'J', 'F', 'I', 'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0})
	}
	if o.Adobe >= 0 {
		segment(&out, 0xEE, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, byte(o.Adobe)})
	}
	for t := range 2 {
		p := []byte{byte(t)}
		for z := range 64 {
			p = append(p, byte(testQuant[t][z]))
		}
		segment(&out, 0xDB, p)
	}
	sof := []byte{byte(max(o.Precision, 8)), byte(H >> 8), byte(H), byte(W >> 8), byte(W), byte(len(comps))}
	for _, c := range comps {
		sof = append(sof, c.ID, byte(c.H<<4|c.V), byte(c.TQ))
	}
	sofM := byte(0xC0)
	if o.Precision == 12 {
		sofM = 0xC1
	}
	if o.Progressive {
		sofM = 0xC2
	}
	if o.Arith {
		sofM = 0xC9
		if o.Progressive {
			sofM = 0xCA
		}
		o.OmitDHT = true
		if o.DAC {
			segment(&out, 0xCC, []byte{0x00, byte(o.DACU<<4 | o.DACL), 0x10, byte(o.DACK)})
		}
	}
	segment(&out, sofM, sof)
	tables := func(i int) (*encTable, *encTable) {
		if o.StdTables {
			t := min(comps[i].TQ, 1)
			return stdEnc[0][t], stdEnc[1][t]
		}
		return flatDC, flatAC
	}
	if !o.OmitDHT {
		if o.StdTables {
			for cl := range 2 {
				for id := range 2 {
					t := stdEnc[cl][id]
					p := append([]byte{byte(cl<<4 | id)}, t.counts[:]...)
					segment(&out, 0xC4, append(p, t.vals...))
				}
			}
		} else {
			for cl, t := range []*encTable{flatDC, flatAC} {
				p := append([]byte{byte(cl << 4)}, t.counts[:]...)
				segment(&out, 0xC4, append(p, t.vals...))
			}
		}
	}
	if o.Restart > 0 {
		segment(&out, 0xDD, []byte{byte(o.Restart >> 8), byte(o.Restart)})
	}
	scans := o.Scans
	if scans == nil {
		all := make([]int, len(comps))
		for i := range all {
			all[i] = i
		}
		if !o.Progressive {
			scans = []Scan{{Comps: all, Ss: 0, Se: 63}}
		} else {
			scans = defaultScript(len(comps))
		}
	}
	for _, sc := range scans {
		hdr := []byte{byte(len(sc.Comps))}
		for _, ci := range sc.Comps {
			tid := byte(0)
			if o.StdTables {
				tid = byte(min(comps[ci].TQ, 1))
				tid = tid<<4 | tid
			}
			hdr = append(hdr, comps[ci].ID, tid)
		}
		hdr = append(hdr, byte(sc.Ss), byte(sc.Se), byte(sc.Ah<<4|sc.Al))
		segment(&out, 0xDA, hdr)
		if o.Arith {
			out.Write(encodeArithScan(comps, sc, o, mcusX, mcusY))
			continue
		}
		out.Write(encodeScan(comps, sc, o, mcusX, mcusY, tables))
	}
	out.Write([]byte{0xFF, 0xD9})
	return out.Bytes()
}

// defaultScript is shaped like libjpeg's progressive script: DC with one
// refinement bit, AC in two bands at two bits less, then refinements.
func defaultScript(n int) []Scan {
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	s := []Scan{{Comps: all, Ss: 0, Se: 0, Ah: 0, Al: 1}}
	for c := range n {
		s = append(s, Scan{Comps: []int{c}, Ss: 1, Se: 5, Al: 2})
	}
	for c := range n {
		s = append(s, Scan{Comps: []int{c}, Ss: 6, Se: 63, Al: 2})
	}
	for c := range n {
		s = append(s, Scan{Comps: []int{c}, Ss: 1, Se: 63, Ah: 2, Al: 1})
	}
	s = append(s, Scan{Comps: all, Ss: 0, Se: 0, Ah: 1, Al: 0})
	for c := range n {
		s = append(s, Scan{Comps: []int{c}, Ss: 1, Se: 63, Ah: 1, Al: 0})
	}
	return s
}

var dctCos = func() (c [8][8]float64) {
	for x := range 8 {
		for u := range 8 {
			k := 1.0
			if u == 0 {
				k = 1 / math.Sqrt2
			}
			c[u][x] = k / 2 * math.Cos(float64((2*x+1)*u)*math.Pi/16)
		}
	}
	return c
}()

// fdct is the separable forward DCT of T.81 A.3.3.
func fdct(b *[64]float64) (f [64]float64) {
	var tmp [64]float64 // rows transformed: tmp[y*8+u]
	for y := range 8 {
		for u := range 8 {
			s := 0.0
			for x := range 8 {
				s += dctCos[u][x] * b[y*8+x]
			}
			tmp[y*8+u] = s
		}
	}
	for v := range 8 {
		for u := range 8 {
			s := 0.0
			for y := range 8 {
				s += dctCos[v][y] * tmp[y*8+u]
			}
			f[v*8+u] = s
		}
	}
	return f
}

type scanEnc struct {
	w      bitWriter
	o      Options
	sc     Scan
	eobrun int
	be     []uint32 // correction bits buffered with the EOB run
	dcT    *encTable
	acT    *encTable
}

func (e *scanEnc) sym(t *encTable, s int) {
	if t.size[s] == 0 {
		panic("symbol not in table")
	}
	e.w.put(t.code[s], t.size[s])
}

func (e *scanEnc) flushEOB() {
	if e.eobrun > 0 {
		r := 0
		for (e.eobrun >> uint(r+1)) > 0 {
			r++
		}
		e.sym(e.acT, r<<4)
		if r > 0 {
			e.w.put(uint32(e.eobrun-(1<<uint(r))), r)
		}
		e.eobrun = 0
	}
	for _, b := range e.be {
		e.w.put(b, 1)
	}
	e.be = e.be[:0]
}

func encodeScan(comps []encBlockComp, sc Scan, o Options, mcusX, mcusY int, tables func(int) (*encTable, *encTable)) []byte {
	e := &scanEnc{o: o, sc: sc}
	preds := make([]int, len(comps))
	type blkRef struct {
		ci int
		b  *[64]int
	}
	var mcus [][]blkRef
	if len(sc.Comps) == 1 {
		c := &comps[sc.Comps[0]]
		for by := range c.cbh {
			for bx := range c.cbw {
				mcus = append(mcus, []blkRef{{sc.Comps[0], &c.coef[by*c.bw+bx]}})
			}
		}
	} else {
		for my := range mcusY {
			for mx := range mcusX {
				var m []blkRef
				for _, ci := range sc.Comps {
					c := &comps[ci]
					for y := range c.V {
						for x := range c.H {
							m = append(m, blkRef{ci, &c.coef[(my*c.V+y)*c.bw+mx*c.H+x]})
						}
					}
				}
				mcus = append(mcus, m)
			}
		}
	}
	rst := 0
	for mi, m := range mcus {
		if o.Restart > 0 && mi > 0 && mi%o.Restart == 0 {
			e.acT = tablesAC(tables, sc)
			e.flushEOB()
			e.w.flush()
			e.w.buf.Write([]byte{0xFF, byte(0xD0 + rst)})
			rst = (rst + 1) & 7
			for i := range preds {
				preds[i] = 0
			}
		}
		for _, br := range m {
			e.dcT, e.acT = tables(br.ci)
			b := br.b
			switch {
			case !o.Progressive:
				diff := b[0] - preds[br.ci]
				preds[br.ci] = b[0]
				s := category(diff)
				e.sym(e.dcT, s)
				e.w.put(magBits(diff, s), s)
				r := 0
				for k := 1; k < 64; k++ {
					if b[k] == 0 {
						r++
						continue
					}
					for r > 15 {
						e.sym(e.acT, 0xF0)
						r -= 16
					}
					s := category(b[k])
					e.sym(e.acT, r<<4|s)
					e.w.put(magBits(b[k], s), s)
					r = 0
				}
				if r > 0 {
					e.sym(e.acT, 0)
				}
			case sc.Ss == 0 && sc.Ah == 0:
				v := b[0] >> uint(sc.Al) // arithmetic shift
				diff := v - preds[br.ci]
				preds[br.ci] = v
				s := category(diff)
				e.sym(e.dcT, s)
				e.w.put(magBits(diff, s), s)
			case sc.Ss == 0:
				e.w.put(uint32(b[0]>>uint(sc.Al))&1, 1)
			case sc.Ah == 0:
				e.acFirst(b)
			default:
				e.acRefine(b)
			}
		}
	}
	e.acT = tablesAC(tables, sc)
	e.flushEOB()
	e.w.flush()
	return e.w.buf.Bytes()
}

func tablesAC(tables func(int) (*encTable, *encTable), sc Scan) *encTable {
	_, a := tables(sc.Comps[0])
	return a
}

func pointT(v, al int) int {
	if v < 0 {
		return -((-v) >> uint(al))
	}
	return v >> uint(al)
}

func (e *scanEnc) acFirst(b *[64]int) {
	r := 0
	for k := e.sc.Ss; k <= e.sc.Se; k++ {
		v := pointT(b[k], e.sc.Al)
		if v == 0 {
			r++
			continue
		}
		e.flushEOB()
		for r > 15 {
			e.sym(e.acT, 0xF0)
			r -= 16
		}
		s := category(v)
		e.sym(e.acT, r<<4|s)
		e.w.put(magBits(v, s), s)
		r = 0
	}
	if r > 0 {
		e.eobrun++
		if e.eobrun == 0x7FFF {
			e.flushEOB()
		}
	}
}

func (e *scanEnc) acRefine(b *[64]int) {
	var abs [64]int
	eob := 0
	for k := e.sc.Ss; k <= e.sc.Se; k++ {
		a := b[k]
		if a < 0 {
			a = -a
		}
		abs[k] = a >> uint(e.sc.Al)
		if abs[k] == 1 {
			eob = k
		}
	}
	r := 0
	var br []uint32
	for k := e.sc.Ss; k <= e.sc.Se; k++ {
		if abs[k] == 0 {
			r++
			continue
		}
		for r > 15 && k <= eob {
			e.flushEOB()
			e.sym(e.acT, 0xF0)
			r -= 16
			for _, x := range br {
				e.w.put(x, 1)
			}
			br = br[:0]
		}
		if abs[k] > 1 {
			br = append(br, uint32(abs[k]&1))
			continue
		}
		e.flushEOB()
		e.sym(e.acT, r<<4|1)
		if b[k] > 0 {
			e.w.put(1, 1)
		} else {
			e.w.put(0, 1)
		}
		for _, x := range br {
			e.w.put(x, 1)
		}
		br = br[:0]
		r = 0
	}
	if r > 0 || len(br) > 0 {
		e.eobrun++
		e.be = append(e.be, br...)
		if e.eobrun == 0x7FFF || len(e.be) > 900 {
			e.flushEOB()
		}
	}
}

type blkRef struct {
	ci int
	b  *[64]int
}

// scanMCUs lists a scan's MCUs in coding order (T.81 A.2).
func scanMCUs(comps []encBlockComp, sc Scan, mcusX, mcusY int) [][]blkRef {
	var mcus [][]blkRef
	if len(sc.Comps) == 1 {
		c := &comps[sc.Comps[0]]
		for by := range c.cbh {
			for bx := range c.cbw {
				mcus = append(mcus, []blkRef{{sc.Comps[0], &c.coef[by*c.bw+bx]}})
			}
		}
		return mcus
	}
	for my := range mcusY {
		for mx := range mcusX {
			var m []blkRef
			for _, ci := range sc.Comps {
				c := &comps[ci]
				for y := range c.V {
					for x := range c.H {
						m = append(m, blkRef{ci, &c.coef[(my*c.V+y)*c.bw+mx*c.H+x]})
					}
				}
			}
			mcus = append(mcus, m)
		}
	}
	return mcus
}

func encodeArithScan(comps []encBlockComp, sc Scan, o Options, mcusX, mcusY int) []byte {
	var out []byte
	e := newArithScanEnc(o)
	preds := make([]int, len(comps))
	rst := 0
	for mi, m := range scanMCUs(comps, sc, mcusX, mcusY) {
		if o.Restart > 0 && mi > 0 && mi%o.Restart == 0 {
			out = append(out, e.qm.flush()...)
			out = append(out, 0xFF, byte(0xD0+rst))
			rst = (rst + 1) & 7
			e = newArithScanEnc(o)
			clear(preds)
		}
		for _, br := range m {
			e.block(br.ci, br.b, sc, o.Progressive, preds)
		}
	}
	return append(out, e.qm.flush()...)
}

var flatLL = func() *encTable {
	var c [17]int
	c[5] = 17 // difference categories 0..16
	v := make([]byte, 17)
	for i := range v {
		v[i] = byte(i)
	}
	return makeEncTable(c, v)
}()

// encodeLossless writes an 8-bit SOF3 file (T.81 Annex H).
func encodeLossless(full [][]float64, W, H, hmax, vmax int, o Options) []byte {
	var out bytes.Buffer
	out.Write([]byte{0xFF, 0xD8})
	if o.Adobe >= 0 {
		segment(&out, 0xEE, []byte{'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, byte(o.Adobe)})
	}
	sof := []byte{8, byte(H >> 8), byte(H), byte(W >> 8), byte(W), byte(len(o.Comps))}
	for _, c := range o.Comps {
		sof = append(sof, c.ID, byte(c.H<<4|c.V), 0)
	}
	segment(&out, 0xC3, sof)
	p := append([]byte{0}, flatLL.counts[:]...)
	segment(&out, 0xC4, append(p, flatLL.vals...))
	if o.Restart > 0 {
		segment(&out, 0xDD, []byte{byte(o.Restart >> 8), byte(o.Restart)})
	}
	mcusX, mcusY := (W+hmax-1)/hmax, (H+vmax-1)/vmax
	// Component sample grids, padded to whole MCUs by edge replication.
	type grid struct {
		w, h, cw, ch int
		s            []int
	}
	grids := make([]grid, len(o.Comps))
	for i, c := range o.Comps {
		g := grid{w: mcusX * c.H, h: mcusY * c.V, cw: (W*c.H + hmax - 1) / hmax, ch: (H*c.V + vmax - 1) / vmax}
		g.s = make([]int, g.w*g.h)
		for y := range g.h {
			sy := min(min(y, g.ch-1)*vmax/c.V, H-1)
			for x := range g.w {
				sx := min(min(x, g.cw-1)*hmax/c.H, W-1)
				g.s[y*g.w+x] = int(clampF(full[i][sy*W+sx])) >> uint(o.PT)
			}
		}
		grids[i] = g
	}
	scans := o.Scans
	if scans == nil {
		all := make([]int, len(o.Comps))
		for i := range all {
			all[i] = i
		}
		scans = []Scan{{Comps: all}}
	}
	for _, sc := range scans {
		hdr := []byte{byte(len(sc.Comps))}
		for _, ci := range sc.Comps {
			hdr = append(hdr, o.Comps[ci].ID, 0)
		}
		hdr = append(hdr, byte(o.Predictor), 0, byte(o.PT))
		segment(&out, 0xDA, hdr)
		var w bitWriter
		ns := len(sc.Comps)
		mw, mh := mcusX, mcusY
		if ns == 1 {
			g := grids[sc.Comps[0]]
			mw, mh = g.cw, g.ch
		}
		fresh := make([]bool, len(o.Comps))
		firstLine := make([]int, len(o.Comps))
		for _, ci := range sc.Comps {
			fresh[ci] = true
		}
		def := 1 << uint(8-o.PT-1)
		n, rst := 0, 0
		for my := range mh {
			for mx := range mw {
				if o.Restart > 0 && n > 0 && n%o.Restart == 0 {
					w.flush()
					w.buf.Write([]byte{0xFF, byte(0xD0 + rst)})
					rst = (rst + 1) & 7
					for _, ci := range sc.Comps {
						fresh[ci] = true
					}
				}
				n++
				for _, ci := range sc.Comps {
					g := grids[ci]
					h, v := 1, 1
					if ns > 1 {
						h, v = o.Comps[ci].H, o.Comps[ci].V
					}
					for y := range v {
						for x := range h {
							sx, sy := mx*h+x, my*v+y
							at := func(x, y int) int { return g.s[y*g.w+x] }
							var pr int
							switch {
							case fresh[ci]:
								pr = def
								fresh[ci] = false
								firstLine[ci] = sy
							case sy == firstLine[ci] && sx > 0:
								pr = at(sx-1, sy)
							case sx == 0:
								pr = at(0, sy-1)
							default:
								ra, rb, rc := at(sx-1, sy), at(sx, sy-1), at(sx-1, sy-1)
								switch o.Predictor {
								case 1:
									pr = ra
								case 2:
									pr = rb
								case 3:
									pr = rc
								case 4:
									pr = ra + rb - rc
								case 5:
									pr = ra + (rb-rc)>>1
								case 6:
									pr = rb + (ra-rc)>>1
								case 7:
									pr = (ra + rb) >> 1
								}
							}
							diff := (at(sx, sy) - pr) & 0xFFFF
							if diff >= 32768 {
								diff -= 65536
							}
							cat := category(diff)
							if diff == -32768 {
								cat = 16
							}
							w.put(flatLL.code[cat], flatLL.size[cat])
							if cat < 16 {
								w.put(magBits(diff, cat), cat)
							}
						}
					}
				}
			}
		}
		w.flush()
		out.Write(w.buf.Bytes())
	}
	out.Write([]byte{0xFF, 0xD9})
	return out.Bytes()
}
