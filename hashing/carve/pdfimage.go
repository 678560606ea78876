package carve

import (
	"bytes"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"io"
)

// A PDF image XObject without a DCT or JPX filter is raw pixels, not a
// file: it is rebuilt as a PNG (gray, RGB, CMYK converted to RGB, indexed)
// so that the caller can decode and hash what a reader shows.

// pdfColor is an image's colour space reduced to what a PNG can say.
type pdfColor struct {
	comps   int    // components per pixel in the PDF data
	kind    string // "gray", "rgb", "cmyk", "indexed"
	palette []byte // RGB triples, for indexed
}

func (d *pdfDoc) colorSpace(v any, nest int) (pdfColor, bool) {
	if nest > 4 {
		return pdfColor{}, false
	}
	v = d.resolve(v)
	var name string
	var arr pdfArray
	switch x := v.(type) {
	case pdfName:
		name = string(x)
	case pdfArray:
		if len(x) == 0 {
			return pdfColor{}, false
		}
		arr = x
		name = d.resolveName(x[0])
	default:
		return pdfColor{}, false
	}
	switch name {
	case "DeviceGray", "G", "CalGray":
		return pdfColor{comps: 1, kind: "gray"}, true
	case "DeviceRGB", "RGB", "CalRGB":
		return pdfColor{comps: 3, kind: "rgb"}, true
	case "DeviceCMYK", "CMYK":
		return pdfColor{comps: 4, kind: "cmyk"}, true
	case "ICCBased":
		if len(arr) < 2 {
			return pdfColor{}, false
		}
		// The profile is a stream: its dictionary says how many components.
		var dict pdfDict
		if r, ok := arr[1].(pdfRef); ok {
			if i, ok := d.byNum[r.num]; ok {
				dict, _ = d.object(i).(pdfDict)
			}
		}
		n, _ := d.resolveInt(dict["N"])
		switch n {
		case 1:
			return pdfColor{comps: 1, kind: "gray"}, true
		case 3:
			return pdfColor{comps: 3, kind: "rgb"}, true
		case 4:
			return pdfColor{comps: 4, kind: "cmyk"}, true
		}
		if alt, ok := dict["Alternate"]; ok {
			return d.colorSpace(alt, nest+1)
		}
	case "Indexed", "I":
		if len(arr) < 4 {
			return pdfColor{}, false
		}
		base, ok := d.colorSpace(arr[1], nest+1)
		hival, ok2 := d.resolveInt(arr[2])
		if !ok || !ok2 || base.kind == "indexed" || hival < 0 || hival > 255 {
			return pdfColor{}, false
		}
		var lookup []byte
		switch l := d.resolve(arr[3]).(type) {
		case pdfString:
			lookup = l
		case pdfDict: // a stream: read it
			if r, ok := arr[3].(pdfRef); ok {
				lookup = d.lookupTable(r.num)
			}
		}
		entries := int(hival) + 1
		if len(lookup) < entries*base.comps {
			lookup = append(lookup, make([]byte, entries*base.comps-len(lookup))...)
		}
		pal := make([]byte, 0, 3*entries)
		for i := 0; i < entries; i++ {
			pal = appendRGB(pal, base.kind, lookup[i*base.comps:(i+1)*base.comps])
		}
		return pdfColor{comps: 1, kind: "indexed", palette: pal}, true
	}
	return pdfColor{}, false
}

// lookupTable returns the decoded bytes (up to 1 KiB) of the stream of
// object num, the palette of an Indexed colour space, read once.
func (d *pdfDoc) lookupTable(num int) []byte {
	if t, ok := d.lookups[num]; ok {
		return t
	}
	var t []byte
	if i, ok := d.byNum[num]; ok {
		if s, _, ok := d.stream(i); ok {
			names, parms := d.filters(s.dict)
			t, _ = io.ReadAll(io.LimitReader(d.decoder(s.raw, names, parms), 4*256))
		}
	}
	if d.lookups == nil {
		d.lookups = make(map[int][]byte)
	}
	d.lookups[num] = t
	return t
}

// appendRGB converts one 8-bit pixel to RGB.
func appendRGB(dst []byte, kind string, px []byte) []byte {
	switch kind {
	case "gray":
		return append(dst, px[0], px[0], px[0])
	case "cmyk":
		k := 255 - int(px[3])
		return append(dst,
			byte((255-int(px[0]))*k/255),
			byte((255-int(px[1]))*k/255),
			byte((255-int(px[2]))*k/255))
	}
	return append(dst, px[0], px[1], px[2])
}

