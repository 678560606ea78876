package carve

import (
	"bytes"
	"strconv"
)

// A small PDF object parser: enough of the syntax to read stream
// dictionaries and the few objects they refer to.

type (
	pdfName    string
	pdfKeyword string // an operator or a stray token
	pdfString  []byte
	pdfArray   []any
	pdfDict    map[pdfName]any
	pdfRef     struct{ num, gen int }
)

func isPDFSpace(c byte) bool {
	switch c {
	case 0, '\t', '\n', '\f', '\r', ' ':
		return true
	}
	return false
}

func isPDFDelim(c byte) bool {
	switch c {
	case '(', ')', '<', '>', '[', ']', '{', '}', '/', '%':
		return true
	}
	return false
}

// pdfSkipSpace skips white space and comments from p.
func pdfSkipSpace(b []byte, p int) int {
	for p < len(b) {
		switch {
		case isPDFSpace(b[p]):
			p++
		case b[p] == '%':
			for p < len(b) && b[p] != '\n' && b[p] != '\r' {
				p++
			}
		default:
			return p
		}
	}
	return p
}

type pdfParser struct {
	b     []byte
	p     int
	nodes int // values parsed, bounded against huge dictionaries
}

const (
	pdfMaxNesting = 32
	pdfMaxNodes   = 1 << 16
)

// structural reports whether v is a keyword that cannot be inside a value:
// the dictionary or array around it was never closed.
func structural(v any) bool {
	switch v {
	case pdfKeyword("stream"), pdfKeyword("endstream"), pdfKeyword("obj"), pdfKeyword("endobj"):
		return true
	}
	return false
}

// value parses one value; ok is false on a syntax error. Readers tolerate
// stray tokens, so a stray token is a keyword and a dictionary key that is
// not a name is skipped: a picture must not hide behind a "}" in its
// dictionary.
func (ps *pdfParser) value(nest int) (v any, ok bool) {
	ps.nodes++
	if nest > pdfMaxNesting || ps.nodes > pdfMaxNodes {
		return nil, false
	}
	b := ps.b
	ps.p = pdfSkipSpace(b, ps.p)
	if ps.p >= len(b) {
		return nil, false
	}
	switch c := b[ps.p]; {
	case c == '<' && ps.p+1 < len(b) && b[ps.p+1] == '<':
		ps.p += 2
		d := pdfDict{}
		for {
			ps.p = pdfSkipSpace(b, ps.p)
			if ps.p+1 < len(b) && b[ps.p] == '>' && b[ps.p+1] == '>' {
				ps.p += 2
				return d, true
			}
			k, ok := ps.value(nest + 1)
			if !ok || structural(k) {
				return nil, false
			}
			name, isName := k.(pdfName)
			if !isName {
				continue
			}
			ps.p = pdfSkipSpace(b, ps.p)
			if ps.p+1 < len(b) && b[ps.p] == '>' && b[ps.p+1] == '>' {
				continue // a key without a value
			}
			val, ok := ps.value(nest + 1)
			if !ok || structural(val) {
				return nil, false
			}
			d[name] = val
		}
	case c == '<':
		end := bytes.IndexByte(b[ps.p:], '>')
		if end < 0 {
			ps.p = len(b) // examined
			return nil, false
		}
		s := hexDecode(b[ps.p+1 : ps.p+end])
		ps.p += end + 1
		return pdfString(s), true
	case c == '(':
		s, n, ok := pdfLiteral(b[ps.p:])
		if !ok {
			ps.p = len(b) // examined
			return nil, false
		}
		ps.p += n
		return pdfString(s), true
	case c == '[':
		ps.p++
		var a pdfArray
		for {
			ps.p = pdfSkipSpace(b, ps.p)
			if ps.p < len(b) && b[ps.p] == ']' {
				ps.p++
				return a, true
			}
			v, ok := ps.value(nest + 1)
			if !ok || structural(v) {
				return nil, false
			}
			a = append(a, v)
		}
	case c == '/':
		ps.p++
		s := ps.p
		for ps.p < len(b) && !isPDFSpace(b[ps.p]) && !isPDFDelim(b[ps.p]) {
			ps.p++
		}
		return pdfName(nameDecode(b[s:ps.p])), true
	case c == '+' || c == '-' || c == '.' || (c >= '0' && c <= '9'):
		return ps.number()
	default:
		s := ps.p
		for ps.p < len(b) && !isPDFSpace(b[ps.p]) && !isPDFDelim(b[ps.p]) {
			ps.p++
		}
		if ps.p == s { // a stray delimiter: ")", ">", "]", "{", "}"
			ps.p++
		}
		switch tok := string(b[s:ps.p]); tok {
		case "true":
			return true, true
		case "false":
			return false, true
		case "null":
			return nil, true
		default:
			return pdfKeyword(tok), true
		}
	}
}

