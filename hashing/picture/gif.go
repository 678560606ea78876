package picture

import (
	"bufio"
	"fmt"
	"image"
	"io"
)

// A GIF decoder that shows what browsers show: every frame composited with
// its disposal method, a canvas grown to fit the first frame when the
// logical screen is degenerate (Chromium's rule), frames of a truncated
// file (the last one as far as its data goes), out-of-palette indices left
// unpainted instead of failing, and LZW data that overruns or stops short
// of the frame tolerated.

type gifFrame struct {
	x, y, w, h int
	interlaced bool
	pal        []byte // RGB triples; nil: no colour table at all
	transp     int    // transparent index, -1 for none
	disposal   byte
	delay      int // centiseconds, from the graphic control extension
	minCode    int
	data       []byte // the sub-blocks, from the first length byte
}

type gifFile struct {
	sw, sh int
	frames []gifFrame
	cut    bool
}

// skipSubBlocks returns the offset after the terminating empty sub-block,
// or len(data) and false when the data ends first.
func skipSubBlocks(data []byte, p int) (int, bool) {
	for p < len(data) {
		n := int(data[p])
		p++
		if n == 0 {
			return p, true
		}
		p += n
	}
	return len(data), false
}

func parseGIF(data []byte) (*gifFile, error) {
	if len(data) < 13 {
		return nil, corruptf("gif", "no logical screen descriptor")
	}
	g := &gifFile{sw: int(le16(data[6:])), sh: int(le16(data[8:]))}
	flags := data[10]
	p := 13
	var gct []byte
	if flags&0x80 != 0 {
		n := 3 << ((flags & 7) + 1)
		end := min(p+n, len(data))
		gct = data[p:end]
		p = end
	}
	transp, disposal, delay := -1, byte(0), 0
	for p < len(data) {
		switch data[p] {
		case 0x21:
			if p+1 >= len(data) {
				g.cut = true
				return g, nil
			}
			label := data[p+1]
			p += 2
			if label == 0xF9 && p < len(data) && data[p] >= 4 && p+4 < len(data) {
				b := data[p+1:]
				disposal = (b[0] >> 2) & 7
				if disposal == 4 { // as Chromium: 4 also means "restore previous"
					disposal = 3
				}
				transp = -1
				if b[0]&1 != 0 {
					transp = int(b[3])
				}
				delay = int(le16(b[1:]))
			}
			var ok bool
			if p, ok = skipSubBlocks(data, p); !ok {
				g.cut = true
				return g, nil
			}
		case 0x2C:
			if p+10 > len(data) {
				g.cut = true
				return g, nil
			}
			d := data[p+1:]
			f := gifFrame{x: int(le16(d)), y: int(le16(d[2:])), w: int(le16(d[4:])), h: int(le16(d[6:])),
				interlaced: d[8]&0x40 != 0, pal: gct, transp: transp, disposal: disposal, delay: delay}
			p += 10
			if d[8]&0x80 != 0 {
				n := 3 << ((d[8] & 7) + 1)
				end := min(p+n, len(data))
				f.pal = data[p:end]
				p = end
			}
			transp, disposal, delay = -1, 0, 0
			if p >= len(data) {
				g.cut = true
				return g, nil
			}
			f.minCode = int(data[p])
			p++
			start := p
			end, ok := skipSubBlocks(data, p)
			f.data = data[start:end]
			g.frames = append(g.frames, f)
			if !ok {
				g.cut = true
				return g, nil
			}
			p = end
		default: // trailer 0x3B, or anything unknown: the end, as in Chromium
			return g, nil
		}
	}
	g.cut = true
	return g, nil
}

// canvasSize applies Chromium's rule: the first frame enlarges a logical
// screen too small for it (a 0x0 screen is common); later frames are
// cropped.
func (g *gifFile) canvasSize() (int, int) {
	w, h := g.sw, g.sh
	if len(g.frames) > 0 {
		f := g.frames[0]
		w, h = max(w, f.x+f.w), max(h, f.y+f.h)
	}
	return w, h
}

