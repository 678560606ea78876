package jpegx

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/jpegenc"
)

const tw, th = 104, 78 // deliberately not a multiple of 16

// seg is one marker segment of a JPEG; for SOS, dataEnd is where the
// entropy-coded data after it ends.
type seg struct {
	marker            byte
	off, end, dataEnd int
}

func segments(b []byte) []seg {
	var out []seg
	p := 2
	for p+4 <= len(b) {
		if b[p] != 0xFF {
			p++
			continue
		}
		m := b[p+1]
		if m == 0xD9 || (m >= 0xD0 && m <= 0xD7) || m == 0 || m == 0xFF {
			p++
			continue
		}
		n := int(b[p+2])<<8 | int(b[p+3])
		s := seg{marker: m, off: p, end: p + 2 + n}
		s.dataEnd = s.end
		if m == 0xDA {
			q := s.end
			for q+1 < len(b) {
				if b[q] == 0xFF && b[q+1] != 0 && (b[q+1] < 0xD0 || b[q+1] > 0xD7) {
					break
				}
				q++
			}
			s.dataEnd = q
		}
		out = append(out, s)
		p = s.dataEnd
	}
	return out
}

func firstSeg(b []byte, m byte) seg {
	for _, s := range segments(b) {
		if s.marker == m {
			return s
		}
	}
	panic(fmt.Sprintf("no marker %x", m))
}

func cut(b []byte, from, to int) []byte {
	out := append([]byte{}, b[:from]...)
	return append(out, b[to:]...)
}

func insert(b []byte, at int, x []byte) []byte {
	out := append([]byte{}, b[:at]...)
	out = append(out, x...)
	return append(out, b[at:]...)
}

func goJPEG(img image.Image, q int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func grayOf(img *image.RGBA) *image.Gray {
	g := image.NewGray(img.Bounds())
	for y := range img.Bounds().Dy() {
		for x := range img.Bounds().Dx() {
			p := img.RGBAAt(x, y)
			g.Pix[y*g.Stride+x] = clampF(0.299*float64(p.R) + 0.587*float64(p.G) + 0.114*float64(p.B))
		}
	}
	return g
}

// lumaAt is the JPEG luma of a pixel: the Y plane where there is one.
func lumaAt(img image.Image, x, y int) float64 {
	switch m := img.(type) {
	case *image.YCbCr:
		return float64(m.Y[m.YOffset(x, y)])
	case *image.Gray:
		return float64(m.GrayAt(x, y).Y)
	}
	r, g, b, _ := img.At(x, y).RGBA()
	return 0.299*float64(r>>8) + 0.587*float64(g>>8) + 0.114*float64(b>>8)
}

// lumaGrid box-averages luma over gw×gh cells of img's bounds, rows
// [0, rows) of the grid only.
func lumaGrid(img image.Image, gw, gh int) []float64 {
	b := img.Bounds()
	out := make([]float64, gw*gh)
	for j := range gh {
		for i := range gw {
			x0, x1 := b.Min.X+i*b.Dx()/gw, b.Min.X+(i+1)*b.Dx()/gw
			y0, y1 := b.Min.Y+j*b.Dy()/gh, b.Min.Y+(j+1)*b.Dy()/gh
			s, n := 0.0, 0
			for y := y0; y < max(y1, y0+1); y++ {
				for x := x0; x < max(x1, x0+1); x++ {
					s += lumaAt(img, x, y)
					n++
				}
			}
			out[j*gw+i] = s / float64(n)
		}
	}
	return out
}

const gridW, gridH = 13, 6

// compareLuma checks the decoded picture against the intended one on a
// coarse luma grid, over grid rows [r0, r1).
func compareLuma(t *testing.T, got, want image.Image, r0, r1 int, meanTol, maxTol float64) {
	t.Helper()
	g, w := lumaGrid(got, gridW, gridH), lumaGrid(want, gridW, gridH)
	sum, worst := 0.0, 0.0
	for j := r0; j < r1; j++ {
		for i := range gridW {
			d := math.Abs(g[j*gridW+i] - w[j*gridW+i])
			sum += d
			worst = max(worst, d)
		}
	}
	mean := sum / float64((r1-r0)*gridW)
	if mean > meanTol || worst > maxTol {
		t.Errorf("luma grid rows %d..%d: mean diff %.2f (tol %.1f), worst %.2f (tol %.1f)", r0, r1, mean, meanTol, worst, maxTol)
	}
}

// checkGrey asserts grid rows [r0, r1) are mid-grey.
func checkGrey(t *testing.T, got image.Image, r0, r1 int) {
	t.Helper()
	g := lumaGrid(got, gridW, gridH)
	for j := r0; j < r1; j++ {
		for i := range gridW {
			if d := math.Abs(g[j*gridW+i] - 128); d > 2 {
				t.Errorf("cell %d,%d luma %.1f, want mid-grey", i, j, g[j*gridW+i])
				return
			}
		}
	}
}

// compareExact checks got within ±tol per channel of want.
func compareExact(t *testing.T, got, want image.Image, tol int) {
	t.Helper()
	if got.Bounds() != want.Bounds() {
		t.Fatalf("bounds %v, image/jpeg %v", got.Bounds(), want.Bounds())
	}
	worst := 0
	diff := func(a, b uint8) {
		d := int(a) - int(b)
		if d < 0 {
			d = -d
		}
		worst = max(worst, d)
	}
	gy, ok1 := got.(*image.YCbCr)
	wy, ok2 := want.(*image.YCbCr)
	b := got.Bounds()
	if ok1 && ok2 && gy.SubsampleRatio == wy.SubsampleRatio {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				diff(gy.Y[gy.YOffset(x, y)], wy.Y[wy.YOffset(x, y)])
				diff(gy.Cb[gy.COffset(x, y)], wy.Cb[wy.COffset(x, y)])
				diff(gy.Cr[gy.COffset(x, y)], wy.Cr[wy.COffset(x, y)])
			}
		}
	} else {
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				p := color.RGBAModel.Convert(got.At(x, y)).(color.RGBA)
				q := color.RGBAModel.Convert(want.At(x, y)).(color.RGBA)
				diff(p.R, q.R)
				diff(p.G, q.G)
				diff(p.B, q.B)
			}
		}
	}
	if worst > tol {
		t.Errorf("differs from image/jpeg by up to %d per channel (tol %d)", worst, tol)
	}
}

