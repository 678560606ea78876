package carve

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"
)

// zipEntries writes a zip of deflated entries, each with its own declared
// size, sizes in the local headers and a central directory.
func zipEntries(entries []struct {
	name  string
	comp  []byte
	usize int
}) []byte {
	var out, cd []byte
	for _, e := range entries {
		off := len(out)
		h := []byte("PK\x03\x04")
		h = binary.LittleEndian.AppendUint16(h, 20)
		h = binary.LittleEndian.AppendUint16(h, 0)
		h = binary.LittleEndian.AppendUint16(h, 8)
		h = binary.LittleEndian.AppendUint32(h, 0)
		h = binary.LittleEndian.AppendUint32(h, 0) // crc
		h = binary.LittleEndian.AppendUint32(h, uint32(len(e.comp)))
		h = binary.LittleEndian.AppendUint32(h, uint32(e.usize))
		h = binary.LittleEndian.AppendUint16(h, uint16(len(e.name)))
		h = binary.LittleEndian.AppendUint16(h, 0)
		out = append(append(append(out, h...), e.name...), e.comp...)
		c := []byte("PK\x01\x02")
		c = binary.LittleEndian.AppendUint16(c, 20)
		c = append(c, h[4:30]...)
		c = append(c, make([]byte, 12)...)
		c = binary.LittleEndian.AppendUint32(c, uint32(off))
		cd = append(append(cd, c...), e.name...)
	}
	cdOff := len(out)
	out = append(out, cd...)
	e := []byte("PK\x05\x06\x00\x00\x00\x00")
	e = binary.LittleEndian.AppendUint16(e, uint16(len(entries)))
	e = binary.LittleEndian.AppendUint16(e, uint16(len(entries)))
	e = binary.LittleEndian.AppendUint32(e, uint32(len(cd)))
	e = binary.LittleEndian.AppendUint32(e, uint32(cdOff))
	return append(out, e...)
}