func configGIF(r io.Reader) (int, int, error) {
	br := bufio.NewReaderSize(r, 4096)
	var hdr [13]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return 0, 0, corruptf("gif", "header: %v", err)
	}
	sw, sh := int(le16(hdr[6:])), int(le16(hdr[8:]))
	if hdr[10]&0x80 != 0 {
		if _, err := br.Discard(3 << ((hdr[10] & 7) + 1)); err != nil {
			return sw, sh, nil
		}
	}
	for {
		b, err := br.ReadByte()
		if err != nil {
			return sw, sh, nil
		}
		switch b {
		case 0x21:
			if _, err := br.ReadByte(); err != nil {
				return sw, sh, nil
			}
			for {
				n, err := br.ReadByte()
				if err != nil {
					return sw, sh, nil
				}
				if n == 0 {
					break
				}
				if _, err := br.Discard(int(n)); err != nil {
					return sw, sh, nil
				}
			}
		case 0x2C:
			var d [9]byte
			if _, err := io.ReadFull(br, d[:]); err != nil {
				return sw, sh, nil
			}
			x, y, w, h := int(le16(d[:])), int(le16(d[2:])), int(le16(d[4:])), int(le16(d[6:]))
			return max(sw, x+w), max(sh, y+h), nil
		default:
			return sw, sh, nil
		}
	}
}

func decodeGIF(data []byte, l *limits) (*Picture, error) {
	g, err := parseGIF(data)
	if err != nil {
		return nil, err
	}
	if len(g.frames) == 0 {
		return nil, corruptf("gif", "no image")
	}
	fw, fh := g.canvasSize()
	scale, err := l.scaleFor("gif", fw, fh)
	if err != nil {
		return nil, err
	}
	cw, ch := ceilDiv(fw, scale), ceilDiv(fh, scale)
	canvas := image.NewNRGBA(image.Rect(0, 0, cw, ch))
	pic := &Picture{Scale: scale, Orientation: 1, Truncated: g.cut}
	frames := g.frames
	costs := make([]int64, len(frames))
	for i, f := range frames {
		costs[i] = int64(f.w)*int64(f.h) + int64(cw)*int64(ch)/8
	}
	if m := l.affordable(costs); m < len(frames) {
		frames, pic.Truncated = frames[:m], true
	}
	if len(frames) == 0 {
		return nil, fmt.Errorf("%w: gif: first frame is beyond the work budget", ErrTooManyPixels)
	}
	delays := make([]int, len(frames))
	for i, f := range frames {
		delays[i] = f.delay
	}
	keep := sampleFramesTimed(delays, l.frameQuota(int64(cw)*int64(ch)))
	var saved *image.NRGBA
	dec := &gifDecoder{canvas: canvas, scale: scale, fullW: fw, fullH: fh}
	for i := range frames {
		f := &frames[i]
		l.spend(costs[i])
		r := image.Rect(ceilDiv(f.x, scale), ceilDiv(f.y, scale), ceilDiv(f.x+f.w, scale), ceilDiv(f.y+f.h, scale)).Intersect(canvas.Rect)
		if f.disposal == 3 {
			if saved == nil {
				saved = image.NewNRGBA(canvas.Rect)
			}
			copyRect(saved, canvas, r)
		}
		if !dec.frame(f) {
			pic.Truncated = true
		}
		if keep[i] {
			pic.Frames = append(pic.Frames, cloneNRGBA(canvas))
			pic.FrameIndex = append(pic.FrameIndex, i)
		}
		switch f.disposal {
		case 2:
			clearRect(canvas, r)
		case 3:
			copyRect(canvas, saved, r)
		}
	}
	if len(pic.Frames) == 0 {
		return nil, corruptf("gif", "no frame decoded")
	}
	return pic, nil
}

type gifDecoder struct {
	canvas       *image.NRGBA
	scale        int
	fullW, fullH int // canvas at full scale
	prefix       [4096]uint16
	suffix       [4096]byte
	stack        [4097]byte
	row          []byte
	table        [256][4]byte
}