type tcase struct {
	name      string
	data      []byte
	want      image.Image // intended picture
	maxPixels int
	scale     int
	trunc     bool
	goSame    bool // image/jpeg decodes it and we must be within ±2
	goRef     []byte
	rows      [2]int // grid rows that must match the picture; zero value: all
	greyFrom  int    // grid rows from here on must be mid-grey (0: none)
	meanTol   float64
	anyTrunc  bool // the truncation flag may go either way
	check     func(t *testing.T, r Result)
}

func TestDecodeTable(t *testing.T) {
	for _, c := range tableCases() {
		t.Run(c.name, func(t *testing.T) { c.run(t) })
	}
}

// tableCases builds every input of the table test.
func tableCases() []tcase {
	pic := synthPicture(tw, th, 1)
	gray := grayOf(pic)
	goBase := goJPEG(pic, 92)
	goGray := goJPEG(gray, 92)
	sos := firstSeg(goBase, 0xDA)
	entropy := sos.dataEnd - sos.end

	enc := func(o jpegenc.Options) []byte {
		if o.Adobe == 0 && o.Color != "rgb" && o.Color != "cmyk" {
			o.Adobe = -1
		}
		return encodeJPEG(pic, o)
	}
	base := jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1}
	with := func(f func(o *jpegenc.Options)) jpegenc.Options {
		o := base
		f(&o)
		return o
	}
	restartFile := enc(with(func(o *jpegenc.Options) { o.Restart = 2; o.StdTables = true }))
	rstPositions := func(b []byte) []int {
		var ps []int
		for i := 0; i+1 < len(b); i++ {
			if b[i] == 0xFF && b[i+1] >= 0xD0 && b[i+1] <= 0xD7 {
				ps = append(ps, i)
			}
		}
		return ps
	}

	var cases []tcase
	add := func(c tcase) { cases = append(cases, c) }

	// Valid files.
	add(tcase{name: "go-baseline-420", data: goBase, want: pic, goSame: true})
	add(tcase{name: "go-gray", data: goGray, want: gray, goSame: true})
	for _, s := range []struct {
		name string
		hv   []int
		goOK bool
	}{
		{"444", []int{1, 1, 1, 1, 1, 1}, true},
		{"422", []int{2, 1, 1, 1, 1, 1}, true},
		{"440", []int{1, 2, 1, 1, 1, 1}, true},
		{"420", []int{2, 2, 1, 1, 1, 1}, true},
		{"411", []int{4, 1, 1, 1, 1, 1}, true},
		{"410", []int{4, 2, 1, 1, 1, 1}, false},
		{"Y3x1", []int{3, 1, 1, 1, 1, 1}, false},
		{"Y1x4", []int{1, 4, 1, 1, 1, 1}, false},
		{"Y4x4", []int{4, 4, 1, 1, 1, 1}, false},
		{"chroma-finer", []int{1, 1, 2, 2, 2, 2}, false},
		{"Y3x2-C2x1", []int{3, 2, 2, 1, 2, 1}, false},
		{"Cb1x1-Cr2x1", []int{2, 2, 1, 1, 2, 1}, false},
	} {
		data := enc(with(func(o *jpegenc.Options) { o.Comps = jpegenc.Components(1, s.hv...) }))
		add(tcase{name: "seq-" + s.name, data: data, want: pic, goSame: s.goOK})
		data = enc(with(func(o *jpegenc.Options) { o.Comps = jpegenc.Components(1, s.hv...); o.Progressive = true }))
		add(tcase{name: "prog-" + s.name, data: data, want: pic, goSame: s.goOK})
	}
	add(tcase{name: "prog-gray", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Progressive: true, Adobe: -1}), want: gray, goSame: true})
	add(tcase{name: "prog-gray-2x2", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 2, 2), Color: "gray", Progressive: true, Adobe: -1}), want: gray, goSame: true})
	add(tcase{name: "prog-spectral-only", data: enc(with(func(o *jpegenc.Options) {
		o.Progressive = true
		o.Scans = []jpegenc.Scan{{Comps: []int{0, 1, 2}, Ss: 0, Se: 0}}
		for c := range 3 {
			o.Scans = append(o.Scans, jpegenc.Scan{Comps: []int{c}, Ss: 1, Se: 2}, jpegenc.Scan{Comps: []int{c}, Ss: 3, Se: 9}, jpegenc.Scan{Comps: []int{c}, Ss: 10, Se: 63})
		}
	})), want: pic, goSame: true})
	add(tcase{name: "prog-noninterleaved-dc", data: enc(with(func(o *jpegenc.Options) {
		o.Progressive = true
		o.Scans = []jpegenc.Scan{{Comps: []int{0}, Ss: 0, Se: 0, Al: 2}, {Comps: []int{1}, Ss: 0, Se: 0}, {Comps: []int{2}, Ss: 0, Se: 0},
			{Comps: []int{0}, Ss: 1, Se: 63, Al: 3}, {Comps: []int{0}, Ss: 0, Se: 0, Ah: 2, Al: 1}, {Comps: []int{0}, Ss: 0, Se: 0, Ah: 1, Al: 0},
			{Comps: []int{0}, Ss: 1, Se: 63, Ah: 3, Al: 2}, {Comps: []int{0}, Ss: 1, Se: 63, Ah: 2, Al: 1}, {Comps: []int{0}, Ss: 1, Se: 63, Ah: 1, Al: 0},
			{Comps: []int{1}, Ss: 1, Se: 63}, {Comps: []int{2}, Ss: 1, Se: 63}}
	})), want: pic, goSame: true})
	// image/jpeg miscounts restart intervals in a non-interleaved scan of
	// a subsampled component (it fails on this file); the same
	// coefficients without restarts are the reference.
	add(tcase{name: "prog-restart", data: enc(with(func(o *jpegenc.Options) { o.Progressive = true; o.Restart = 3 })), want: pic,
		goRef: enc(with(func(o *jpegenc.Options) { o.Progressive = true }))})
	add(tcase{name: "seq-noninterleaved", data: enc(with(func(o *jpegenc.Options) {
		o.Scans = []jpegenc.Scan{{Comps: []int{0}, Se: 63}, {Comps: []int{1}, Se: 63}, {Comps: []int{2}, Se: 63}}
	})), want: pic, goSame: true})

	// Colour transforms.
	add(tcase{name: "rgb-adobe0", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1), Color: "rgb", Adobe: 0}), want: pic, goSame: true})
	rgbIDs := []jpegenc.Component{{ID: 'R', H: 1, V: 1}, {ID: 'G', H: 1, V: 1}, {ID: 'B', H: 1, V: 1}}
	add(tcase{name: "rgb-ids-RGB-real", data: enc(jpegenc.Options{Comps: rgbIDs, Color: "rgb", Adobe: -1}), want: pic, goSame: true})
	add(tcase{name: "ycc-jfif-beats-RGB-ids", data: enc(jpegenc.Options{Comps: rgbIDs, Color: "ycbcr", JFIF: true, Adobe: -1}), want: pic})
	add(tcase{name: "ycc-adobe1", data: enc(with(func(o *jpegenc.Options) { o.JFIF = false; o.Adobe = 1 })), want: pic, goSame: true})
	add(tcase{name: "ycc-no-markers", data: enc(with(func(o *jpegenc.Options) { o.JFIF = false })), want: pic, goSame: true})
	add(tcase{name: "cmyk-adobe0", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1, 1, 1), Color: "cmyk", Adobe: 0}), want: pic, goSame: true})
	add(tcase{name: "cmyk-adobe0-prog-sub", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1, 2, 2), Color: "cmyk", Adobe: 0, Progressive: true}), want: pic})
	add(tcase{name: "cmyk-no-adobe", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1, 1, 1), Color: "cmyk", Adobe: -1}), want: pic})
	{
		// The Adobe marker may come after the frame header: it still
		// counts, as it is read before the first scan.
		b := enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1), Color: "rgb", Adobe: 0})
		a := firstSeg(b, 0xEE)
		app := append([]byte{}, b[a.off:a.end]...)
		b = cut(b, a.off, a.end)
		b = insert(b, firstSeg(b, 0xC0).end, app)
		add(tcase{name: "rgb-adobe0-after-sof", data: b, want: pic, goSame: true})
	}
	add(tcase{name: "ycck-adobe2", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1, 2, 2), Color: "ycck", Adobe: 2}), want: pic, goSame: true})

	// No DHT at all (Motion-JPEG): image/jpeg's writer uses the Annex K
	// tables, so dropping its DHT segments leaves a valid MJPEG frame.
	noDHT := goBase
	for {
		var dht *seg
		for _, s := range segments(noDHT) {
			if s.marker == 0xC4 {
				dht = &s
				break
			}
		}
		if dht == nil {
			break
		}
		noDHT = cut(noDHT, dht.off, dht.end)
	}
	add(tcase{name: "mjpeg-no-dht", data: noDHT, want: pic, goRef: goBase})
	add(tcase{name: "mjpeg-no-dht-restart", data: enc(with(func(o *jpegenc.Options) { o.StdTables = true; o.OmitDHT = true; o.Restart = 5 })), want: pic})

	// DNL: height 0 in the frame header, the real one after the scan.
	{
		b := append([]byte{}, goBase...)
		sof := firstSeg(b, 0xC0)
		b[sof.off+5], b[sof.off+6] = 0, 0
		sos := firstSeg(b, 0xDA)
		b = insert(b, sos.dataEnd, []byte{0xFF, 0xDC, 0, 4, byte(th >> 8), byte(th)})
		add(tcase{name: "dnl", data: b, want: pic, goRef: goBase})
	}

	// Duplicate component IDs: all three components called 1.
	{
		b := append([]byte{}, goBase...)
		sof := firstSeg(b, 0xC0)
		for i := range 3 {
			b[sof.off+10+3*i] = 1
		}
		sos := firstSeg(b, 0xDA)
		for i := range 3 {
			b[sos.off+5+2*i] = 1
		}
		add(tcase{name: "duplicate-ids", data: b, want: pic, goRef: goBase})
	}

	// Truncation and a missing EOI.
	for _, f := range []float64{0.3, 0.6, 0.95} {
		n := sos.end + int(f*float64(entropy))
		b := append([]byte{}, goBase[:n]...)
		c := tcase{name: fmt.Sprintf("truncated-%.0f%%", f*100), data: b, want: pic, trunc: true}
		// The grid rows fully inside the decoded part match, the rows
		// past it are grey.
		c.rows = [2]int{0, int(math.Floor(f*gridH - 1))}
		if c.rows[1] <= 0 {
			c.rows = [2]int{-1, -1} // nothing whole to compare
		}
		if f < 0.9 {
			c.greyFrom = int(math.Ceil(f*gridH + 0.5))
		}
		add(c)
	}
	add(tcase{name: "missing-eoi", data: goBase[:len(goBase)-2], want: pic, goRef: goBase})
	{
		p := enc(with(func(o *jpegenc.Options) { o.Progressive = true }))
		ss := segments(p)
		var scans []seg
		for _, s := range ss {
			if s.marker == 0xDA {
				scans = append(scans, s)
			}
		}
		// Cut in the middle of the luma 6..63 band: DC and the low band
		// are in, so the picture is all there at lower quality.
		s := scans[4]
		b := append([]byte{}, p[:s.end+(s.dataEnd-s.end)/2]...)
		add(tcase{name: "prog-truncated", data: b, want: pic, trunc: true, meanTol: 4})
		// Truncated during the first (DC) scan: the lower part is grey.
		s = scans[0]
		b = append([]byte{}, p[:s.end+(s.dataEnd-s.end)/2]...)
		add(tcase{name: "prog-truncated-dc", data: b, want: pic, trunc: true, rows: [2]int{0, 2}, greyFrom: 4, meanTol: 10})
	}

	// Restart markers.
	add(tcase{name: "restart-valid", data: restartFile, want: pic})
	{
		b := append([]byte{}, restartFile...)
		for _, p := range rstPositions(b) {
			b[p+1] = 0xD0
		}
		add(tcase{name: "restart-all-rst0", data: b, want: pic})
		b = append([]byte{}, restartFile...)
		for i, p := range rstPositions(b) {
			b[p+1] = 0xD0 + byte((i*5+3)%8)
		}
		add(tcase{name: "restart-wrong-numbers", data: b, want: pic})
		ps := rstPositions(restartFile)
		b = cut(restartFile, ps[4], ps[4]+2)
		add(tcase{name: "restart-missing-one", data: b, want: pic})
		b = insert(restartFile, ps[6], []byte{0x12, 0x34, 0x56})
		add(tcase{name: "restart-garbage-before", data: b, want: pic})
		b = cut(restartFile, ps[7], ps[7]+2)
		b = cut(b, ps[3], ps[3]+2)
		for _, p := range rstPositions(b) {
			b[p+1] = 0xD7
		}
		add(tcase{name: "restart-missing-and-renumbered", data: b, want: pic, meanTol: 8, anyTrunc: true})
		add(tcase{name: "restart-truncated", data: restartFile[:len(restartFile)/2], want: pic, trunc: true, rows: [2]int{0, 2}, greyFrom: 4})
		// One interval's data is missing (MCUs 12-14: the end of the
		// second MCU row and the start of the third). Like libjpeg-turbo,
		// the first MCU decodes the zero fill, the others are grey, and
		// decoding carries on in step after the next marker.
		r3 := enc(with(func(o *jpegenc.Options) { o.Restart = 3; o.StdTables = true }))
		ps3 := rstPositions(r3)
		b = cut(r3, ps3[3]+2, ps3[4])
		add(tcase{name: "restart-gap", data: b, want: pic, trunc: true, meanTol: 5})
	}

	// Arithmetic coding (SOF9/SOF10, DAC).
	add(tcase{name: "arith-seq-420", data: enc(with(func(o *jpegenc.Options) { o.Arith = true })), want: pic})
	add(tcase{name: "arith-seq-444-dac", data: enc(with(func(o *jpegenc.Options) {
		o.Arith, o.Comps, o.DAC, o.DACL, o.DACU, o.DACK = true, jpegenc.Components(1, 1, 1, 1, 1, 1, 1), true, 1, 4, 12
	})), want: pic})
	add(tcase{name: "arith-prog", data: enc(with(func(o *jpegenc.Options) { o.Arith, o.Progressive = true, true })), want: pic})
	add(tcase{name: "arith-prog-restart", data: enc(with(func(o *jpegenc.Options) { o.Arith, o.Progressive, o.Restart = true, true, 3 })), want: pic})
	add(tcase{name: "arith-seq-restart-gray", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Adobe: -1, Arith: true, Restart: 4}), want: gray})
	{
		b := enc(with(func(o *jpegenc.Options) { o.Arith = true }))
		s := firstSeg(b, 0xDA)
		b = b[:s.end+(s.dataEnd-s.end)/2]
		add(tcase{name: "arith-truncated", data: b, want: pic, trunc: true, rows: [2]int{0, 2}, greyFrom: 4})
	}

	// 12-bit samples, brought to 8 bits.
	add(tcase{name: "12bit-seq", data: enc(with(func(o *jpegenc.Options) { o.Precision = 12 })), want: pic})
	add(tcase{name: "12bit-prog", data: enc(with(func(o *jpegenc.Options) { o.Precision, o.Progressive = 12, true })), want: pic})
	add(tcase{name: "12bit-arith-gray", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Adobe: -1, Arith: true, Precision: 12}), want: gray})

	// Lossless (SOF3).
	for pr := 1; pr <= 7; pr++ {
		add(tcase{name: fmt.Sprintf("lossless-gray-pred%d", pr), data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Adobe: -1, Lossless: true, Predictor: pr}), want: gray,
			check: func(t *testing.T, r Result) {
				// Lossless: exactly the 8-bit samples that were coded.
				g := r.Image.(*image.Gray)
				want := planesFor(pic, "gray")[0]
				for i, v := range want {
					if got := g.Pix[(i/tw)*g.Stride+i%tw]; got != clampF(v) {
						t.Fatalf("sample %d: %d, want %d", i, got, clampF(v))
					}
				}
			}})
	}
	add(tcase{name: "lossless-ycc-420-pt2", data: enc(with(func(o *jpegenc.Options) { o.Lossless, o.Predictor, o.PT = true, 4, 2 })), want: pic})
	add(tcase{name: "lossless-rgb-restart", data: enc(jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1), Color: "rgb", Adobe: 0, Lossless: true, Predictor: 6, Restart: 50}), want: pic})
	add(tcase{name: "lossless-noninterleaved", data: enc(with(func(o *jpegenc.Options) {
		o.Lossless, o.Predictor = true, 7
		o.Scans = []jpegenc.Scan{{Comps: []int{0}}, {Comps: []int{1}}, {Comps: []int{2}}}
	})), want: pic})
	{
		b := enc(with(func(o *jpegenc.Options) { o.Lossless, o.Predictor = true, 1 }))
		s := firstSeg(b, 0xDA)
		b = b[:s.end+(s.dataEnd-s.end)/2]
		add(tcase{name: "lossless-truncated", data: b, want: pic, trunc: true, rows: [2]int{0, 2}, greyFrom: 4})
	}

	// DCT scaling.
	big := synthPicture(320, 240, 2)
	bigGo := goJPEG(big, 90)
	bigProg := encodeJPEG(big, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, Progressive: true})
	for _, s := range []int{2, 4, 8} {
		mp := (320 / s) * (240 / s)
		add(tcase{name: fmt.Sprintf("scale-1/%d", s), data: bigGo, want: big, maxPixels: mp, scale: s})
		add(tcase{name: fmt.Sprintf("scale-1/%d-prog", s), data: bigProg, want: big, maxPixels: mp, scale: s})
		add(tcase{name: fmt.Sprintf("scale-1/%d-12bit", s), data: encodeJPEG(big, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", Adobe: -1, Precision: 12}),
			want: big, maxPixels: mp, scale: s})
		add(tcase{name: fmt.Sprintf("scale-1/%d-prog-gray", s), data: encodeJPEG(big, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Progressive: true, Adobe: -1}),
			want: grayOf(big), maxPixels: mp, scale: s})
	}
	add(tcase{name: "scale-1/4-lossless", data: encodeJPEG(big, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", Adobe: -1, Lossless: true, Predictor: 5}),
		want: big, maxPixels: 80 * 60, scale: 4})
	add(tcase{name: "scale-1/4-arith-prog", data: encodeJPEG(big, jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", Adobe: -1, Progressive: true, Arith: true}),
		want: big, maxPixels: 80 * 60, scale: 4})
	add(tcase{name: "scale-1/4-truncated", data: bigGo[:len(bigGo)/2], want: big, maxPixels: 80 * 60, scale: 4, trunc: true, rows: [2]int{0, 2}, greyFrom: 4})

	return cases
}

func (c tcase) run(t *testing.T) {
	res, err := DecodeBytes(c.data, c.maxPixels)
	if err != nil {
		t.Fatal(err)
	}
	wantScale := max(c.scale, 1)
	if res.Scale != wantScale {
		t.Errorf("scale %d, want %d", res.Scale, wantScale)
	}
	if res.Truncated != c.trunc && !c.anyTrunc {
		t.Errorf("truncated %v, want %v", res.Truncated, c.trunc)
	}
	wb := c.want.Bounds()
	if want := image.Rect(0, 0, (wb.Dx()+wantScale-1)/wantScale, (wb.Dy()+wantScale-1)/wantScale); res.Image.Bounds() != want {
		t.Fatalf("bounds %v, want %v", res.Image.Bounds(), want)
	}
	rows := c.rows
	if rows == [2]int{} {
		rows = [2]int{0, gridH}
	}
	tol := c.meanTol
	if tol == 0 {
		tol = 3
	}
	if rows[1] > rows[0] {
		// A 1/8 picture's cells straddle sharp edges differently.
		compareLuma(t, res.Image, c.want, rows[0], rows[1], tol, 4*tol*float64(wantScale+1)/2)
	}
	if c.greyFrom > 0 {
		checkGrey(t, res.Image, c.greyFrom, gridH)
	}
	ref := c.goRef
	if c.goSame {
		ref = c.data
	}
	if ref != nil {
		w, err := jpeg.Decode(bytes.NewReader(ref))
		if err != nil {
			t.Fatalf("image/jpeg: %v", err)
		}
		compareExact(t, res.Image, w, 2)
	}
	if c.check != nil {
		c.check(t, res)
	}
}

func TestRefusals(t *testing.T) {
	pic := synthPicture(tw, th, 3)
	goBase := goJPEG(pic, 90)
	sof := firstSeg(goBase, 0xC0)
	huge := append([]byte{}, goBase...)
	huge[sof.off+5], huge[sof.off+6], huge[sof.off+7], huge[sof.off+8] = 0xFF, 0xFF, 0xFF, 0xFF
	if _, err := DecodeBytes(huge, 0); !errors.Is(err, ErrTooBig) {
		t.Errorf("65535x65535: %v, want ErrTooBig", err)
	}
	// 20000x20000 at 1/8 fits 7 MP: decoded (mostly grey), not refused.
	huge[sof.off+5], huge[sof.off+6], huge[sof.off+7], huge[sof.off+8] = 0x4E, 0x20, 0x4E, 0x20
	if r, err := DecodeBytes(huge, 7_000_000); err != nil || r.Scale != 8 || !r.Truncated {
		t.Errorf("20000x20000 at 7MP: scale %d trunc %v err %v", r.Scale, r.Truncated, err)
	}
	// Bounded exactly at 1/8.
	if _, err := DecodeBytes(goBase, (tw+7)/8*((th+7)/8)-1); !errors.Is(err, ErrTooBig) {
		t.Errorf("below 1/8: %v, want ErrTooBig", err)
	}
	many := append([]byte{}, goBase...)
	many[sof.off+9] = 200
	if _, err := DecodeBytes(many, 0); err == nil {
		t.Error("200 components accepted")
	}
	if _, err := DecodeBytes([]byte("GIF89a"), 0); !errors.Is(err, ErrNotJPEG) {
		t.Errorf("GIF: %v", err)
	}
	if _, err := DecodeBytes(goBase[:sof.off+4], 0); err == nil {
		t.Error("headers only accepted")
	}
}

// TestManyScans: a progressive file of thousands of near-empty scans must
// cost work bounded by its size, not scans × blocks, and is refused with
// ErrWorkBound: what was decoded when the bound stopped it is not what a
// viewer that kept going shows, so it must never be judged as a
// truncated picture. The same picture with an ordinary scan script
// decodes.
func TestManyScans(t *testing.T) {
	pic := synthPicture(256, 256, 4)
	o := jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Progressive: true, Adobe: -1}
	o.Scans = []jpegenc.Scan{{Comps: []int{0}, Ss: 0, Se: 0}}
	if _, err := DecodeBytes(encodeJPEG(pic, o), 0); err != nil {
		t.Fatalf("one DC scan: %v", err)
	}
	for range 3000 {
		o.Scans = append(o.Scans, jpegenc.Scan{Comps: []int{0}, Ss: 63, Se: 63, Al: 13})
	}
	data := encodeJPEG(pic, o)
	start := time.Now()
	res, err := DecodeBytes(data, 0)
	el := time.Since(start)
	if !errors.Is(err, ErrWorkBound) || res.Image != nil {
		t.Fatalf("err %v, image %v; want ErrWorkBound and no picture", err, res.Image != nil)
	}
	if el > 3*time.Second {
		t.Errorf("took %v", el)
	}
	t.Logf("%d bytes, %d scans: %v (%v)", len(data), len(o.Scans), el, err)
}

