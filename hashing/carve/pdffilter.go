package carve

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/zlib"
	"encoding/ascii85"
	"io"
)

// PDF stream filters, as streaming readers so that a stream can be probed
// for a signature without decoding all of it.

// decoder returns a reader of the stream decoded by the filters in chain.
// An unsupported filter gives a reader that fails.
func (d *pdfDoc) decoder(raw []byte, chain []string, parms []pdfDict) io.Reader {
	var r io.Reader = bytes.NewReader(raw)
	for i, f := range chain {
		var p pdfDict
		if i < len(parms) {
			p = parms[i]
		}
		switch f {
		case "FlateDecode", "Fl":
			br := bufio.NewReader(r)
			h, _ := br.Peek(2)
			r = nil
			if len(h) == 2 && h[0]&0x0f == 8 && (int(h[0])<<8|int(h[1]))%31 == 0 {
				if z, err := zlib.NewReader(br); err == nil {
					r = checksumTolerant{z}
				}
			}
			if r == nil {
				r = flate.NewReader(br) // raw deflate, as some writers emit
			}
			r = d.predictor(r, p)
		case "LZWDecode", "LZW":
			early := true
			if v, ok := p.int("EarlyChange"); ok && v == 0 {
				early = false
			}
			r = d.predictor(&lzwReader{src: bufio.NewReader(r), early: early}, p)
		case "ASCIIHexDecode", "AHx":
			r = &hexReader{src: bufio.NewReader(r)}
		case "ASCII85Decode", "A85":
			r = ascii85.NewDecoder(&a85Framing{src: bufio.NewReader(r)})
		case "RunLengthDecode", "RL":
			r = &runLengthReader{src: bufio.NewReader(r)}
		default: // Crypt, JBIG2, CCITTFax, DCT in the middle of a chain...
			return failReader{}
		}
	}
	return r
}

// predictor undoes the PNG (10-15) or TIFF (2) predictor of /DecodeParms.
func (d *pdfDoc) predictor(r io.Reader, p pdfDict) io.Reader {
	pred, _ := d.resolveInt(p["Predictor"])
	if pred < 2 {
		return r
	}
	colors, bpc, columns := int64(1), int64(8), int64(1)
	if v, ok := d.resolveInt(p["Colors"]); ok {
		colors = v
	}
	if v, ok := d.resolveInt(p["BitsPerComponent"]); ok {
		bpc = v
	}
	if v, ok := d.resolveInt(p["Columns"]); ok {
		columns = v
	}
	if colors < 1 || colors > 32 || bpc < 1 || bpc > 16 || columns < 1 || columns > 1<<20 {
		return failReader{}
	}
	bpp := int((colors*bpc + 7) / 8)
	row := int((colors*bpc*columns + 7) / 8)
	if pred == 2 {
		if bpc != 8 {
			return failReader{}
		}
		return &predReader{src: r, tiff: true, bpp: bpp, cur: make([]byte, row)}
	}
	return &predReader{src: r, bpp: bpp, cur: make([]byte, row+1), prev: make([]byte, row+1)}
}

// predReader undoes a predictor row by row.
type predReader struct {
	src       io.Reader
	tiff      bool
	bpp       int
	cur, prev []byte
	out       []byte // what is left of the current row
	err       error
}

func (p *predReader) Read(b []byte) (int, error) {
	for len(p.out) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		n, err := io.ReadFull(p.src, p.cur)
		if err != nil {
			p.err = err
			if err == io.ErrUnexpectedEOF {
				p.err = io.EOF // a short last row: keep what there is
			}
			if n == 0 {
				continue
			}
			clear(p.cur[n:])
		}
		if p.tiff {
			for i := p.bpp; i < len(p.cur); i++ {
				p.cur[i] += p.cur[i-p.bpp]
			}
			p.out = p.cur
			continue
		}
		unfilter(p.cur[0], p.cur[1:], p.prev[1:], p.bpp)
		p.out = p.cur[1:]
		p.cur, p.prev = p.prev, p.cur
	}
	n := copy(b, p.out)
	p.out = p.out[n:]
	return n, nil
}