// frame draws one frame onto the canvas and says whether its data was all
// there (a frame whose LZW data ends early still draws the pixels it has).
func (d *gifDecoder) frame(f *gifFrame) bool {
	if f.w == 0 || f.h == 0 {
		return true
	}
	if f.pal == nil || f.minCode < 1 || f.minCode > 8 {
		return false // no colours (Chromium draws nothing) or an impossible code size
	}
	for i := range d.table {
		if 3*i+2 < len(f.pal) && i != f.transp {
			d.table[i] = [4]byte{f.pal[3*i], f.pal[3*i+1], f.pal[3*i+2], 0xff}
		} else {
			d.table[i] = [4]byte{}
		}
	}
	if cap(d.row) < f.w {
		d.row = make([]byte, f.w)
	}
	d.row = d.row[:f.w]

	// Row bookkeeping, interlaced or not.
	pass, y, ystep := 0, 0, 1
	starts, steps := [4]int{0, 4, 2, 1}, [4]int{8, 8, 4, 2}
	if f.interlaced {
		ystep = 8
	}
	rowsLeft := f.h
	x := 0
	row := d.row
	flush := func(n int) {
		d.flushRow(f, y, row[:n])
	}
	advance := func() bool { // after a full row; false when the frame is done
		flush(len(row))
		rowsLeft--
		if rowsLeft == 0 {
			return false
		}
		y += ystep
		for f.interlaced && y >= f.h {
			pass++
			if pass > 3 {
				return false
			}
			y, ystep = starts[pass], steps[pass]
		}
		x = 0
		return true
	}

	// LZW, least significant bit first, reading across sub-blocks.
	data := f.data
	blockLeft := 0
	var bits uint32
	nbits := 0
	clearCode := 1 << f.minCode
	eoi := clearCode + 1
	codeSize := f.minCode + 1
	mask := (1 << codeSize) - 1
	avail := clearCode + 2
	oldCode := -1
	var first byte
	for i := 0; i < clearCode; i++ {
		d.suffix[i] = byte(i)
	}
	for {
		for nbits < codeSize {
			if blockLeft == 0 {
				if len(data) == 0 || data[0] == 0 {
					if x > 0 {
						flush(x)
					}
					return false
				}
				blockLeft = int(data[0])
				data = data[1:]
			}
			if len(data) == 0 {
				if x > 0 {
					flush(x)
				}
				return false
			}
			bits |= uint32(data[0]) << nbits
			nbits += 8
			data = data[1:]
			blockLeft--
		}
		code := int(bits) & mask
		bits >>= codeSize
		nbits -= codeSize
		if code == clearCode {
			codeSize = f.minCode + 1
			mask = (1 << codeSize) - 1
			avail = clearCode + 2
			oldCode = -1
			continue
		}
		if code == eoi {
			if x > 0 {
				flush(x)
			}
			return rowsLeft == 0
		}
		sp := 0
		if oldCode == -1 {
			if code >= clearCode {
				if x > 0 {
					flush(x)
				}
				return false
			}
			first = byte(code)
			d.stack[0] = first
			sp = 1
			oldCode = code
		} else {
			in := code
			if code >= avail {
				if code > avail {
					if x > 0 {
						flush(x)
					}
					return false // Chromium stops the frame here
				}
				d.stack[sp] = first
				sp++
				code = oldCode
			}
			for code >= clearCode {
				d.stack[sp] = d.suffix[code]
				sp++
				code = int(d.prefix[code])
			}
			first = byte(code)
			d.stack[sp] = first
			sp++
			if avail < 4096 {
				d.prefix[avail] = uint16(oldCode)
				d.suffix[avail] = first
				avail++
				if avail&mask == 0 && avail < 4096 {
					codeSize++
					mask = (1 << codeSize) - 1
				}
			}
			oldCode = in
		}
		for sp > 0 {
			sp--
			row[x] = d.stack[sp]
			x++
			if x == len(row) && !advance() {
				return true // surplus data is ignored
			}
		}
	}
}

// flushRow paints the decoded indices of frame row fy (n pixels from the
// frame's left edge) onto the canvas, keeping every scale-th pixel.
func (d *gifDecoder) flushRow(f *gifFrame, fy int, idx []byte) {
	ay := f.y + fy
	n := d.scale
	if ay >= d.fullH || ay%n != 0 {
		return
	}
	c := d.canvas
	pix := c.Pix[(ay/n)*c.Stride:]
	lim := min(len(idx), d.fullW-f.x)
	for x := (n - f.x%n) % n; x < lim; x += n {
		t := &d.table[idx[x]]
		if t[3] == 0 {
			continue
		}
		o := ((f.x + x) / n) * 4
		q := pix[o : o+4 : o+4]
		q[0], q[1], q[2], q[3] = t[0], t[1], t[2], 0xff
	}
}
