package picture

import (
	"compress/flate"
	"fmt"
	"image"
	"image/color"
	"io"
)

// A PNG decoder as tolerant as Chromium's (libpng with its CRC and Adler-32
// checks relaxed, plus APNG): bad chunk CRCs and a bad zlib checksum are
// ignored, PLTE and tRNS count wherever they are, surplus data is ignored,
// and a truncated or damaged image stream decodes as far as it goes.
//
// For valid files the output is pixel-identical to image/png, in the same
// image types. It writes into the destination's Pix directly, and can keep
// every Nth row and column while decoding so a huge image costs bounded
// memory.

const (
	pngGray      = 0
	pngRGB       = 2
	pngPalette   = 3
	pngGrayAlpha = 4
	pngRGBA      = 6
)

// maxPNGRowBytes bounds one row of filtered data (two are kept), whatever
// the scale: a 2-gigapixel-wide row of a tiny image is still refused.
const maxPNGRowBytes = 1 << 24

type pngChunkData [][]byte

// apngDelay is an fcTL delay in centiseconds (a zero denominator means
// 1/100 s).
func apngDelay(num, den uint16) int {
	if den == 0 {
		den = 100
	}
	return int(num) * 100 / int(den)
}

// pngFrame is one APNG frame (fcTL and its data).
type pngFrame struct {
	w, h, x, y int
	dispose    byte // 0 none, 1 background, 2 previous
	blend      byte // 0 source, 1 over
	delay      int  // centiseconds
	data       pngChunkData
	isIDAT     bool
}

type pngFile struct {
	w, h              int
	depth, ct, interl byte
	plte              []byte
	trns              []byte
	idat              pngChunkData
	exif              []byte
	animated          bool // acTL before IDAT
	numFrames         int
	frames            []*pngFrame
	cut               bool // a chunk ran past the end of the data
}

func validPNGDepth(ct, depth byte) bool {
	switch ct {
	case pngGray:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8 || depth == 16
	case pngPalette:
		return depth == 1 || depth == 2 || depth == 4 || depth == 8
	case pngRGB, pngGrayAlpha, pngRGBA:
		return depth == 8 || depth == 16
	}
	return false
}

func configPNG(head []byte) (int, int, error) {
	if len(head) < 8+8+13 || string(head[12:16]) != "IHDR" {
		return 0, 0, corruptf("png", "no IHDR")
	}
	w, h := be32(head[16:]), be32(head[20:])
	if w > 1<<31-1 || h > 1<<31-1 {
		return 0, 0, corruptf("png", "bad size")
	}
	return int(w), int(h), nil
}