func TestIDCTMatchesDefinition(t *testing.T) {
	q := [64]uint16{}
	for i := range q {
		q[i] = 1
	}
	tab := makeIDCTTables(&q, 8)
	for trial := range 50 {
		var blk [64]int16
		for z := range 64 {
			if (z*7+trial)%5 == 0 || z == 0 {
				blk[z] = int16((z*37+trial*11)%61 - 30)
			}
		}
		var nat [64]int16
		for z, c := range blk {
			nat[unzig[z]] = c
		}
		var got [64]byte
		idct8(nat[:], tab, got[:], 8)
		for y := range 8 {
			for x := range 8 {
				s := 0.0
				for v := range 8 {
					for u := range 8 {
						cu, cv := 1.0, 1.0
						if u == 0 {
							cu = 1 / math.Sqrt2
						}
						if v == 0 {
							cv = 1 / math.Sqrt2
						}
						s += cu * cv * float64(blk[zigOf[v*8+u]]) * math.Cos(float64((2*x+1)*u)*math.Pi/16) * math.Cos(float64((2*y+1)*v)*math.Pi/16)
					}
				}
				want := math.Round(s/4 + 128)
				want = math.Max(0, math.Min(255, want))
				if math.Abs(float64(got[y*8+x])-want) > 1 {
					t.Fatalf("trial %d (%d,%d): %d, want %.0f", trial, x, y, got[y*8+x], want)
				}
			}
		}
	}
	if unzig != unzigRef {
		t.Fatalf("zig-zag table %v", unzig)
	}
}