// unfilter reverses one PNG filter on a row, given the previous row.
func unfilter(ft byte, cur, prev []byte, bpp int) {
	switch ft {
	case 1:
		for i := bpp; i < len(cur); i++ {
			cur[i] += cur[i-bpp]
		}
	case 2:
		for i := range cur {
			cur[i] += prev[i]
		}
	case 3:
		for i := range cur {
			var left int
			if i >= bpp {
				left = int(cur[i-bpp])
			}
			cur[i] += byte((left + int(prev[i])) / 2)
		}
	case 4:
		for i := range cur {
			var a, c int
			if i >= bpp {
				a, c = int(cur[i-bpp]), int(prev[i-bpp])
			}
			b := int(prev[i])
			pa, pb, pc := abs(b-c), abs(a-c), abs(a+b-2*c)
			switch {
			case pa <= pb && pa <= pc:
				cur[i] += byte(a)
			case pb <= pc:
				cur[i] += byte(b)
			default:
				cur[i] += byte(c)
			}
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// hexReader decodes ASCIIHexDecode up to '>'.
type hexReader struct {
	src  *bufio.Reader
	done bool
}

func (h *hexReader) Read(b []byte) (int, error) {
	n := 0
	hi := -1
	for n < len(b) && !h.done {
		c, err := h.src.ReadByte()
		if err != nil || c == '>' {
			h.done = true
			break
		}
		v := hexVal(c)
		if v < 0 {
			continue
		}
		if hi < 0 {
			hi = v
			continue
		}
		b[n] = byte(hi<<4 | v)
		n++
		hi = -1
	}
	if hi >= 0 { // a digit left over: its pair is in the next call, or 0
		if h.done {
			b[n] = byte(hi << 4)
			n++
		} else {
			h.src.UnreadByte()
		}
	}
	if n == 0 && h.done {
		return 0, io.EOF
	}
	return n, nil
}

// a85Framing strips the <~ ~> framing of ASCII85Decode data.
type a85Framing struct {
	src          *bufio.Reader
	started, end bool
}

func (a *a85Framing) Read(b []byte) (int, error) {
	if a.end {
		return 0, io.EOF
	}
	if !a.started {
		a.started = true
		for {
			c, err := a.src.ReadByte()
			if err != nil {
				return 0, io.EOF
			}
			if !isPDFSpace(c) {
				a.src.UnreadByte()
				break
			}
		}
		if h, _ := a.src.Peek(2); string(h) == "<~" {
			a.src.Discard(2)
		}
	}
	n, err := a.src.Read(b)
	if i := bytes.IndexByte(b[:n], '~'); i >= 0 {
		n, a.end, err = i, true, nil
	}
	return n, err
}

// runLengthReader decodes RunLengthDecode.
type runLengthReader struct {
	src     *bufio.Reader
	literal int  // literal bytes left to copy
	run     int  // repetitions of rb left
	rb      byte // the repeated byte
	done    bool
}

func (r *runLengthReader) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		switch {
		case r.run > 0:
			b[n] = r.rb
			r.run--
			n++
		case r.literal > 0:
			c, err := r.src.ReadByte()
			if err != nil {
				r.done, r.literal = true, 0
				continue
			}
			b[n] = c
			r.literal--
			n++
		case r.done:
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		default:
			l, err := r.src.ReadByte()
			if err != nil || l == 128 {
				r.done = true
				continue
			}
			if l < 128 {
				r.literal = int(l) + 1
				continue
			}
			c, err := r.src.ReadByte()
			if err != nil {
				r.done = true
				continue
			}
			r.rb, r.run = c, 257-int(l)
		}
	}
	return n, nil
}

// lzwReader decodes LZWDecode: MSB-first codes of 9 to 12 bits, 256 clears
// the table, 257 ends; with early change (the default) the code width grows
// one code before the table needs it, as in TIFF. The standard library's
// compress/lzw only implements the late variant.
type lzwReader struct {
	src   *bufio.Reader
	early bool
	init  bool
	bits  uint32
	nbits uint
	width uint
	next  int // next free code
	prev  int // previous code, -1 after a clear
	// The table: each code is a prefix code and a last byte; first[] is
	// its first byte, for the KwKwK case.
	prefix [4096]int16
	suffix [4096]byte
	first  [4096]byte
	length [4096]uint16
	out    []byte
	buf    [4096]byte
	done   bool
}

func (z *lzwReader) reset() {
	z.width, z.next, z.prev = 9, 258, -1
}

func (z *lzwReader) Read(b []byte) (int, error) {
	if !z.init {
		z.init = true
		for i := 0; i < 256; i++ {
			z.suffix[i], z.first[i], z.length[i], z.prefix[i] = byte(i), byte(i), 1, -1
		}
		z.reset()
	}
	for len(z.out) == 0 {
		if z.done {
			return 0, io.EOF
		}
		for z.nbits < z.width {
			c, err := z.src.ReadByte()
			if err != nil {
				z.done = true
				return 0, io.EOF
			}
			z.bits = z.bits<<8 | uint32(c)
			z.nbits += 8
		}
		code := int(z.bits>>(z.nbits-z.width)) & (1<<z.width - 1)
		z.nbits -= z.width
		switch {
		case code == 256:
			z.reset()
			continue
		case code == 257:
			z.done = true
			continue
		case code < 256 && z.prev < 0:
			z.buf[0] = byte(code)
			z.out = z.buf[:1]
			z.prev = code
			continue
		case z.prev < 0 || code > z.next || (code >= 258 && code == z.next && z.prev < 0):
			z.done = true // corrupt
			continue
		}
		var fb byte
		if code < z.next {
			fb = z.first[code]
		} else { // KwKwK: the code being defined
			fb = z.first[z.prev]
		}
		if z.next < 4096 {
			z.prefix[z.next] = int16(z.prev)
			z.suffix[z.next] = fb
			z.first[z.next] = z.first[z.prev]
			z.length[z.next] = z.length[z.prev] + 1
			z.next++
		}
		// Emit the string of code, last byte first.
		l := int(z.length[code])
		for i, c := l-1, code; i >= 0 && c >= 0; i-- {
			z.buf[i] = z.suffix[c]
			c = int(z.prefix[c])
		}
		z.out = z.buf[:l]
		z.prev = code
		limit := z.next
		if z.early {
			limit++
		}
		if limit >= 1<<z.width && z.width < 12 {
			z.width++
		}
	}
	n := copy(b, z.out)
	z.out = z.out[n:]
	return n, nil
}