// parsePNG walks the chunks; nothing is decompressed yet.
func parsePNG(data []byte) (*pngFile, error) {
	f := &pngFile{}
	pos := 8
	seenIDAT := false
	var cur *pngFrame
	for first := true; pos+8 <= len(data); first = false {
		n := be32(data[pos:])
		typ := string(data[pos+4 : pos+8])
		start := pos + 8
		if n > 1<<31-1 {
			break
		}
		end := start + int(n)
		if end > len(data) || end < start {
			end = len(data)
			f.cut = true
		}
		body := data[start:end]
		pos = end + 4 // CRC ignored, as Chromium does
		if first {
			if typ != "IHDR" || len(body) < 13 {
				return nil, corruptf("png", "first chunk is not IHDR")
			}
			w, h := be32(body), be32(body[4:])
			if w == 0 || h == 0 || w > 1<<31-1 || h > 1<<31-1 {
				return nil, corruptf("png", "bad size %dx%d", w, h)
			}
			f.w, f.h = int(w), int(h)
			f.depth, f.ct, f.interl = body[8], body[9], body[12]
			if !validPNGDepth(f.ct, f.depth) {
				return nil, corruptf("png", "bad colour type %d depth %d", f.ct, f.depth)
			}
			if f.interl > 1 {
				return nil, corruptf("png", "bad interlace method %d", f.interl)
			}
			continue
		}
		switch typ {
		case "PLTE":
			if f.plte == nil && len(body) >= 3 {
				f.plte = body[:min(len(body)/3, 256)*3]
			}
		case "tRNS":
			if f.trns == nil {
				f.trns = body
			}
		case "IDAT":
			if !seenIDAT && cur != nil && len(f.frames) == 1 && cur.data == nil {
				cur.isIDAT = true
			}
			seenIDAT = true
			f.idat = append(f.idat, body)
		case "acTL":
			if !seenIDAT && len(body) >= 8 && !f.animated {
				f.animated = true
				f.numFrames = int(min(be32(body), 1<<20))
			}
		case "fcTL":
			if !f.animated || len(body) < 26 {
				break
			}
			cur = &pngFrame{
				w: int(min(be32(body[4:]), 1<<31-1)), h: int(min(be32(body[8:]), 1<<31-1)),
				x: int(min(be32(body[12:]), 1<<31-1)), y: int(min(be32(body[16:]), 1<<31-1)),
				dispose: body[24], blend: body[25], delay: apngDelay(be16(body[20:]), be16(body[22:])),
			}
			f.frames = append(f.frames, cur)
		case "fdAT":
			if cur != nil && !cur.isIDAT && len(body) >= 4 {
				cur.data = append(cur.data, body[4:])
			}
		case "eXIf":
			if f.exif == nil {
				f.exif = body
			}
		case "IEND":
			pos = len(data)
		}
	}
	if len(f.idat) == 0 {
		return nil, corruptf("png", "no image data")
	}
	for _, fr := range f.frames {
		if fr.isIDAT {
			fr.data = f.idat
		}
	}
	if f.animated && f.numFrames > 0 && len(f.frames) > f.numFrames {
		f.frames = f.frames[:f.numFrames]
	}
	return f, nil
}

func decodePNG(data []byte, l *limits) (*Picture, error) {
	f, err := parsePNG(data)
	if err != nil {
		return nil, err
	}
	scale, err := l.scaleFor("png", f.w, f.h)
	if err != nil {
		return nil, err
	}
	if int64(f.w)*int64(pngBitsPerPixel(f.ct, f.depth)) > 8*maxPNGRowBytes {
		return nil, corruptf("png", "row of %d pixels is too wide", f.w)
	}
	orient := 1
	if f.exif != nil {
		orient = exifOrientation(f.exif)
	}
	if f.animated && len(f.frames) > 0 {
		pic, err := decodeAPNG(f, l, scale)
		if err != nil {
			return nil, err
		}
		pic.Orientation = orient
		return pic, nil
	}
	l.spend(int64(f.w) * int64(f.h))
	d := newPNGDecoder(f, f.w, f.h, 0, 0, scale, false, nil)
	ok := d.decode(f.idat)
	pic := still(d.img, scale, !ok)
	pic.Orientation = orient
	return pic, nil
}