// TestStdTablesMatchImageJPEG: image/jpeg's writer emits the Annex K
// tables; ours must be the same bytes.
func TestStdTablesMatchImageJPEG(t *testing.T) {
	b := goJPEG(synthPicture(16, 16, 5), 90)
	var got [][]byte
	for _, s := range segments(b) {
		if s.marker == 0xC4 {
			p := b[s.off+4 : s.end]
			for len(p) > 0 {
				n := 17
				for _, c := range p[1:17] {
					n += int(c)
				}
				got = append(got, p[:n])
				p = p[n:]
			}
		}
	}
	for _, g := range got {
		cl, id := g[0]>>4, g[0]&15
		e := stdEnc[cl][id]
		want := append([]byte{g[0]}, e.counts[:]...)
		want = append(want, e.vals...)
		if !bytes.Equal(g, want) {
			t.Errorf("table class %d id %d differs", cl, id)
		}
	}
	if len(got) != 4 {
		t.Errorf("found %d tables", len(got))
	}
}

// TestReducedIDCTs: the 4x4 and 2x2 reductions are the N-point IDCTs of
// the low-frequency corner (the 8-point IDCT sampled at group centres).
func TestReducedIDCTs(t *testing.T) {
	var q [64]uint16
	for i := range q {
		q[i] = uint16(1 + i%7)
	}
	tab := makeIDCTTables(&q, 8)
	for trial := range 40 {
		var blk [25]int16
		for z := range blk {
			if (z*5+trial)%3 == 0 || z == 0 {
				blk[z] = int16((z*29+trial*13)%41 - 20)
			}
		}
		for _, n := range []int{4, 2} {
			m := reducedMatrix(n)
			got := make([]byte, n*n)
			if n == 4 {
				idct4(blk[:], tab, got, 4)
			} else {
				idct2(blk[:], tab, got, 2)
			}
			for y := range n {
				for x := range n {
					s := 0.0
					for v := range n {
						for u := range n {
							z := zigOf[v*8+u]
							s += float64(m[y][v]) * float64(m[x][u]) * float64(blk[z]) * float64(q[z])
						}
					}
					want := math.Max(0, math.Min(255, math.Round(s+128)))
					if math.Abs(float64(got[y*n+x])-want) > 1 {
						t.Fatalf("%dx%d trial %d (%d,%d): %d, want %.0f", n, n, trial, x, y, got[y*n+x], want)
					}
				}
			}
		}
	}
}

