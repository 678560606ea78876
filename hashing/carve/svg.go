package carve

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// SVG and other XML text: data: URIs wherever they are (href, xlink:href,
// CSS url(), entity definitions), decoded as a browser does: XML character
// references first, then percent-decoding, then forgiving base64.

func (c *carver) svg(data []byte, depth int, prefix string) {
	c.dataURIs(data, depth, prefix, "svg data uri ")
}

// hasDataURI reports whether text holds "data:" in any case, spelled
// with character references or not ("da&#116;a:").
func hasDataURI(text []byte) bool {
	return hasDataColon(text) || bytes.Index(text, []byte("&#")) >= 0 && hasDataColon(xmlUnescape(text))
}

// hasDataColon reports whether text holds "data:" in any case.
func hasDataColon(text []byte) bool {
	for i := 0; i < len(text); {
		j := bytes.IndexByte(text[i:], ':')
		if j < 0 {
			return false
		}
		k := i + j
		if k >= 4 && bytes.EqualFold(text[k-4:k], []byte("data")) {
			return true
		}
		i = k + 1
	}
	return false
}

// dataURIs carves the data: URIs of text, naming them label and a count.
func (c *carver) dataURIs(data []byte, depth int, prefix, label string) {
	text := data
	// Other text than SVG is only unescaped for character references,
	// which may spell "data:"; an SVG's entities are decoded whatever they
	// are, as before.
	if bytes.IndexByte(data, '&') >= 0 && (label == "svg data uri " || bytes.Index(data, []byte("&#")) >= 0) {
		// "da&#116;a:" is a data: URI to the browser.
		text = xmlUnescape(data)
	}
	n := 0
	for i := 0; i < len(text) && !c.full(); {
		j := bytes.IndexByte(text[i:], ':')
		if j < 0 {
			return
		}
		k := i + j // the colon
		i = k + 1
		if k < 4 || !bytes.EqualFold(text[k-4:k], []byte("data")) || (k > 4 && isSchemeChar(text[k-5])) {
			continue
		}
		// The URI ends with the quote that opened it, or at the end of
		// a CSS url(), or at markup.
		var stop string
		switch {
		case k > 4 && (text[k-5] == '"' || text[k-5] == '\''):
			stop = string(text[k-5])
		case k > 4 && text[k-5] == '(':
			stop = ")"
		default:
			stop = "\"'<> \t\r\n)"
		}
		end := bytes.IndexAny(text[i:], stop)
		if end < 0 {
			return // cut short: what is there is not the whole file
		}
		uri := text[i : i+end]
		i += end
		if b, ok := dataURI(uri); ok {
			n++
			c.add(depth, prefix, label+itoa(n), b)
		}
	}
}

func isSchemeChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '+' || b == '-' || b == '.'
}

// dataURI decodes the part of a data: URI after "data:".
func dataURI(u []byte) ([]byte, bool) {
	comma := bytes.IndexByte(u, ',')
	if comma < 0 {
		return nil, false
	}
	header, body := u[:comma], u[comma+1:]
	if bytes.IndexByte(body, '%') >= 0 {
		body = percentDecode(body)
	}
	h := bytes.TrimRight(bytes.ToLower(header), " \t\r\n\f")
	if !bytes.HasSuffix(h, []byte(";base64")) {
		if len(body) == 0 {
			return nil, false
		}
		if bytes.IndexByte(u[comma+1:], '%') < 0 {
			body = bytes.Clone(body) // do not alias the XML text
		}
		return body, true
	}
	return forgivingBase64(body)
}

// forgivingBase64 decodes as the WHATWG "forgiving-base64 decode": ASCII
// white space is ignored and the padding is optional.
func forgivingBase64(b []byte) ([]byte, bool) {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\f', '\r':
		default:
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 0 {
		clean = bytes.TrimSuffix(clean, []byte("="))
		clean = bytes.TrimSuffix(clean, []byte("="))
	}
	if len(clean)%4 == 1 {
		return nil, false
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	n, err := base64.RawStdEncoding.Decode(out, clean)
	if err != nil || n == 0 {
		return nil, false
	}
	return out[:n], true
}

func percentDecode(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '%' && i+2 < len(b) && hexVal(b[i+1]) >= 0 && hexVal(b[i+2]) >= 0 {
			out = append(out, byte(hexVal(b[i+1])<<4|hexVal(b[i+2])))
			i += 2
			continue
		}
		out = append(out, b[i])
	}
	return out
}

// xmlUnescape replaces the predefined entities and character references.
func xmlUnescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			return append(out, b...)
		}
		out = append(out, b[:i]...)
		b = b[i:]
		semi := bytes.IndexByte(b[:min(len(b), 12)], ';')
		if semi < 0 {
			out = append(out, '&')
			b = b[1:]
			continue
		}
		ent := string(b[1:semi])
		r := rune(-1)
		switch ent {
		case "amp":
			r = '&'
		case "lt":
			r = '<'
		case "gt":
			r = '>'
		case "quot":
			r = '"'
		case "apos":
			r = '\''
		default:
			if len(ent) > 1 && ent[0] == '#' {
				var v uint64
				var err error
				if ent[1] == 'x' || ent[1] == 'X' {
					v, err = strconv.ParseUint(ent[2:], 16, 32)
				} else {
					v, err = strconv.ParseUint(ent[1:], 10, 32)
				}
				if err == nil && v <= utf8.MaxRune {
					r = rune(v)
				}
			}
		}
		if r < 0 {
			out = append(out, '&')
			b = b[1:]
			continue
		}
		out = utf8.AppendRune(out, r)
		b = b[semi+1:]
	}
}