// decodeAPNG composites the animation; see Picture for where the IDAT
// image goes.
func decodeAPNG(f *pngFile, l *limits, scale int) (*Picture, error) {
	cw, ch := ceilDiv(f.w, scale), ceilDiv(f.h, scale)
	canvasPx := int64(cw) * int64(ch)
	pic := &Picture{Scale: scale, Orientation: 1}
	quota := l.frameQuota(canvasPx)
	frames := f.frames
	if !frames[0].isIDAT {
		// The default image is what non-APNG viewers show: keep it first.
		l.spend(int64(f.w) * int64(f.h))
		d := newPNGDecoder(f, f.w, f.h, 0, 0, scale, false, nil)
		if !d.decode(f.idat) {
			pic.Truncated = true
		}
		pic.Frames = append(pic.Frames, d.img)
		pic.FrameIndex = append(pic.FrameIndex, -1)
		quota--
		if quota < 1 {
			return pic, nil
		}
	}
	costs := make([]int64, len(frames))
	for i, fr := range frames {
		costs[i] = 2 * int64(fr.w) * int64(fr.h)
	}
	if m := l.affordable(costs); m < len(frames) {
		frames, pic.Truncated = frames[:m], true
	}
	if len(frames) == 0 && len(pic.Frames) == 0 {
		return nil, fmt.Errorf("%w: png: first APNG frame is beyond the work budget", ErrTooManyPixels)
	}
	delays := make([]int, len(frames))
	for i, fr := range frames {
		delays[i] = fr.delay
	}
	keep := sampleFramesTimed(delays, quota)
	canvas := image.NewNRGBA(image.Rect(0, 0, cw, ch))
	var saved *image.NRGBA
	scratch := make([]byte, 0)
	for i, fr := range frames {
		if fr.w <= 0 || fr.h <= 0 || fr.x+fr.w > f.w || fr.y+fr.h > f.h || fr.x+fr.w < fr.x || fr.y+fr.h < fr.y ||
			(i == 0 && (fr.x != 0 || fr.y != 0 || fr.w != f.w || fr.h != f.h)) {
			// libpng's APNG support stops at an fcTL outside the canvas.
			pic.Truncated = true
			break
		}
		l.spend(costs[i])
		d := newPNGDecoder(f, fr.w, fr.h, fr.x, fr.y, scale, true, scratch)
		if !d.decode(fr.data) {
			pic.Truncated = true
		}
		fi := d.img.(*image.NRGBA)
		scratch = fi.Pix[:0]
		dispose := fr.dispose
		if i == 0 && dispose == 2 {
			dispose = 1
		}
		if dispose == 2 {
			if saved == nil {
				saved = image.NewNRGBA(canvas.Rect)
			}
			copyRect(saved, canvas, fi.Rect)
		}
		compose(canvas, fi, fr.blend == 1)
		if keep[i] {
			pic.Frames = append(pic.Frames, cloneNRGBA(canvas))
			pic.FrameIndex = append(pic.FrameIndex, i)
		}
		switch dispose {
		case 1:
			clearRect(canvas, fi.Rect)
		case 2:
			copyRect(canvas, saved, fi.Rect)
		}
	}
	if len(pic.Frames) == 0 {
		return nil, corruptf("png", "no APNG frame decoded")
	}
	return pic, nil
}

func pngBitsPerPixel(ct, depth byte) int {
	switch ct {
	case pngRGB:
		return 3 * int(depth)
	case pngGrayAlpha:
		return 2 * int(depth)
	case pngRGBA:
		return 4 * int(depth)
	}
	return int(depth)
}

// Row conversions: source colour type and depth → destination image type.
const (
	kGray8 = iota
	kGray8NRGBA
	kGray16
	kGray16NRGBA64
	kGray16NRGBA
	kRGB8RGBA
	kRGB8NRGBA
	kRGB16RGBA64
	kRGB16NRGBA64
	kRGB16NRGBA
	kPalPaletted
	kPalNRGBA
	kGA8NRGBA
	kGA16NRGBA64
	kGA16NRGBA
	kRGBA8NRGBA
	kRGBA16NRGBA64
	kRGBA16NRGBA
)

type pngDecoder struct {
	f          *pngFile
	w, h       int // frame size at full scale
	ox, oy     int // frame offset on the full-scale canvas
	scale      int
	bitsPP     int
	bpp        int // bytes per pixel for filtering, at least 1
	kind       int
	img        image.Image
	pix        []byte
	stride     int
	rect       image.Rectangle
	pal        [256][4]byte // NRGBA palette (for kPalNRGBA)
	hasTrns    bool
	t8         [3]byte   // tRNS low bytes, as image/png compares 8-bit samples
	t16        [3]uint16 // tRNS full values for 16-bit samples
	expand     []byte
	lowGrayMul byte
}