func TestDecodeReaderAndConfig(t *testing.T) {
	pic := synthPicture(tw, th, 6)
	b := goJPEG(pic, 90)
	res, err := Decode(bytes.NewReader(b), 0)
	if err != nil || res.Scale != 1 || res.Truncated || res.Image.Bounds() != pic.Bounds() {
		t.Fatalf("Decode: %v %+v", err, res)
	}
	w, h, n, err := DecodeConfig(b)
	if err != nil || w != tw || h != th || n != 3 {
		t.Fatalf("DecodeConfig: %d %d %d %v", w, h, n, err)
	}
	// A DNL file's height comes from the DNL segment.
	sof := firstSeg(b, 0xC0)
	d := append([]byte{}, b...)
	d[sof.off+5], d[sof.off+6] = 0, 0
	d = insert(d, firstSeg(d, 0xDA).dataEnd, []byte{0xFF, 0xDC, 0, 4, 0, th})
	if _, h, _, err := DecodeConfig(d); err != nil || h != th {
		t.Fatalf("DecodeConfig with DNL: %d %v", h, err)
	}
	if _, _, _, err := DecodeConfig([]byte{0xFF, 0xD8, 0xFF}); err == nil {
		t.Fatal("DecodeConfig without a frame succeeded")
	}
}

