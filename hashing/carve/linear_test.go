package carve

import (
	"bytes"
	"testing"
	"time"
)

// adversarial returns inputs of about size bytes shaped to make a careless
// parser quadratic: fake signatures, unterminated strings, fake operators,
// each of which sends a naive search to the end of the file.
func adversarial(size int) map[string][]byte {
	rep := func(head, unit, tail string) []byte {
		b := []byte(head)
		for len(b) < size {
			b = append(b, unit...)
		}
		return append(b, tail...)
	}
	jpegCand := string([]byte{0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xc0, 0, 4, 0, 0, 0xff, 0xda, 0, 2}) + string(bytes.Repeat([]byte{1}, 64))
	return map[string][]byte{
		"pdf unterminated arrays":  rep("%PDF-1.4\n", "1 0 obj\n[ 1 2 3 ", ""),
		"pdf unterminated strings": rep("%PDF-1.4\n", "1 0 obj\n( abc ", ""),
		"pdf streams without end":  rep("%PDF-1.4\n", "1 0 obj<</Length 99 0 R>>stream\nxx", ""),
		"pdf many streams":         rep("%PDF-1.4\n", "1 0 obj<</Subtype/Image/Length 1>>stream\nx\nendstream endobj ", ""),
		"pdf inline flate":         rep("%PDF-1.4\n1 0 obj<</Length 99 0 R>>stream\n", "BI /W 1 /H 1 /F /Fl ID \n", "\nendstream"),
		"pdf inline dct":           rep("%PDF-1.4\n1 0 obj<</Length 99 0 R>>stream\n", "BI /W 1 /H 1 /F /DCT ID \xff\xd8\xff\xe0\x00\x02 ", "\nendstream"),
		"jpeg candidates":          rep("junk", jpegCand, ""),
		"png candidates":           rep("junk", "\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", ""),
		"gif candidates":           rep("junk", "GIF89a\x01\x00\x01\x00\x00\x00\x00\x21\xf9\x01\x01\x01\x01", ""),
		"zip descriptors":          rep("", "PK\x03\x04\x14\x00\x08\x00\x08\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x03\x00PK\x07\x08", ""),
		"svg data uris":            rep("<svg>", "<a href='&#100;ata:,x&amp;'/> data:", ""),
		"xml prolog":               rep("", "<!-- c --><?pi x?>\n", "<svg>"),
		"unterminated doctype":     rep("<!DOCTYPE x [", "<!ENTITY a 'b'>", ""),
		"html data uris":           rep("<html>", "<img src=\"data:image/png;base64,iVBO\" alt='data:", ""),
		"mkv tiny elements":        rep("\x1a\x45\xdf\xa3\x80\x18\x53\x80\x67\x01\xff\xff\xff\xff\xff\xff\xff\x1f\x43\xb6\x75\x01\xff\xff\xff\xff\xff\xff\xff", "\xa3\x80", ""),
	}
}

// TestAdversarialIsLinear: eight times the input must cost about eight
// times the time, not sixty-four. The best of two runs is compared, and the
// bound is loose, for a shared machine (the quadratic cases it was written
// for took 27 and 31 times longer).
func TestAdversarialIsLinear(t *testing.T) {
	if testing.Short() || raceOn {
		t.Skip("timing")
	}
	best := func(in []byte) time.Duration {
		var d time.Duration
		for i := range 2 {
			start := time.Now()
			carveNoRecover(in, Limits{})
			if e := time.Since(start); i == 0 || e < d {
				d = e
			}
		}
		return d
	}
	small, large := adversarial(128<<10), adversarial(1<<20)
	for name, in := range small {
		ts, tl := best(in), best(large[name])
		if tl > 20*ts && tl > 50*time.Millisecond {
			t.Errorf("%s: %v for 128 KiB, %v for 1 MiB", name, ts, tl)
		}
	}
}