// newPNGDecoder prepares the destination image. nrgba forces *image.NRGBA
// (for APNG compositing); otherwise the type is image/png's. scratch, if
// big enough, is reused for the NRGBA pixels.
func newPNGDecoder(f *pngFile, w, h, ox, oy, scale int, nrgba bool, scratch []byte) *pngDecoder {
	d := &pngDecoder{f: f, w: w, h: h, ox: ox, oy: oy, scale: scale}
	d.bitsPP = pngBitsPerPixel(f.ct, f.depth)
	d.bpp = max(1, d.bitsPP/8)
	d.rect = image.Rect(ceilDiv(ox, scale), ceilDiv(oy, scale), ceilDiv(ox+w, scale), ceilDiv(oy+h, scale))
	depth16 := f.depth == 16
	switch f.ct {
	case pngGray:
		if len(f.trns) >= 2 {
			d.hasTrns = true
			d.t8[0] = f.trns[1]
			d.t16[0] = be16(f.trns)
			switch f.depth {
			case 1:
				d.t8[0] *= 0xff
			case 2:
				d.t8[0] *= 0x55
			case 4:
				d.t8[0] *= 0x11
			}
		}
		switch {
		case nrgba && depth16:
			d.kind = kGray16NRGBA
		case nrgba:
			d.kind = kGray8NRGBA
		case depth16 && d.hasTrns:
			d.kind = kGray16NRGBA64
		case depth16:
			d.kind = kGray16
		case d.hasTrns:
			d.kind = kGray8NRGBA
		default:
			d.kind = kGray8
		}
	case pngRGB:
		if len(f.trns) >= 6 {
			d.hasTrns = true
			d.t8 = [3]byte{f.trns[1], f.trns[3], f.trns[5]}
			d.t16 = [3]uint16{be16(f.trns), be16(f.trns[2:]), be16(f.trns[4:])}
		}
		switch {
		case nrgba && depth16:
			d.kind = kRGB16NRGBA
		case nrgba:
			d.kind = kRGB8NRGBA
		case depth16 && d.hasTrns:
			d.kind = kRGB16NRGBA64
		case depth16:
			d.kind = kRGB16RGBA64
		case d.hasTrns:
			d.kind = kRGB8NRGBA
		default:
			d.kind = kRGB8RGBA
		}
	case pngPalette:
		if nrgba {
			d.kind = kPalNRGBA
		} else {
			d.kind = kPalPaletted
		}
	case pngGrayAlpha:
		switch {
		case nrgba && depth16:
			d.kind = kGA16NRGBA
		case depth16:
			d.kind = kGA16NRGBA64
		default:
			d.kind = kGA8NRGBA
		}
	case pngRGBA:
		switch {
		case nrgba && depth16:
			d.kind = kRGBA16NRGBA
		case depth16:
			d.kind = kRGBA16NRGBA64
		default:
			d.kind = kRGBA8NRGBA
		}
	}
	if f.depth < 8 {
		d.expand = make([]byte, w)
		if f.ct == pngGray {
			d.lowGrayMul = [...]byte{0, 0xff, 0x55, 0, 0x11}[f.depth]
		}
	}
	r := d.rect
	switch d.kind {
	case kGray8:
		m := image.NewGray(r)
		d.img, d.pix, d.stride = m, m.Pix, m.Stride
	case kGray16:
		m := image.NewGray16(r)
		d.img, d.pix, d.stride = m, m.Pix, m.Stride
	case kRGB8RGBA:
		m := image.NewRGBA(r)
		d.img, d.pix, d.stride = m, m.Pix, m.Stride
	case kRGB16RGBA64:
		m := image.NewRGBA64(r)
		d.img, d.pix, d.stride = m, m.Pix, m.Stride
	case kGray16NRGBA64, kRGB16NRGBA64, kGA16NRGBA64, kRGBA16NRGBA64:
		m := image.NewNRGBA64(r)
		d.img, d.pix, d.stride = m, m.Pix, m.Stride
	case kPalPaletted:
		m := image.NewPaletted(r, d.palette())
		d.img, d.pix, d.stride = m, m.Pix, m.Stride
	default:
		n := 4 * r.Dx() * r.Dy()
		var pix []byte
		if cap(scratch) >= n {
			pix = scratch[:n]
			clear(pix)
		} else {
			pix = make([]byte, n)
		}
		m := &image.NRGBA{Pix: pix, Stride: 4 * r.Dx(), Rect: r}
		d.img, d.pix, d.stride = m, m.Pix, m.Stride
	}
	if d.kind == kPalNRGBA {
		for i, c := range d.palette() {
			switch c := c.(type) {
			case color.RGBA:
				d.pal[i] = [4]byte{c.R, c.G, c.B, c.A}
			case color.NRGBA:
				d.pal[i] = [4]byte{c.R, c.G, c.B, c.A}
			}
		}
	}
	return d
}