func (c *carver) pdfPixels(d *pdfDoc, s pdfStream, chain []string, parms []pdfDict, depth int, prefix, where string) {
	w, ok1 := d.resolveInt(s.dict["Width"])
	h, ok2 := d.resolveInt(s.dict["Height"])
	bpc, ok3 := d.resolveInt(s.dict["BitsPerComponent"])
	cs, ok4 := d.colorSpace(s.dict["ColorSpace"], 0)
	if !ok1 || !ok2 || !ok3 || !ok4 || w < 1 || h < 1 || w > 1<<20 || h > 1<<20 {
		return
	}
	switch {
	case cs.kind == "gray" && (bpc == 1 || bpc == 2 || bpc == 4 || bpc == 8 || bpc == 16),
		cs.kind == "rgb" && (bpc == 8 || bpc == 16),
		cs.kind == "cmyk" && bpc == 8,
		cs.kind == "indexed" && (bpc == 1 || bpc == 2 || bpc == 4 || bpc == 8):
	default:
		return
	}
	rowBytes := (w*int64(cs.comps)*bpc + 7) / 8
	size := rowBytes * h
	if size > c.budget || size > 1<<40 {
		c.starve("no carving budget left for the " + itoa64(size) + " bytes of pixels of " + prefix + where)
		return
	}
	pix, _ := c.readAll(io.LimitReader(d.decoder(s.raw, chain, parms), size), size)
	if int64(len(pix)) < rowBytes {
		return // not even one row
	}
	charged := len(pix)
	// Rows a truncated stream lacks are shown blank by readers.
	if int64(len(pix)) < size {
		pix = append(pix, make([]byte, size-int64(len(pix)))...)
	}
	if dec, ok := d.resolve(s.dict["Decode"]).(pdfArray); ok && bpc == 8 && cs.kind != "indexed" {
		applyDecode(pix, cs.comps, dec, d)
	}
	if bpc == 1 && cs.kind == "gray" {
		if dec, ok := d.resolve(s.dict["Decode"]).(pdfArray); ok && len(dec) == 2 {
			if lo, _ := d.resolveInt(dec[0]); lo == 1 {
				for i := range pix {
					pix[i] = ^pix[i]
				}
			}
		}
	}
	png := buildPNG(int(w), int(h), int(bpc), cs, pix, int(rowBytes))
	if png != nil {
		// The PNG, charged when added, replaces the pixels: give them back
		// so that a picture as large as half the budget still fits.
		c.budget += int64(charged)
		if !c.fits(len(png)) {
			c.budget -= int64(charged)
			return
		}
		c.add(depth, prefix, where+" (pixels as png)", png)
	}
}

// applyDecode maps 8-bit samples through a /Decode array ([1 0] inverts).
func applyDecode(pix []byte, comps int, dec pdfArray, d *pdfDoc) {
	if len(dec) < 2*comps {
		return
	}
	var lut [4][256]byte
	identity := true
	for c := 0; c < comps; c++ {
		lo, hi := pdfFloat(d.resolve(dec[2*c])), pdfFloat(d.resolve(dec[2*c+1]))
		if lo != 0 || hi != 1 {
			identity = false
		}
		for v := 0; v < 256; v++ {
			x := (lo + float64(v)*(hi-lo)/255) * 255
			lut[c][v] = byte(min(max(x+0.5, 0), 255))
		}
	}
	if identity || comps > 4 {
		return
	}
	for i := range pix {
		pix[i] = lut[i%comps][pix[i]]
	}
}

func pdfFloat(v any) float64 {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

// buildPNG writes pixels as a PNG with no compression: the caller decodes
// it right away, and storing is the cheapest way there.
func buildPNG(w, h, bpc int, cs pdfColor, pix []byte, rowBytes int) []byte {
	var colorType byte
	switch cs.kind {
	case "gray":
		colorType = 0
	case "rgb":
		colorType = 2
	case "indexed":
		colorType = 3
	case "cmyk": // to 8-bit RGB
		rgb := make([]byte, 0, w*h*3)
		for i := 0; i+4 <= len(pix); i += 4 {
			rgb = appendRGB(rgb, "cmyk", pix[i:i+4])
		}
		pix, rowBytes, colorType = rgb, w*3, 2
	}
	if int64(len(pix))+int64(h)+1<<20 > 1<<31-1 {
		return nil // more than one IDAT chunk can hold
	}
	var out bytes.Buffer
	out.Grow(len(pix) + h + len(pix)/65535*5 + 1024)
	out.Write(sigPNG)
	chunk := func(typ string, data []byte) {
		var hdr [8]byte
		binary.BigEndian.PutUint32(hdr[:], uint32(len(data)))
		copy(hdr[4:], typ)
		out.Write(hdr[:])
		out.Write(data)
		crc := crc32.NewIEEE()
		crc.Write(hdr[4:])
		crc.Write(data)
		binary.BigEndian.PutUint32(hdr[:4], crc.Sum32())
		out.Write(hdr[:4])
	}
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = byte(bpc), colorType
	chunk("IHDR", ihdr[:])
	if colorType == 3 {
		chunk("PLTE", cs.palette)
	}
	// The rows, each after its filter type byte (None), in a zlib stream of
	// stored deflate blocks: what compress/zlib writes at NoCompression,
	// without its 600 KB compressor.
	total := h * (rowBytes + 1)
	idat := make([]byte, 0, 2+total+(total/65535+1)*5+4)
	idat = append(idat, 0x78, 0x01)
	left, block := total, 0
	sum := adler32.New()
	write := func(p []byte) {
		sum.Write(p)
		for len(p) > 0 {
			if block == 0 {
				block = min(left, 65535)
				final := byte(0)
				if block == left {
					final = 1
				}
				idat = append(idat, final, byte(block), byte(block>>8), ^byte(block), ^byte(block>>8))
			}
			n := min(len(p), block)
			idat = append(idat, p[:n]...)
			p, block, left = p[n:], block-n, left-n
		}
	}
	none := []byte{0}
	for y := 0; y < h; y++ {
		write(none)
		write(pix[y*rowBytes : (y+1)*rowBytes])
	}
	idat = binary.BigEndian.AppendUint32(idat, sum.Sum32())
	chunk("IDAT", idat)
	chunk("IEND", nil)
	return out.Bytes()
}