func deflated(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

type sizedEntry = struct {
	name  string
	comp  []byte
	usize int
}

// A ~35 KB zip whose first entry inflates to just under the budget of
// zeros used to spend the budget before the picture after it was reached.
// Entries are now sniffed from a few inflated kilobytes first, and
// pictures and containers carved before bytes of no format: the picture
// is carved, and the padding that no longer fits is no reason to call the
// search incomplete (it holds no format a viewer shows).
func TestZeroPaddingBeforeThePicture(t *testing.T) {
	jpg := jpegOf(t, 1)
	budget := 32 << 20
	if raceOn {
		budget = 4 << 20
	}
	pad := budget - 1024
	z := zipEntries([]sizedEntry{
		{"padding.bin", deflateZeros(t, pad), pad},
		{"photo.jpg", deflated(jpg), len(jpg)},
	})
	t.Logf("%d-byte zip, %d bytes of padding", len(z), pad)
	res := Search(z, Limits{MaxBytes: int64(budget)})
	if !hasPart(res.Parts, want{"zip entry photo.jpg", jpg}) {
		t.Fatalf("the picture after the padding was not carved: %d parts, incomplete %q", len(res.Parts), res.Incomplete)
	}
	if res.Incomplete != "" {
		t.Errorf("incomplete %q: only padding was left", res.Incomplete)
	}
	// The padding fits when the budget is larger: it is then searched
	// too, after the picture.
	res = Search(z, Limits{MaxBytes: int64(budget) * 2})
	if !hasPart(res.Parts, want{"zip entry photo.jpg", jpg}) || res.Incomplete != "" {
		t.Fatalf("twice the budget: %d parts, incomplete %q", len(res.Parts), res.Incomplete)
	}
}

// A picture (or a container) the budget cannot afford makes the search
// incomplete, so that the caller never calls the file clean.
func TestBudgetExhaustedWithPicturesLeft(t *testing.T) {
	jpg := jpegOf(t, 1)
	var entries []sizedEntry
	for i := range 4 {
		entries = append(entries, sizedEntry{fmt.Sprintf("%d.jpg", i), deflated(jpg), len(jpg)})
	}
	z := zipEntries(entries)
	res := Search(z, Limits{MaxBytes: int64(4*len(jpg) + 4*zipSniffBytes + 64)})
	if len(res.Parts) != 4 || res.Incomplete != "" {
		t.Fatalf("within budget: %d parts, incomplete %q", len(res.Parts), res.Incomplete)
	}
	sn := min(len(jpg), zipSniffBytes) // sniffing charges what it inflates
	res = Search(z, Limits{MaxBytes: int64(2*(sn+len(jpg)) + sn + len(jpg)/2)})
	if !strings.Contains(res.Incomplete, "budget") {
		t.Fatalf("%d parts, incomplete %q; want the budget named", len(res.Parts), res.Incomplete)
	}
	// The same with stored entries, and with MaxParts.
	var files []zipFile
	for i := range 4 {
		files = append(files, zipFile{fmt.Sprintf("%d.jpg", i), jpg, 0})
	}
	stored := zipOf(t, files...)
	if res := Search(stored, Limits{MaxBytes: int64(3 * len(jpg))}); !strings.Contains(res.Incomplete, "budget") {
		t.Errorf("stored: %d parts, incomplete %q", len(res.Parts), res.Incomplete)
	}
	if res := Search(stored, Limits{MaxParts: 2}); !strings.Contains(res.Incomplete, "embedded files") {
		t.Errorf("max parts: %d parts, incomplete %q", len(res.Parts), res.Incomplete)
	}
	if res := Search(stored, Limits{MaxParts: 4}); res.Incomplete != "" {
		t.Errorf("exactly max parts: incomplete %q", res.Incomplete)
	}
}

// Containers nested deeper than MaxDepth make the search incomplete;
// within it, the picture at the bottom is carved.
func TestNestingDepth(t *testing.T) {
	jpg := jpegOf(t, 1)
	z := zipOf(t, zipFile{"pic.jpg", jpg, 8})
	for level := 2; level <= 6; level++ {
		z = zipOf(t, zipFile{fmt.Sprintf("level%d.zip", level), z, 8})
		for _, depth := range []int{level - 1, level} {
			res := Search(z, Limits{MaxDepth: depth})
			carved := false
			for _, p := range res.Parts {
				carved = carved || bytes.Equal(p.Data, jpg)
			}
			switch {
			case depth >= level && (!carved || res.Incomplete != ""):
				t.Errorf("%d levels, depth %d: carved %v, incomplete %q", level, depth, carved, res.Incomplete)
			case depth < level && !strings.Contains(res.Incomplete, "nested deeper"):
				t.Errorf("%d levels, depth %d: carved %v, incomplete %q; want the depth named", level, depth, carved, res.Incomplete)
			}
		}
	}
}

// In a PDF, pictures stored as they are go before the ones to inflate: a
// stream of megabytes of zero pixels no longer spends the budget first.
func TestPDFStoredPicturesFirst(t *testing.T) {
	jpg := jpegOf(t, 1)
	budget := 8 << 20
	w, h := 2048, budget/(3*2048)-1
	zeros := zlibZeros(t, 3*w*h)
	p := newPDF()
	p.catalog()
	p.stream(10, fmt.Sprintf("/Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode", w, h), zeros, "")
	p.stream(11, "/Type /XObject /Subtype /Image /Width 48 /Height 32 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode", jpg, "")
	res := Search(p.bytes(), Limits{MaxBytes: int64(budget), MaxParts: 64})
	if !hasPart(res.Parts, want{"pdf image object 11", jpg}) {
		t.Fatalf("the stored JPEG was not carved: %d parts, incomplete %q", len(res.Parts), res.Incomplete)
	}
	t.Logf("%d parts, incomplete %q", len(res.Parts), res.Incomplete)
}

// sheetXML is n bytes of repetitive spreadsheet XML, as the sheets of an
// .xlsx are.
func sheetXML(n int) []byte {
	b := []byte(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
	row := []byte(`<row r="1"><c r="A1" t="n"><v>12345</v></c><c r="B1" t="s"><v>7</v></c></row>`)
	for len(b) < n {
		b = append(b, row...)
	}
	return append(b, "</sheetData></worksheet>"...)
}

// An office document's XML parts are no picture candidates: a sheet
// that inflates past the budget was "no carving budget left" and the
// whole .xlsx undecodable. It is now streamed to its end and found to
// hold nothing; the picture in xl/media is carved.
func TestOfficeXMLIsNoCandidate(t *testing.T) {
	budget, sheet := 32<<20, 40<<20
	if raceOn {
		budget, sheet = 2<<20, 3<<20
	}
	png := pngOf(t, 3)
	files := []zipFile{
		{name: "[Content_Types].xml", data: []byte(`<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>`), method: zip.Deflate},
		{name: "xl/worksheets/sheet1.xml", data: sheetXML(sheet), method: zip.Deflate},
		{name: "xl/media/image1.png", data: png, method: zip.Deflate},
	}
	z := zipOf(t, files...)
	res := Search(z, Limits{MaxBytes: int64(budget)})
	if res.Incomplete != "" || !hasPart(res.Parts, want{"xl/media/image1.png", png}) {
		t.Fatalf("%d-byte xlsx: %d parts, incomplete %q", len(z), len(res.Parts), res.Incomplete)
	}
	// The same sheet holding a data: URI cannot be called clean unread.
	files[1].data = append(sheetXML(sheet), `<img src="data:image/png;base64,`+b64(png)+`"/>`...)
	if res := Search(zipOf(t, files...), Limits{MaxBytes: int64(budget)}); res.Incomplete == "" {
		t.Error("a sheet too big to carve holding a data: URI left the search complete")
	}
	// Nor can one the streaming budget does not cover.
	c := newCarver(Limits{MaxBytes: int64(budget)})
	c.scanBudget = int64(sheet) / 2
	c.carve(z, 1, "")
	if c.starved == "" {
		t.Error("a sheet the streaming budget could not cover left the search complete")
	}
}

// A zip found from its end: junk before it hides it from a first-bytes
// sniff, not from unzip. 40 MiB of zeros then a zip holding the picture,
// in an entry too big to carve, gave nothing and a complete search.
func TestZipBehindJunkInAnEntry(t *testing.T) {
	budget, junk := 32<<20, 40<<20
	if raceOn {
		budget, junk = 2<<20, 3<<20
	}
	jpg := jpegOf(t, 1)
	inner := zipOf(t, zipFile{name: "photo.jpg", data: jpg, method: zip.Deflate})
	outer := zipOf(t, zipFile{name: "inner.bin", data: append(make([]byte, junk), inner...), method: zip.Deflate})
	res := Search(outer, Limits{MaxBytes: int64(budget)})
	if !hasPart(res.Parts, want{"inner.bin (the zip in its last", inner}) || !hasPart(res.Parts, want{"> zip entry photo.jpg", jpg}) {
		t.Fatalf("%d parts, incomplete %q", len(res.Parts), res.Incomplete)
	}
	for _, p := range res.Parts {
		t.Logf("%s", p.Where)
	}
	// When the zip does not fit in the tail kept, the search is incomplete.
	c := newCarver(Limits{MaxBytes: int64(budget)})
	c.budget = 1
	c.zipRest(&zipItem{where: "zip entry inner.bin", method: 8, comp: deflated(append(make([]byte, junk), inner...)), usize: uint64(junk + len(inner)), head: make([]byte, 4096)}, 1, "")
	if c.starved == "" {
		t.Error("a zip at the end of an entry left uncarved, search complete")
	}
	// Zeros alone, inflated to their end, are nothing: complete.
	res = Search(zipOf(t, zipFile{name: "zeros.bin", data: make([]byte, junk), method: zip.Deflate}), Limits{MaxBytes: int64(budget)})
	if res.Incomplete != "" || len(res.Parts) != 0 {
		t.Errorf("zeros: %d parts, incomplete %q", len(res.Parts), res.Incomplete)
	}
}

// 4096 tiny decoy attachments used to spend every probe, and the
// Flate-compressed picture after them was never opened, the search
// complete. Streams left unopened now make it incomplete; a long
// ordinary PDF (a content stream a page, as Ghostscript writes) is
// opened whole.
func TestPDFProbesLeftUnopened(t *testing.T) {
	jpg := jpegOf(t, 1)
	decoys := func(n, size int) []byte {
		p := newPDF()
		p.catalog()
		for i := range n {
			p.stream(100+i, "/Type /EmbeddedFile /Filter /FlateDecode", zlibOf(bytes.Repeat([]byte{'x'}, size)), "")
		}
		p.stream(100+n, "/Type /EmbeddedFile /Filter /FlateDecode", zlibOf(jpg), "")
		return p.bytes()
	}
	pdf := decoys(minPDFProbes, 1)
	res := Search(pdf, Limits{MaxParts: 4096})
	if !hasPart(res.Parts, want{"pdf embedded file object", jpg}) && res.Incomplete == "" {
		t.Fatalf("%d-byte pdf: the picture after %d decoys neither carved nor the search incomplete", len(pdf), minPDFProbes)
	}
	// A 5,000-page text PDF: about 730 bytes a content stream.
	p := newPDF()
	p.catalog()
	page := bytes.Repeat([]byte("BT /F1 10 Tf 40 800 Td (Page text line with words) Tj ET\n"), 13)
	for i := range 5000 {
		p.stream(100+i, "/Filter /FlateDecode", zlibOf(append(page, fmt.Sprint(i)...)), "")
	}
	p.stream(5100, "/Type /EmbeddedFile /Filter /FlateDecode", zlibOf(jpg), "")
	pdf = p.bytes()
	start := time.Now()
	res = Search(pdf, Limits{MaxParts: 4096})
	t.Logf("%d-byte pdf of 5000 content streams searched in %v", len(pdf), time.Since(start))
	if !hasPart(res.Parts, want{"pdf embedded file object 5100", jpg}) || res.Incomplete != "" {
		t.Fatalf("%d-byte pdf of 5000 content streams: %d parts, incomplete %q", len(pdf), len(res.Parts), res.Incomplete)
	}
}