// palette builds the colour table as image/png does: PLTE entries opaque,
// tRNS alphas making them NRGBA, missing entries opaque black. With no PLTE
// at all (libpng refuses the file) a grey ramp shows the indices anyway.
func (d *pngDecoder) palette() color.Palette {
	f := d.f
	n := 1 << f.depth
	p := make(color.Palette, n)
	np := len(f.plte) / 3
	for i := range p {
		switch {
		case i < np:
			p[i] = color.RGBA{f.plte[3*i], f.plte[3*i+1], f.plte[3*i+2], 0xff}
		case f.plte == nil:
			v := byte(i * 255 / (n - 1))
			p[i] = color.RGBA{v, v, v, 0xff}
		default:
			p[i] = color.RGBA{0, 0, 0, 0xff}
		}
	}
	for i := 0; i < len(f.trns) && i < n; i++ {
		c := p[i].(color.RGBA)
		p[i] = color.NRGBA{c.R, c.G, c.B, f.trns[i]}
	}
	return p
}

// chunkReader reads a list of byte slices as one stream.
type chunkReader struct {
	parts pngChunkData
	cur   []byte
}

func (r *chunkReader) Read(p []byte) (int, error) {
	for len(r.cur) == 0 {
		if len(r.parts) == 0 {
			return 0, io.EOF
		}
		r.cur, r.parts = r.parts[0], r.parts[1:]
	}
	n := copy(p, r.cur)
	r.cur = r.cur[n:]
	return n, nil
}

func (r *chunkReader) ReadByte() (byte, error) {
	for len(r.cur) == 0 {
		if len(r.parts) == 0 {
			return 0, io.EOF
		}
		r.cur, r.parts = r.parts[0], r.parts[1:]
	}
	b := r.cur[0]
	r.cur = r.cur[1:]
	return b, nil
}

// decode inflates and unfilters the image stream, and says whether every
// row was there. The two zlib header bytes are skipped unchecked and the
// Adler-32 is never read: surplus data and checksums are ignored.
func (d *pngDecoder) decode(data pngChunkData) bool {
	cr := &chunkReader{parts: data}
	if _, err := cr.ReadByte(); err != nil {
		return false
	}
	if _, err := cr.ReadByte(); err != nil {
		return false
	}
	zr := flate.NewReader(cr)
	defer zr.Close()

	type pass struct{ xoff, yoff, xstep, ystep int }
	passes := []pass{{0, 0, 1, 1}}
	if d.f.interl == 1 {
		passes = []pass{{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4}, {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}}
	}
	maxRow := (d.w*d.bitsPP + 7) / 8
	cur := make([]byte, 1+maxRow)
	prev := make([]byte, 1+maxRow)
	n := d.scale
	for _, p := range passes {
		pw := (d.w - p.xoff + p.xstep - 1) / p.xstep
		ph := (d.h - p.yoff + p.ystep - 1) / p.ystep
		if pw <= 0 || ph <= 0 {
			continue
		}
		rb := (pw*d.bitsPP + 7) / 8
		c, pr := cur[:1+rb], prev[:1+rb]
		clear(pr)
		// Which pixels of a pass row land on kept columns.
		i0, si := -1, 1
		base := d.ox + p.xoff
		for i := 0; i < n && i < pw; i++ {
			if (base+i*p.xstep)%n == 0 {
				i0 = i
				break
			}
		}
		for (si*p.xstep)%n != 0 {
			si++
		}
		x0, dx := 0, 0
		if i0 >= 0 {
			x0 = (base + i0*p.xstep) / n
			dx = si * p.xstep / n
		}
		for j := 0; j < ph; j++ {
			if _, err := io.ReadFull(zr, c); err != nil {
				return false
			}
			if !unfilter(c[0], c[1:], pr[1:], d.bpp) {
				return false
			}
			ay := d.oy + p.yoff + j*p.ystep
			if i0 >= 0 && ay%n == 0 {
				d.emit(c[1:], ay/n, i0, si, x0, dx, pw)
			}
			c, pr = pr, c
		}
	}
	return true
}