// number parses a number, or an indirect reference "num gen R".
func (ps *pdfParser) number() (any, bool) {
	b := ps.b
	s := ps.p
	for ps.p < len(b) && (b[ps.p] == '+' || b[ps.p] == '-' || b[ps.p] == '.' || (b[ps.p] >= '0' && b[ps.p] <= '9')) {
		ps.p++
	}
	tok := string(b[s:ps.p])
	n, err := strconv.ParseInt(tok, 10, 64)
	if err != nil {
		f, err := strconv.ParseFloat(tok, 64)
		if err != nil {
			return float64(0), true // "--5" and the like: readers shrug
		}
		return f, true
	}
	// Look ahead for "gen R".
	q := pdfSkipSpace(b, ps.p)
	g := q
	for g < len(b) && b[g] >= '0' && b[g] <= '9' {
		g++
	}
	if g > q && g-q < 10 {
		r := pdfSkipSpace(b, g)
		if r < len(b) && b[r] == 'R' && (r+1 == len(b) || isPDFSpace(b[r+1]) || isPDFDelim(b[r+1])) && n >= 0 && n < 1<<31 {
			gen, _ := strconv.Atoi(string(b[q:g]))
			ps.p = r + 1
			return pdfRef{int(n), gen}, true
		}
	}
	return n, true
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// hexDecode decodes hex digits, skipping anything else; an odd final digit
// is followed by an implied 0.
func hexDecode(b []byte) []byte {
	out := make([]byte, 0, len(b)/2)
	hi := -1
	for _, c := range b {
		v := hexVal(c)
		if v < 0 {
			continue
		}
		if hi < 0 {
			hi = v
		} else {
			out = append(out, byte(hi<<4|v))
			hi = -1
		}
	}
	if hi >= 0 {
		out = append(out, byte(hi<<4))
	}
	return out
}

// nameDecode undoes #xx escapes in a name: /Fl#61teDecode is /FlateDecode.
func nameDecode(b []byte) string {
	if bytes.IndexByte(b, '#') < 0 {
		return string(b)
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] == '#' && i+2 < len(b) && hexVal(b[i+1]) >= 0 && hexVal(b[i+2]) >= 0 {
			out = append(out, byte(hexVal(b[i+1])<<4|hexVal(b[i+2])))
			i += 2
			continue
		}
		out = append(out, b[i])
	}
	return string(out)
}

// pdfLiteral decodes the literal string at the start of b and returns its
// length in b.
func pdfLiteral(b []byte) ([]byte, int, bool) {
	var out []byte
	depth := 0
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch c {
		case '(':
			if depth > 0 {
				out = append(out, c)
			}
			depth++
		case ')':
			depth--
			if depth == 0 {
				return out, i + 1, true
			}
			out = append(out, c)
		case '\\':
			i++
			if i >= len(b) {
				return nil, 0, false
			}
			switch e := b[i]; e {
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case '\r':
				if i+1 < len(b) && b[i+1] == '\n' {
					i++
				}
			case '\n':
			default:
				if e >= '0' && e <= '7' {
					v := 0
					j := i
					for ; j < len(b) && j < i+3 && b[j] >= '0' && b[j] <= '7'; j++ {
						v = v*8 + int(b[j]-'0')
					}
					out = append(out, byte(v))
					i = j - 1
				} else {
					out = append(out, e)
				}
			}
		default:
			out = append(out, c)
		}
	}
	return nil, 0, false
}

// Accessors that tolerate the wrong types.

func (d pdfDict) name(k pdfName) string {
	n, _ := d[k].(pdfName)
	return string(n)
}

func (d pdfDict) int(k pdfName) (int64, bool) {
	switch v := d[k].(type) {
	case int64:
		return v, true
	case float64:
		if v >= -1<<62 && v <= 1<<62 {
			return int64(v), true
		}
	}
	return 0, false
}