// TestBadCodeLikeLibjpeg: a bit pattern no code matches costs 17 bits and
// yields symbol 0, as in libjpeg-turbo, so decoding after it stays in
// step with what a browser shows.
func TestBadCodeLikeLibjpeg(t *testing.T) {
	var counts [17]int
	counts[1] = 1 // the one code "0" is symbol 5
	tab, err := buildHuff(counts, []byte{5})
	if err != nil {
		t.Fatal(err)
	}
	var br bitReader
	br.reset([]byte{0xFF, 0x00, 0xFF, 0x00, 0x80, 0x00}, 0) // seventeen 1s, then 0
	if s := br.decode(tab); s != 0 {
		t.Fatalf("bad code gave %d", s)
	}
	if s := br.decode(tab); s != 5 {
		t.Fatalf("next symbol %d, want 5: the bad code did not take 17 bits", s)
	}
}

// TestNoScanYet: data that ends inside the first scan header shows as
// grey, as libjpeg-turbo shows it, rather than failing.
// TestSecondFrame: a second frame header after the first frame's scans
// ends the picture there; before any scan it is an error.
func TestSecondFrame(t *testing.T) {
	pic := synthPicture(tw, th, 9)
	b := goJPEG(pic, 90)
	sof := firstSeg(b, 0xC0)
	sos := firstSeg(b, 0xDA)
	second := append([]byte{}, b[sof.off:sos.dataEnd]...) // SOF, DHT..., SOS and data again
	withSecond := insert(b, sos.dataEnd, second)
	res, err := DecodeBytes(withSecond, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated {
		t.Error("not reported truncated")
	}
	compareLuma(t, res.Image, pic, 0, gridH, 3, 12)
	if _, err := DecodeBytes(insert(b, sof.end, b[sof.off:sof.end]), 0); err == nil {
		t.Error("two frame headers before any scan accepted")
	}
}

func TestNoScanYet(t *testing.T) {
	pic := synthPicture(tw, th, 8)
	b := goJPEG(pic, 90)
	s := firstSeg(b, 0xDA)
	res, err := DecodeBytes(b[:s.off+7], 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Truncated || res.Image.Bounds() != pic.Bounds() {
		t.Fatalf("truncated %v bounds %v", res.Truncated, res.Image.Bounds())
	}
	checkGrey(t, res.Image, 0, gridH)
	// With an EOI and no scan there is no picture at all.
	if _, err := DecodeBytes(append(b[:s.off:s.off], 0xFF, 0xD9), 0); err == nil {
		t.Fatal("frame without scans before EOI accepted")
	}
}