func unfilter(ft byte, cdat, pdat []byte, bpp int) bool {
	switch ft {
	case 0:
	case 1:
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += cdat[i-bpp]
		}
	case 2:
		pdat = pdat[:len(cdat)]
		for i, p := range pdat {
			cdat[i] += p
		}
	case 3:
		pdat = pdat[:len(cdat)]
		for i := 0; i < bpp && i < len(cdat); i++ {
			cdat[i] += pdat[i] / 2
		}
		for i := bpp; i < len(cdat); i++ {
			cdat[i] += uint8((int(cdat[i-bpp]) + int(pdat[i])) / 2)
		}
	case 4:
		unfilterPaeth(cdat, pdat[:len(cdat)], bpp)
	default:
		return false
	}
	return true
}

func abs32(x int32) int32 {
	m := x >> 31
	return (x ^ m) - m
}

func unfilterPaeth(cdat, pdat []byte, bpp int) {
	for i := 0; i < bpp && i < len(cdat); i++ {
		var a, c int32
		for j := i; j < len(cdat); j += bpp {
			b := int32(pdat[j])
			pa := b - c
			pb := a - c
			pc := abs32(pa + pb)
			pa = abs32(pa)
			pb = abs32(pb)
			if pa <= pb && pa <= pc {
				// a is the predictor
			} else if pb <= pc {
				a = b
			} else {
				a = c
			}
			a = (a + int32(cdat[j])) & 0xff
			cdat[j] = uint8(a)
			c = b
		}
	}
}

