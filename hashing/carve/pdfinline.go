package carve

import (
	"bytes"
	"compress/flate"
	"compress/zlib"
	"io"
)

// Inline images: "BI <key value pairs> ID <data> EI" in a content stream,
// with abbreviated keys, filters and colour spaces.

var inlineKeys = map[pdfName]pdfName{
	"W": "Width", "H": "Height", "BPC": "BitsPerComponent", "CS": "ColorSpace",
	"F": "Filter", "DP": "DecodeParms", "IM": "ImageMask", "D": "Decode", "L": "Length",
}

// pdfInline carves the inline images of the decoded content stream of
// object num; n counts them across the document.
//
// left bounds what finding the end of deflated data may inflate.
func (c *carver) pdfInline(d *pdfDoc, content []byte, num int, n *int, left *int64, depth int, prefix string) {
	p := 0
	// Fake BIs inside the data of an image, or one after another, must
	// not make finding their ends quadratic: work bounds what is read.
	in := inlineScan{b: content, eiFrom: -1, maxWork: 4*len(content) + 1<<20}
	for tries := 0; tries < 1<<16 && !c.full() && in.work < in.maxWork; tries++ {
		i := bytes.Index(content[p:], []byte("BI"))
		if i < 0 {
			return
		}
		k := p + i
		p = k + 2
		if (k > 0 && !isPDFSpace(content[k-1])) || (p < len(content) && !isPDFSpace(content[p]) && content[p] != '/') {
			continue
		}
		dict, start, ok := inlineDict(content, p)
		if !ok {
			continue
		}
		end := d.inlineEnd(dict, &in, start, left)
		if end < 0 {
			continue
		}
		p = end
		*n++
		where := "pdf inline image " + itoa(*n) + " in object " + itoa(num)
		if b, ok := dict["ImageMask"].(bool); ok && b {
			continue
		}
		c.pdfImageAs(d, pdfStream{num: num, dict: dict, raw: content[start:end], off: -1}, depth, prefix, where)
	}
}

// inlineDict parses the key-value pairs from p up to ID and returns them
// with their keys expanded, and where the data starts (after ID and one
// white-space byte).
func inlineDict(b []byte, p int) (pdfDict, int, bool) {
	dict := pdfDict{}
	ps := pdfParser{b: b, p: p}
	for len(dict) < 64 {
		ps.p = pdfSkipSpace(b, ps.p)
		if bytes.HasPrefix(b[ps.p:], []byte("ID")) && ps.p+2 < len(b) && isPDFSpace(b[ps.p+2]) {
			return dict, ps.p + 3, true
		}
		k, ok := ps.value(0)
		name, isName := k.(pdfName)
		if !ok || !isName {
			return nil, 0, false
		}
		v, ok := ps.value(0)
		if !ok {
			return nil, 0, false
		}
		if long, ok := inlineKeys[name]; ok {
			name = long
		}
		dict[name] = v
	}
	return nil, 0, false
}

// inlineEnd finds the end of the data of an inline image starting at
// start: from its length when it is known (/L, raw samples, the end of a
// JPEG or a deflate stream), checked against the EI that must follow, or
// else the first EI between white space.
type inlineScan struct {
	b             []byte
	work, maxWork int
	// The last search for EI: from where, and what it found (-1: none).
	eiFrom, eiAt int
}

// ei returns the offset of the first EI between white space at or after q
// (-1 if none).
func (in *inlineScan) ei(q int) int {
	if in.eiFrom >= 0 && q >= in.eiFrom && (in.eiAt < 0 || q <= in.eiAt) {
		return in.eiAt
	}
	b := in.b
	in.eiFrom, in.eiAt = q, -1
	for q < len(b) {
		i := bytes.Index(b[q:], []byte("EI"))
		if i < 0 {
			break
		}
		e := q + i
		q = e + 2
		if e > 0 && isPDFSpace(b[e-1]) && (e+2 == len(b) || isPDFSpace(b[e+2])) {
			in.eiAt = e
			break
		}
	}
	in.work += q - in.eiFrom
	return in.eiAt
}

func (d *pdfDoc) inlineEnd(dict pdfDict, in *inlineScan, start int, left *int64) int {
	b := in.b
	followedByEI := func(end int) bool {
		q := pdfSkipSpace(b, end)
		return bytes.HasPrefix(b[q:], []byte("EI")) && (q+2 == len(b) || isPDFSpace(b[q+2]) || isPDFDelim(b[q+2]))
	}
	names, _ := d.filters(dict)
	end := -1
	if l, ok := d.resolveInt(dict["Length"]); ok && l >= 0 && l <= int64(len(b)-start) {
		end = start + int(l)
	} else if len(names) == 0 {
		w, _ := d.resolveInt(dict["Width"])
		h, _ := d.resolveInt(dict["Height"])
		bpc, _ := d.resolveInt(dict["BitsPerComponent"])
		comps := int64(1)
		if im, _ := dict["ImageMask"].(bool); im {
			bpc = 1
		} else if cs, ok := d.colorSpace(dict["ColorSpace"], 0); ok {
			comps = int64(cs.comps)
		}
		if w > 0 && h > 0 && bpc > 0 && w < 1<<20 && h < 1<<20 && bpc <= 16 {
			if size := (w*comps*bpc + 7) / 8 * h; size <= int64(len(b)-start) {
				end = start + int(size)
			}
		}
	} else {
		switch names[0] {
		case "DCTDecode", "DCT":
			if e := jpegEnd(b[start:], true, &in.work); e > 0 {
				end = start + e
			}
		case "FlateDecode", "Fl":
			br := bytes.NewReader(b[start:])
			var r io.Reader
			if zr, err := zlib.NewReader(br); err == nil {
				r = zr
			} else {
				br.Reset(b[start:])
				r = flate.NewReader(br)
			}
			n, err := io.Copy(io.Discard, io.LimitReader(r, max(*left, 0)))
			*left -= n
			in.work += len(b) - start - br.Len()
			if err == nil && *left > 0 {
				end = len(b) - br.Len()
			}
		case "ASCIIHexDecode", "AHx":
			if i := bytes.IndexByte(b[start:], '>'); i >= 0 {
				end = start + i + 1
			}
		case "ASCII85Decode", "A85":
			if i := bytes.Index(b[start:], []byte("~>")); i >= 0 {
				end = start + i + 2
			}
		}
	}
	if end >= start && followedByEI(end) {
		return end
	}
	// The first EI between white space.
	if e := in.ei(start); e > start {
		return e - 1
	}
	return -1
}