// emit writes the pixels i0, i0+si, ... (< n) of an unfiltered row to
// destination row y, columns x0, x0+dx, ...
func (d *pngDecoder) emit(row []byte, y, i0, si, x0, dx, n int) {
	if d.f.depth < 8 {
		// One byte per pixel: grey scaled to 8 bits, or a palette index.
		depth := uint(d.f.depth)
		ppb := 8 / int(depth)
		mask := byte(1<<depth - 1)
		e := d.expand[:n]
		for i := range e {
			b := row[i/ppb]
			shift := 8 - depth*uint(i%ppb+1)
			e[i] = (b >> shift) & mask
		}
		if d.lowGrayMul != 0 {
			for i := range e {
				e[i] *= d.lowGrayMul
			}
		}
		row = e
	}
	pix := d.pix[(y-d.rect.Min.Y)*d.stride:]
	xo := x0 - d.rect.Min.X
	switch d.kind {
	case kGray8:
		if si == 1 && dx == 1 {
			copy(pix[xo:], row[i0:n])
			return
		}
		for i, x := i0, xo; i < n; i, x = i+si, x+dx {
			pix[x] = row[i]
		}
	case kGray8NRGBA:
		t := d.t8[0]
		for i, x := i0, xo*4; i < n; i, x = i+si, x+4*dx {
			v := row[i]
			a := byte(0xff)
			if d.hasTrns && v == t {
				a = 0
			}
			pix[x], pix[x+1], pix[x+2], pix[x+3] = v, v, v, a
		}
	case kGray16:
		for i, x := i0, xo*2; i < n; i, x = i+si, x+2*dx {
			pix[x], pix[x+1] = row[2*i], row[2*i+1]
		}
	case kGray16NRGBA64:
		t := d.t16[0]
		for i, x := i0, xo*8; i < n; i, x = i+si, x+8*dx {
			hi, lo := row[2*i], row[2*i+1]
			a := byte(0xff)
			if uint16(hi)<<8|uint16(lo) == t {
				a = 0
			}
			q := pix[x : x+8 : x+8]
			q[0], q[1], q[2], q[3], q[4], q[5], q[6], q[7] = hi, lo, hi, lo, hi, lo, a, a
		}
	case kGray16NRGBA:
		t := d.t16[0]
		for i, x := i0, xo*4; i < n; i, x = i+si, x+4*dx {
			hi, lo := row[2*i], row[2*i+1]
			a := byte(0xff)
			if d.hasTrns && uint16(hi)<<8|uint16(lo) == t {
				a = 0
			}
			pix[x], pix[x+1], pix[x+2], pix[x+3] = hi, hi, hi, a
		}
	case kRGB8RGBA:
		for i, x := i0*3, xo*4; i < 3*n; i, x = i+3*si, x+4*dx {
			q := pix[x : x+4 : x+4]
			q[0], q[1], q[2], q[3] = row[i], row[i+1], row[i+2], 0xff
		}
	case kRGB8NRGBA:
		t := d.t8
		for i, x := i0*3, xo*4; i < 3*n; i, x = i+3*si, x+4*dx {
			r, g, b := row[i], row[i+1], row[i+2]
			a := byte(0xff)
			if d.hasTrns && r == t[0] && g == t[1] && b == t[2] {
				a = 0
			}
			q := pix[x : x+4 : x+4]
			q[0], q[1], q[2], q[3] = r, g, b, a
		}
	case kRGB16RGBA64:
		for i, x := i0*6, xo*8; i < 6*n; i, x = i+6*si, x+8*dx {
			q := pix[x : x+8 : x+8]
			copy(q, row[i:i+6])
			q[6], q[7] = 0xff, 0xff
		}
	case kRGB16NRGBA64, kRGB16NRGBA:
		t := d.t16
		out8 := d.kind == kRGB16NRGBA
		step := 8
		if out8 {
			step = 4
		}
		for i, x := i0*6, xo*step; i < 6*n; i, x = i+6*si, x+step*dx {
			s := row[i : i+6 : i+6]
			a := byte(0xff)
			if d.hasTrns && be16(s) == t[0] && be16(s[2:]) == t[1] && be16(s[4:]) == t[2] {
				a = 0
			}
			if out8 {
				pix[x], pix[x+1], pix[x+2], pix[x+3] = s[0], s[2], s[4], a
			} else {
				q := pix[x : x+8 : x+8]
				copy(q, s)
				q[6], q[7] = a, a
			}
		}
	case kPalPaletted:
		if si == 1 && dx == 1 {
			copy(pix[xo:], row[i0:n])
			return
		}
		for i, x := i0, xo; i < n; i, x = i+si, x+dx {
			pix[x] = row[i]
		}
	case kPalNRGBA:
		for i, x := i0, xo*4; i < n; i, x = i+si, x+4*dx {
			c := &d.pal[row[i]]
			q := pix[x : x+4 : x+4]
			q[0], q[1], q[2], q[3] = c[0], c[1], c[2], c[3]
		}
	case kGA8NRGBA:
		for i, x := i0*2, xo*4; i < 2*n; i, x = i+2*si, x+4*dx {
			v := row[i]
			q := pix[x : x+4 : x+4]
			q[0], q[1], q[2], q[3] = v, v, v, row[i+1]
		}
	case kGA16NRGBA64:
		for i, x := i0*4, xo*8; i < 4*n; i, x = i+4*si, x+8*dx {
			q := pix[x : x+8 : x+8]
			q[0], q[1], q[2], q[3], q[4], q[5] = row[i], row[i+1], row[i], row[i+1], row[i], row[i+1]
			q[6], q[7] = row[i+2], row[i+3]
		}
	case kGA16NRGBA:
		for i, x := i0*4, xo*4; i < 4*n; i, x = i+4*si, x+4*dx {
			v := row[i]
			q := pix[x : x+4 : x+4]
			q[0], q[1], q[2], q[3] = v, v, v, row[i+2]
		}
	case kRGBA8NRGBA:
		if si == 1 && dx == 1 {
			copy(pix[xo*4:], row[i0*4:n*4])
			return
		}
		for i, x := i0*4, xo*4; i < 4*n; i, x = i+4*si, x+4*dx {
			copy(pix[x:x+4], row[i:i+4])
		}
	case kRGBA16NRGBA64:
		if si == 1 && dx == 1 {
			copy(pix[xo*8:], row[i0*8:n*8])
			return
		}
		for i, x := i0*8, xo*8; i < 8*n; i, x = i+8*si, x+8*dx {
			copy(pix[x:x+8], row[i:i+8])
		}
	case kRGBA16NRGBA:
		for i, x := i0*8, xo*4; i < 8*n; i, x = i+8*si, x+4*dx {
			q := pix[x : x+4 : x+4]
			q[0], q[1], q[2], q[3] = row[i], row[i+2], row[i+4], row[i+6]
		}
	}
}
