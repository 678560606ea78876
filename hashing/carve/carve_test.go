package carve

import (
	"bytes"
	"compress/flate"
	"crypto/rand"
	"encoding/ascii85"
	"encoding/binary"
	"fmt"
	"image"
	"image/png"
	"io"
	"strings"
	"testing"
)

type want struct {
	where string // a substring of Part.Where
	data  []byte
}

type carveCase struct {
	name  string
	in    []byte
	want  []want
	exact bool // no other part than those wanted
}

// cases builds every container the tests and the fuzz seeds use.
func cases(t testing.TB) []carveCase {
	jpg, jpg2, pngb, gifb, webp := jpegOf(t, 1), jpegOf(t, 2), pngOf(t, 3), gifOf(t, 4), webpOf(5)
	var cs []carveCase
	add := func(name string, in []byte, exact bool, w ...want) {
		cs = append(cs, carveCase{name: name, in: in, want: w, exact: exact})
	}

	// PDF: DCT image, Flate+DCT chain, indirect /Length, embedded file,
	// ASCIIHex, a JPEG in a stream not declared as an image.
	{
		p := newPDF()
		p.catalog()
		p.stream(10, "/Type /XObject /Subtype /Image /Width 48 /Height 32 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode", jpg, "")
		add("pdf dct", p.bytes(), true, want{"pdf image object 10", jpg})
	}
	{
		p := newPDF()
		p.catalog()
		p.stream(10, "/Type /XObject /Subtype /Image /Width 48 /Height 32 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter [/FlateDecode /DCTDecode]", zlibOf(jpg), "11 0 R")
		p.obj(11, fmt.Sprint(len(zlibOf(jpg))))
		p.stream(12, "/Subtype /Image /Width 40 /Height 30 /Filter [/AHx /D#43TDecode]", []byte(fmt.Sprintf("%x>", jpg2)), "99 0 R")
		add("pdf flate dct, indirect length", p.bytes(), true, want{"pdf image object 10", jpg}, want{"pdf image object 12", jpg2})
	}
	{
		p := newPDF()
		p.catalog()
		p.stream(20, "/Type /EmbeddedFile /Subtype /image#2Fpng /Filter /FlateDecode", zlibOf(pngb), "")
		p.stream(21, "/Filter /FlateDecode /DecodeParms << /Predictor 12 /Columns 4 >>", zlibOf(pngPredict(gifb, 4)), "")
		p.stream(22, "", jpg2, "")
		p.stream(23, "/Filter /FlateDecode", zlibOf([]byte("BT /F1 12 Tf (hello) Tj ET")), "")
		add("pdf embedded file and undeclared streams", p.bytes(), true,
			want{"pdf embedded file object 20", pngb}, want{"pdf stream object 21", gifb}, want{"pdf stream object 22", jpg2})
	}
	{
		// No xref, no endobj, a /Length that lies: scanning still works.
		var b bytes.Buffer
		b.WriteString("%PDF-1.4\n1 0 obj <</Subtype/Image/Filter/DCTDecode/Length 5>>stream\n")
		b.Write(jpg)
		b.WriteString("\nendstream\n")
		add("pdf broken length", b.Bytes(), true, want{"pdf image object 1", jpg})
	}

	{
		// Inline images in a page's content, as Ghostscript writes small
		// pictures: a JPEG, and raw pixels deflated with a PNG predictor.
		rgb := rawRGB(photo(3, 40, 30))
		var content bytes.Buffer
		content.WriteString("q 40 0 0 30 0 0 cm\nBI /W 48 /H 32 /BPC 8 /CS /RGB /F /DCT ID ")
		content.Write(jpg)
		content.WriteString("\nEI Q\nq BI\n/CS/RGB\n/W 40\n/H 30\n/BPC 8\n/F/Fl\n/DP<</Predictor 15\n/Columns 40\n/Colors 3>>\nID\n")
		content.Write(zlibOf(pngPredict(rgb, 120)))
		content.WriteString("\nEI Q\n(BI) Tj")
		p := newPDF()
		p.stream(5, "/Filter /FlateDecode", zlibOf(content.Bytes()), "")
		add("pdf inline images", p.bytes(), false, want{"pdf inline image 1 in object 5", jpg})
	}

	{
		// Syntax a reader tolerates: a stray token in the dictionary, and
		// a misspelt keyword that only a repairing reader gets past.
		var b bytes.Buffer
		b.WriteString("%PDF-1.4\n1 0 obj << /Subtype /Image } /Filter /DCTDecode /Length ")
		fmt.Fprintf(&b, "%d >>\nstream\n%s\nendstream\nendobj\n", len(jpg), jpg)
		b.WriteString("2 0 obj << /Subtype /Image /Filter /DCTDecode >>\nstrem\n")
		at := b.Len()
		fmt.Fprintf(&b, "%s\nendstream\nendobj\n%%%%EOF\n", jpg2)
		add("pdf with broken syntax", b.Bytes(), true, want{"pdf image object 1", jpg}, want{fmt.Sprintf("pdf jpeg at offset %d", at), jpg2})
	}

	// SVG.
	{
		svg := `<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="10" height="10">
  <image href="data:image/png;base64,` + b64(pngb) + `" width="10" height="10"/>
  <image xlink:href='DATA:image/jpeg;base64,` + wrapLines(b64(jpg), 76) + `'/>
  <style>.a { background: url(data:image/gif;base64,` + strings.TrimRight(b64(gifb), "=") + `) }</style>
  <image href="da&#116;a:image/jpeg;base64,` + strings.ReplaceAll(b64(jpg2), "+", "%2B") + `"/>
  <a href="https://example.org/data:x">link</a>
</svg>`
		add("svg", []byte(svg), true, want{"svg data uri 1", pngb}, want{"svg data uri 2", jpg}, want{"svg data uri 3", gifb}, want{"svg data uri 4", jpg2})
		inner := `<svg xmlns="http://www.w3.org/2000/svg"><image href="data:image/png;base64,` + b64(pngb) + `"/></svg>`
		enc := strings.NewReplacer("<", "%3C", ">", "%3E", `"`, "%22", " ", "%20").Replace(inner)
		// Browsers show these; a fixed opening in the first 4 KiB missed them.
		img := `<image href="data:image/jpeg;base64,` + b64(jpg) + `"/>`
		add("svg with a prefixed root", []byte(`<s:svg xmlns:s="http://www.w3.org/2000/svg">`+strings.ReplaceAll(img, "<image", "<s:image")+`</s:svg>`), true, want{"svg data uri 1", jpg})
		add("svg after a processing instruction", []byte(`<?foo bar?><svg xmlns="http://www.w3.org/2000/svg">`+img+`</svg>`), true, want{"svg data uri 1", jpg})
		add("svg after 5000 spaces", []byte(strings.Repeat(" ", 5000)+`<svg xmlns="http://www.w3.org/2000/svg">`+img+`</svg>`), true, want{"svg data uri 1", jpg})
		add("svg after a long comment and a doctype with a subset", []byte(`<!--`+strings.Repeat("x", 9000)+`--><!DOCTYPE svg [<!ENTITY a "b>">]><svg>`+img+`</svg>`), true, want{"svg data uri 1", jpg})
		add("html with a data: uri", []byte(`<!doctype html><html><body><img src="data:image/jpeg;base64,`+b64(jpg)+`"></body></html>`), true, want{"data uri 1", jpg})
		add("svg in a percent-encoded svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><image href='data:image/svg+xml,`+enc+`'/></svg>`), true,
			want{"svg data uri 1 > svg data uri 1", pngb})
	}

	// ID3v2.
	{
		f := id3Frame(3, "TIT2", append([]byte{0}, "song"...), 0)
		f = append(f, id3Frame(3, "APIC", apicBody("image/jpeg", 0, []byte("cover"), jpg), 0)...)
		f = append(f, make([]byte, 100)...) // padding
		add("id3v2.3", append(id3Tag(3, 0, f), mp3Frames()...), true, want{"id3 APIC 1 image/jpeg", jpg})

		u := unsyncBytes(id3Frame(3, "APIC", apicBody("image/png", 1, []byte{0xff, 0xfe, 'a', 0}, pngb), 0))
		add("id3v2.3 unsynchronised, utf-16 description", append(id3Tag(3, 0x80, u), mp3Frames()...), true, want{"id3 APIC 1 image/png", pngb})

		body := apicBody("image/jpeg", 3, []byte("x"), jpg)
		withDLI := append(syncsafeBytes(len(body)), unsyncBytes(body)...)
		f4 := id3Frame(4, "APIC", withDLI, 0x0003) // unsynchronised, data length indicator
		f4 = append(f4, id3Frame(4, "APIC", zlibCompressed(apicBody("image/gif", 0, nil, gifb)), 0x0009)...)
		add("id3v2.4 syncsafe, unsync, compressed", append(id3Tag(4, 0, f4), mp3Frames()...), true,
			want{"id3 APIC 1 image/jpeg", jpg}, want{"id3 APIC 2 image/gif", gifb})

		pic := []byte("PIC")
		pb := append([]byte{0}, "PNG"...)
		pb = append(pb, 3, 0)
		pb = append(pb, pngb...)
		pic = append(pic, byte(len(pb)>>16), byte(len(pb)>>8), byte(len(pb)))
		pic = append(pic, pb...)
		add("id3v2.2 PIC", append(id3Tag(2, 0, pic), mp3Frames()...), true, want{"id3 APIC 1 image/png", pngb})

		add("id3 then flac", append(id3Tag(3, 0, id3Frame(3, "TIT2", []byte{0, 'a'}, 0)), flacWith(jpg, "image/jpeg")...), true,
			want{"flac picture 1 image/jpeg", jpg})
	}

	// MP4 / HEIF.
	add("mp4 covr", mp4With("M4A \x00\x00\x02\x00isomiso2", jpg, pngb), true, want{"mp4 covr 1", jpg}, want{"mp4 covr 2", pngb})
	{
		// QuickTime keyed metadata: the artwork is ilst item 2, named by
		// its index in the keys box.
		keys := box("keys", []byte{0, 0, 0, 0, 0, 0, 0, 2},
			box("mdta", []byte("com.apple.quicktime.title")), box("mdta", []byte("com.apple.quicktime.artwork")))
		ilst := box("ilst", box("\x00\x00\x00\x01", box("data", []byte{0, 0, 0, 1, 0, 0, 0, 0}, []byte("title"))),
			box("\x00\x00\x00\x02", box("data", []byte{0, 0, 0, 13, 0, 0, 0, 0}, jpg)))
		mov := append(box("ftyp", []byte("qt  \x00\x00\x02\x00qt  ")), box("moov", box("meta", box("hdlr", make([]byte, 24)), keys, ilst))...)
		add("mov keyed artwork", mov, true, want{"mp4 metadata item ????", jpg})
	}
	heif := append(box("ftyp", []byte("heic\x00\x00\x00\x00mif1heic")), box("meta", make([]byte, 4), box("hdlr", make([]byte, 24)))...)
	add("heif is not carved", heif, true)
	add("heif brand on a movie", mp4With("mif1\x00\x00\x00\x00mif1isom", jpg), true, want{"mp4 covr 1", jpg})

	// FLAC.
	add("flac", flacWith(pngb, "image/png"), true, want{"flac picture 1 image/png", pngb})

	// Matroska.
	files := map[string][]byte{"cover.jpg": jpg, "small_cover.png": pngb}
	add("mkv", mkvWith(false, files, "cover.jpg", "small_cover.png"), true,
		want{"mkv attachment cover.jpg (image/jpeg)", jpg}, want{"mkv attachment small_cover.png (image/png)", pngb})
	add("mkv seekhead", mkvWith(true, files, "cover.jpg"), true, want{"mkv attachment cover.jpg", jpg})

	// ZIP.
	z := zipOf(t, zipFile{"a/b.jpg", jpg, 0}, zipFile{"a/c.png", pngb, 8}, zipFile{"dir/", nil, 0}, zipFile{"d.gif", gifb, 8})
	add("zip", z, true, want{"zip entry a/b.jpg", jpg}, want{"zip entry a/c.png", pngb}, want{"zip entry d.gif", gifb})
	add("zip without central directory", z[:bytes.Index(z, []byte("PK\x01\x02"))], true,
		want{"zip entry a/b.jpg", jpg}, want{"zip entry a/c.png", pngb}, want{"zip entry d.gif", gifb})
	add("zip after junk (self-extracting)", append(bytes.Repeat([]byte("MZ stub "), 40), z...), false,
		want{"zip entry a/b.jpg", jpg}, want{"zip entry a/c.png", pngb}, want{"zip entry d.gif", gifb})

	// Nested: a zip holding a pdf holding a jpeg.
	{
		p := newPDF()
		p.catalog()
		p.stream(10, "/Subtype /Image /Filter /DCTDecode", jpg, "")
		doc := p.bytes()
		add("zip > pdf > jpeg", zipOf(t, zipFile{"doc.pdf", doc, 8}), true,
			want{"zip entry doc.pdf", doc}, want{"zip entry doc.pdf > pdf image object 10", jpg})
	}

	// Appended and prepended bytes.
	add("jpeg + png", append(bytes.Clone(jpg), pngb...), true, want{"the jpeg without", jpg}, want{"after the end of the jpeg", pngb})
	add("png + jpeg", append(bytes.Clone(pngb), jpg...), true, want{"the png without", pngb}, want{"after the end of the png", jpg})
	add("gif + zip", append(bytes.Clone(gifb), z...), false, want{"after the end of the gif", z}, want{"after the end of the gif > zip entry a/b.jpg", jpg})
	add("webp + jpeg", append(bytes.Clone(webp), jpg...), true, want{"the webp without", webp}, want{"after the end of the webp", jpg})
	add("jpeg padded", append(bytes.Clone(jpg), make([]byte, 4096)...), true, want{"the jpeg without the 4096 bytes after its end", jpg})
	add("jpeg + 1 byte", append(bytes.Clone(jpg), 0), true, want{"the jpeg without the 1 bytes after its end", jpg})
	junk := bytes.Repeat([]byte("not an image "), 20)
	add("junk + png", append(bytes.Clone(junk), pngb...), true, want{"png at offset 260", pngb})
	add("junk + jpeg + junk + gif", append(append(append(bytes.Clone(junk), jpg...), junk...), gifb...), true,
		want{"jpeg at offset 260", jpg}, want{fmt.Sprintf("gif at offset %d", 520+len(jpg)), gifb})
	{
		// A JPEG whose comment segment opens a PDF: image viewers show the
		// JPEG, PDF readers the PDF and its picture.
		p := newPDF()
		p.stream(10, "/Subtype /Image /Filter /DCTDecode", jpg2, "")
		doc := p.bytes()
		poly := append([]byte{0xff, 0xd8, 0xff, 0xfe, 0, 20}, "%PDF-1.7 polyglot\n"...)
		poly = append(poly, jpg[2:]...)
		poly = append(poly, doc[bytes.IndexByte(doc, '\n'):]...)
		add("jpeg/pdf polyglot", poly, false, want{"pdf polyglot > pdf image object 10", jpg2})
	}
	add("plain jpeg", jpg, true)
	add("plain png", pngb, true)
	return cs
}

// zlibCompressed is an ID3v2.4 compressed frame body with its data length
// indicator.
func zlibCompressed(b []byte) []byte {
	return append(syncsafeBytes(len(b)), zlibOf(b)...)
}

// pngPredict applies the PNG Up predictor (type 2) with rows of n bytes.
func pngPredict(b []byte, n int) []byte {
	var out []byte
	prev := make([]byte, n)
	for i := 0; i < len(b); i += n {
		row := make([]byte, n)
		copy(row, b[i:])
		out = append(out, 2)
		for j := range row {
			out = append(out, row[j]-prev[j])
		}
		prev = row
	}
	return out
}

func TestCarve(t *testing.T) {
	for _, tc := range cases(t) {
		t.Run(tc.name, func(t *testing.T) {
			parts := Carve(tc.in, Limits{})
			checkWanted(t, parts, tc)
		})
	}
}

func checkWanted(t *testing.T, parts []Part, tc carveCase) {
	t.Helper()
	used := make([]bool, len(parts))
	for _, w := range tc.want {
		found := false
		for i, p := range parts {
			if !used[i] && strings.Contains(p.Where, w.where) && bytes.Equal(p.Data, w.data) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			t.Errorf("no part %q of %d bytes", w.where, len(w.data))
		}
	}
	for i, p := range parts {
		if !used[i] && tc.exact {
			t.Errorf("unexpected part %q (%d bytes)", p.Where, len(p.Data))
		}
	}
	if t.Failed() {
		for _, p := range parts {
			t.Logf("got %q: %d bytes % x", p.Where, len(p.Data), p.Data[:min(16, len(p.Data))])
		}
	}
}

// TestPDFPixels checks the PNGs rebuilt from raw PDF image XObjects.
func TestPDFPixels(t *testing.T) {
	img := photo(7, 20, 10)
	rgb := rawRGB(img)
	gray := make([]byte, 0, 200)
	for i := 0; i < len(rgb); i += 3 {
		gray = append(gray, rgb[i])
	}
	pal := make([]byte, 0, 256*3)
	for i := 0; i < 256; i++ {
		pal = append(pal, byte(i), byte(255-i), byte(i/2))
	}
	p := newPDF()
	p.catalog()
	p.stream(10, "/Subtype /Image /Width 20 /Height 10 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode", zlibOf(rgb), "")
	p.stream(11, "/Subtype /Image /Width 20 /Height 10 /ColorSpace [/ICCBased 12 0 R] /BitsPerComponent 8 /Filter /FlateDecode /DecodeParms << /Predictor 15 /Colors 3 /Columns 20 >> /SMask 13 0 R", zlibOf(pngPredict(rgb, 60)), "")
	p.stream(12, "/N 3 /Alternate /DeviceRGB", []byte("icc profile"), "")
	p.stream(13, "/Subtype /Image /Width 20 /Height 10 /ColorSpace /DeviceGray /BitsPerComponent 8 /Decode [1 0]", gray, "")
	p.stream(14, fmt.Sprintf("/Subtype /Image /Width 20 /Height 10 /ColorSpace [/Indexed /DeviceRGB 255 <%x>] /BitsPerComponent 8 /Filter /RunLengthDecode", pal), runLength(gray), "")
	p.stream(15, "/Subtype /Image /Width 20 /Height 10 /ColorSpace /DeviceCMYK /BitsPerComponent 8 /Filter /ASCII85Decode", []byte("<~"+ascii85Of(cmykOf(rgb))+"~>"), "")
	p.stream(16, "/Subtype /Image /Width 20 /Height 10 /ColorSpace /DeviceGray /BitsPerComponent 8 /Filter /LZWDecode", lzwEarly(gray), "")
	parts := Carve(p.bytes(), Limits{})
	wantPix := map[string]func(x, y int) [3]byte{
		"object 10": func(x, y int) [3]byte { c := img.RGBAAt(x, y); return [3]byte{c.R, c.G, c.B} },
		"object 11": func(x, y int) [3]byte { c := img.RGBAAt(x, y); return [3]byte{c.R, c.G, c.B} },
		"object 13": func(x, y int) [3]byte { v := 255 - gray[y*20+x]; return [3]byte{v, v, v} },
		"object 14": func(x, y int) [3]byte { v := gray[y*20+x]; return [3]byte{v, 255 - v, v / 2} },
		"object 15": func(x, y int) [3]byte { c := img.RGBAAt(x, y); return [3]byte{c.R, c.G, c.B} },
		"object 16": func(x, y int) [3]byte { v := gray[y*20+x]; return [3]byte{v, v, v} },
	}
	if len(parts) != len(wantPix) {
		for _, p := range parts {
			t.Logf("%s", p.Where)
		}
		t.Fatalf("%d parts, want %d", len(parts), len(wantPix))
	}
	// The soft mask comes last.
	if !strings.Contains(parts[len(parts)-1].Where, "object 13") {
		t.Errorf("last part %q, want the soft mask", parts[len(parts)-1].Where)
	}
	for _, part := range parts {
		var f func(x, y int) [3]byte
		for k, v := range wantPix {
			if strings.Contains(part.Where, k+" ") {
				f = v
			}
		}
		if f == nil || !strings.HasSuffix(part.Where, "(pixels as png)") {
			t.Fatalf("unexpected part %q", part.Where)
		}
		m, err := png.Decode(bytes.NewReader(part.Data))
		if err != nil {
			t.Fatalf("%s: %v", part.Where, err)
		}
		if m.Bounds() != image.Rect(0, 0, 20, 10) {
			t.Fatalf("%s: bounds %v", part.Where, m.Bounds())
		}
		for y := 0; y < 10; y++ {
			for x := 0; x < 20; x++ {
				r, g, b, _ := m.At(x, y).RGBA()
				got := [3]byte{byte(r >> 8), byte(g >> 8), byte(b >> 8)}
				if w := f(x, y); absDiff(got, w) > 1 {
					t.Fatalf("%s: pixel %d,%d = %v, want %v", part.Where, x, y, got, w)
				}
			}
		}
	}
}

// TestPDFInlinePixels checks the PNG rebuilt from an inline image.
func TestPDFInlinePixels(t *testing.T) {
	var tc carveCase
	for _, c := range cases(t) {
		if c.name == "pdf inline images" {
			tc = c
		}
	}
	img := photo(3, 40, 30)
	parts := Carve(tc.in, Limits{})
	if len(parts) != 2 || parts[1].Where != "pdf inline image 2 in object 5 (pixels as png)" {
		t.Fatalf("parts %v", parts)
	}
	m, err := png.Decode(bytes.NewReader(parts[1].Data))
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 30; y++ {
		for x := 0; x < 40; x++ {
			r, g, b, _ := m.At(x, y).RGBA()
			c := img.RGBAAt(x, y)
			if got, want := [3]byte{byte(r >> 8), byte(g >> 8), byte(b >> 8)}, [3]byte{c.R, c.G, c.B}; got != want {
				t.Fatalf("pixel %d,%d = %v, want %v", x, y, got, want)
			}
		}
	}
}

// TestPDFPixelsBudget: a picture of more than half the budget still fits,
// its pixels being replaced by the PNG rather than counted twice.
func TestPDFPixelsBudget(t *testing.T) {
	rgb := rawRGB(photo(8, 400, 300)) // 360,000 bytes
	p := newPDF()
	p.stream(10, "/Subtype /Image /Width 400 /Height 300 /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /FlateDecode", zlibOf(rgb), "")
	parts := checkLimits(t, p.bytes(), Limits{MaxBytes: 500_000})
	if len(parts) != 1 {
		t.Fatalf("%d parts, want the picture", len(parts))
	}
}

func absDiff(a, b [3]byte) int {
	d := 0
	for i := range a {
		d = max(d, abs(int(a[i])-int(b[i])))
	}
	return d
}

func cmykOf(rgb []byte) []byte {
	var out []byte
	for i := 0; i+3 <= len(rgb); i += 3 {
		// With K = 0 the conversion back is exact.
		out = append(out, 255-rgb[i], 255-rgb[i+1], 255-rgb[i+2], 0)
	}
	return out
}

func runLength(b []byte) []byte {
	var out []byte
	for len(b) > 0 {
		n := min(len(b), 128)
		out = append(out, byte(n-1))
		out = append(out, b[:n]...)
		b = b[n:]
	}
	return append(out, 128)
}

// lzwEarly encodes b with PDF's LZW (early change) using literal codes and
// clears only, which every decoder must accept.
func lzwEarly(b []byte) []byte {
	var out []byte
	var acc uint64
	var n uint
	put := func(code int, width uint) {
		acc = acc<<width | uint64(code)
		n += width
		for n >= 8 {
			out = append(out, byte(acc>>(n-8)))
			n -= 8
		}
	}
	put(256, 9)
	next, width := 258, uint(9)
	first := true
	for _, c := range b {
		put(int(c), width)
		if !first {
			next++ // the decoder adds an entry for every code after the first
			if next+1 >= 1<<width {
				width++
			}
		}
		first = false
		if next >= 4000 {
			put(256, width)
			next, width, first = 258, 9, true
		}
	}
	put(257, width)
	if n > 0 {
		out = append(out, byte(acc<<(8-n)))
	}
	return out
}

func ascii85Of(b []byte) string {
	var buf bytes.Buffer
	enc := ascii85.NewEncoder(&buf)
	enc.Write(b)
	enc.Close()
	return buf.String()
}

// TestRandomCarvesNothing: encrypted attachments are random bytes, and
// nothing must be invented out of them.
func TestRandomCarvesNothing(t *testing.T) {
	n := 64
	if testing.Short() {
		n = 8
	}
	buf := make([]byte, 1<<20)
	for i := range n {
		rand.Read(buf)
		if parts := Carve(buf, Limits{}); len(parts) != 0 {
			t.Fatalf("seed %d: carved %d parts from random bytes, first %q", i, len(parts), parts[0].Where)
		}
	}
}

// TestMagicThenRandom: a recognised signature followed by random bytes must
// not panic, hang, or exceed the limits.
func TestMagicThenRandom(t *testing.T) {
	magics := []string{"%PDF-1.7\n1 0 obj <<", "<svg ", "ID3\x03\x00\x00\x00\x00\x10\x00", "ID3\x04\x00\x80\x7f\x7f\x7f\x7f",
		"\x00\x00\x00\x18ftypisom", "fLaC", "\x1a\x45\xdf\xa3", "PK\x03\x04", "\xff\xd8\xff\xe0\x00\x10",
		"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR", "GIF89a", "RIFF\xff\xff\xff\x00WEBPVP8L"}
	buf := make([]byte, 1<<16)
	for _, m := range magics {
		for range 16 {
			rand.Read(buf)
			in := append([]byte(m), buf...)
			checkLimits(t, in, Limits{MaxBytes: 1 << 20})
		}
	}
}

func checkLimits(t testing.TB, in []byte, lim Limits) []Part {
	t.Helper()
	parts := carveNoRecover(in, lim)
	maxParts, maxBytes := lim.MaxParts, lim.MaxBytes
	if maxParts == 0 {
		maxParts = defaultMaxParts
	}
	if maxBytes == 0 {
		maxBytes = defaultMaxBytes
	}
	if len(parts) > maxParts {
		t.Fatalf("%d parts, limit %d", len(parts), maxParts)
	}
	total := int64(0)
	for _, p := range parts {
		total += int64(len(p.Data))
		if len(p.Data) == 0 {
			t.Fatalf("empty part %q", p.Where)
		}
	}
	if total > maxBytes {
		t.Fatalf("%d bytes carved, limit %d", total, maxBytes)
	}
	return parts
}

// TestTruncated: every prefix of every container carves without panicking,
// never yields a part that differs from the complete file's, and finds
// the embedded files that are entirely present.
func TestTruncated(t *testing.T) {
	for _, tc := range cases(t) {
		full := Carve(tc.in, Limits{})
		byWhere := make(map[string][]byte)
		for _, p := range full {
			byWhere[p.Where] = p.Data
		}
		step := max(1, len(tc.in)/300)
		for l := 0; l < len(tc.in); l += step {
			parts := checkLimits(t, tc.in[:l], Limits{})
			for _, p := range parts {
				if strings.Contains(p.Where, " > ") || strings.Contains(p.Where, "after the end") || strings.Contains(p.Where, "after its end") || strings.Contains(p.Where, "at offset") {
					continue // what follows an image changes with the cut
				}
				w, ok := byWhere[p.Where]
				if !ok || !bytes.Equal(w, p.Data) {
					t.Fatalf("%s cut at %d/%d: part %q (%d bytes) is not the complete file's", tc.name, l, len(tc.in), p.Where, len(p.Data))
				}
			}
			// A stored embedded file that ends well before the cut is found
			// (but a zip after junk is only recognised by its directory).
			for _, w := range tc.want {
				if strings.Contains(tc.name, "junk") {
					break
				}
				i := bytes.Index(tc.in, w.data)
				if i < 0 || strings.Contains(w.where, " > ") || strings.Contains(tc.name, "+") || strings.Contains(w.where, "the ") || i+len(w.data)+64 > l {
					continue
				}
				if !hasPart(parts, w) {
					t.Errorf("%s cut at %d/%d: %q (at %d..%d) not found", tc.name, l, len(tc.in), w.where, i, i+len(w.data))
				}
			}
		}
	}
}

func hasPart(parts []Part, w want) bool {
	for _, p := range parts {
		if strings.Contains(p.Where, w.where) && bytes.Equal(p.Data, w.data) {
			return true
		}
	}
	return false
}

// deflateZeros is a deflate stream of n zero bytes, written directly as a
// fixed-Huffman block of 258-byte copies (13 bits each): compressing
// hundreds of megabytes would take the race-enabled test half a minute.
func deflateZeros(t testing.TB, n int) []byte {
	t.Helper()
	var out []byte
	var acc uint64
	var nb uint
	bits := func(v uint64, k uint) { // LSB first
		acc |= v << nb
		nb += k
		for nb >= 8 {
			out = append(out, byte(acc))
			acc >>= 8
			nb -= 8
		}
	}
	code := func(c uint64, k uint) { // Huffman codes go MSB first
		var r uint64
		for i := uint(0); i < k; i++ {
			r = r<<1 | (c>>i)&1
		}
		bits(r, k)
	}
	bits(1, 1) // BFINAL
	bits(1, 2) // fixed Huffman
	code(0x30, 8)
	n--
	for ; n >= 258; n -= 258 {
		code(0xc5, 8) // length 258
		code(0, 5)    // distance 1
	}
	for ; n > 0; n-- {
		code(0x30, 8)
	}
	code(0, 7) // end of block
	if nb > 0 {
		out = append(out, byte(acc))
	}
	return out
}

func TestDeflateZeros(t *testing.T) {
	for _, n := range []int{1, 258, 259, 10000} {
		got, err := io.ReadAll(flate.NewReader(bytes.NewReader(deflateZeros(t, n))))
		if err != nil || len(got) != n || !isPadding(append(got, 0)) {
			t.Fatalf("deflateZeros(%d): %d bytes, %v", n, len(got), err)
		}
	}
}

// rawZip writes a zip of deflated entries whose compressed bytes are given,
// with sizes in the local headers and a central directory.
func rawZip(entries [][2][]byte, usize uint32) []byte {
	var out, cd []byte
	for _, e := range entries {
		name, comp := e[0], e[1]
		off := len(out)
		h := []byte("PK\x03\x04")
		h = binary.LittleEndian.AppendUint16(h, 20)
		h = binary.LittleEndian.AppendUint16(h, 0)
		h = binary.LittleEndian.AppendUint16(h, 8)
		h = binary.LittleEndian.AppendUint32(h, 0)
		h = binary.LittleEndian.AppendUint32(h, 0) // crc
		h = binary.LittleEndian.AppendUint32(h, uint32(len(comp)))
		h = binary.LittleEndian.AppendUint32(h, usize)
		h = binary.LittleEndian.AppendUint16(h, uint16(len(name)))
		h = binary.LittleEndian.AppendUint16(h, 0)
		out = append(append(append(out, h...), name...), comp...)
		c := []byte("PK\x01\x02")
		c = binary.LittleEndian.AppendUint16(c, 20)
		c = append(c, h[4:30]...)
		c = append(c, make([]byte, 12)...) // comment len, disk, attrs
		c = binary.LittleEndian.AppendUint32(c, uint32(off))
		cd = append(append(cd, c...), name...)
	}
	cdOff := len(out)
	out = append(out, cd...)
	e := []byte("PK\x05\x06\x00\x00\x00\x00")
	e = binary.LittleEndian.AppendUint16(e, uint16(len(entries)))
	e = binary.LittleEndian.AppendUint16(e, uint16(len(entries)))
	e = binary.LittleEndian.AppendUint32(e, uint32(len(cd)))
	e = binary.LittleEndian.AppendUint32(e, uint32(cdOff))
	return append(append(out, e...), 0, 0)
}

func TestZipBomb(t *testing.T) {
	// One entry inflating to 256 MiB.
	one := deflateZeros(t, 256<<20)
	// Many entries inflating to 16 MiB each, together 1 GiB.
	sixteen := deflateZeros(t, 16<<20)
	var many [][2][]byte
	for i := range 64 {
		many = append(many, [2][]byte{[]byte(fmt.Sprintf("%d.bin", i)), sixteen})
	}
	bombs := map[string][]byte{
		"one entry":   rawZip([][2][]byte{{[]byte("zeros"), one}}, 256<<20),
		"many":        rawZip(many, 16<<20),
		"lying sizes": rawZip(many, 100),
	}
	limits := []Limits{{}, {MaxBytes: 1 << 20}}
	if raceOn {
		limits = []Limits{{MaxBytes: 20 << 20}, {MaxBytes: 1 << 20}}
	}
	for name, z := range bombs {
		for _, lim := range limits {
			parts := checkLimits(t, z, lim)
			// Nothing but whole entries: up to 4 of 16 MiB fit in 64 MiB.
			for _, p := range parts {
				if len(p.Data) != 16<<20 {
					t.Errorf("%s: part %q of %d bytes", name, p.Where, len(p.Data))
				}
			}
		}
	}
	// A nested bomb is bounded by the same budget.
	nested := zipOf(t, zipFile{"inner.zip", bombs["many"], 0})
	checkLimits(t, nested, limits[0])

	// Without a central directory nor sizes (data descriptors), only the
	// budget stops the inflation.
	lim := Limits{}
	if raceOn {
		lim.MaxBytes = 4 << 20
	}
	for _, comp := range [][]byte{one, sixteen} {
		h := []byte("PK\x03\x04\x14\x00\x08\x00\x08\x00")
		h = append(h, make([]byte, 16)...)
		h = append(h, 4, 0, 0, 0)
		z := append(append(h, "bomb"...), comp...)
		z = append(z, "PK\x07\x08"...)
		z = append(z, make([]byte, 12)...)
		z = append(z, z...) // twice: the budget is spent after the first
		parts := checkLimits(t, z, lim)
		if len(comp) == len(one) && len(parts) != 0 {
			t.Errorf("%d parts out of a 256 MiB entry", len(parts))
		}
	}
}

// zlibZeros is a zlib stream of n zero bytes.
func zlibZeros(t testing.TB, n int) []byte {
	b := append([]byte{0x78, 0x01}, deflateZeros(t, n)...)
	return binary.BigEndian.AppendUint32(b, uint32(n%65521)<<16|1) // Adler-32 of zeros
}

// TestInflationCharged: what is inflated and thrown away (not a picture)
// is charged too, and a compressed frame that is not a picture is only
// inflated as far as it takes to see so: a file of many small bombs
// inflates a few kilobytes of each.
func TestInflationCharged(t *testing.T) {
	bomb := zlibZeros(t, 2<<20)
	var frames []byte
	for range 100 {
		body := append(syncsafeBytes(2<<20), bomb...)
		frames = append(frames, id3Frame(4, "APIC", body, 0x0009)...)
	}
	c := newCarver(Limits{MaxBytes: 16 << 20})
	c.carve(id3Tag(4, 0, frames), 1, "")
	if spent := c.maxBytes - c.budget; spent <= 0 || spent > 100*id3SniffBytes || len(c.parts) != 0 {
		t.Errorf("spent %d, %d parts", spent, len(c.parts))
	}
}

// A compressed cover-art frame of zeros before the real cover art no
// longer spends the budget first.
func TestID3PaddingFrameBeforeCover(t *testing.T) {
	jpg := jpegOf(t, 1)
	pad := zlibZeros(t, 32<<20-1024)
	frames := id3Frame(4, "APIC", append(syncsafeBytes(32<<20-1024), pad...), 0x0009)
	frames = append(frames, id3Frame(4, "APIC", apicBody("image/jpeg", 0, []byte("cover"), jpg), 0)...)
	res := Search(id3Tag(4, 0, frames), Limits{MaxBytes: 32 << 20})
	if len(res.Parts) != 1 || !bytes.Equal(res.Parts[0].Data, jpg) || res.Incomplete != "" {
		t.Fatalf("%d parts, incomplete %q; want the cover", len(res.Parts), res.Incomplete)
	}
}

func TestLimits(t *testing.T) {
	jpg := jpegOf(t, 1)
	var files []zipFile
	for i := range 40 {
		files = append(files, zipFile{fmt.Sprintf("%d.jpg", i), jpg, 0})
	}
	z := zipOf(t, files...)
	if got := len(Carve(z, Limits{})); got != defaultMaxParts {
		t.Errorf("%d parts by default, want %d", got, defaultMaxParts)
	}
	if got := len(Carve(z, Limits{MaxParts: 3})); got != 3 {
		t.Errorf("%d parts, want 3", got)
	}
	if got := len(Carve(z, Limits{MaxParts: 100, MaxBytes: int64(5*len(jpg) + 1)})); got != 5 {
		t.Errorf("%d parts within 5 pictures' bytes, want 5", got)
	}
	// Depth: a zip in a zip in a zip.
	inner := zipOf(t, zipFile{"pic.jpg", jpg, 8})
	mid := zipOf(t, zipFile{"inner.zip", inner, 8})
	outer := zipOf(t, zipFile{"mid.zip", mid, 8})
	deep := "zip entry mid.zip > zip entry inner.zip > zip entry pic.jpg"
	if hasPart(Carve(outer, Limits{}), want{deep, jpg}) {
		t.Errorf("depth 3 carved with the default depth of 2")
	}
	if !hasPart(Carve(outer, Limits{MaxDepth: 3}), want{deep, jpg}) {
		t.Errorf("depth 3 not carved with MaxDepth 3")
	}
}

// TestOnlyPlausibleParts: source files in a zip, fonts attached to a film,
// fonts in an SVG are not parts; they must not use up MaxParts before the
// picture.
func TestOnlyPlausibleParts(t *testing.T) {
	jpg, pngb := jpegOf(t, 1), pngOf(t, 2)
	var files []zipFile
	for i := range 40 {
		files = append(files, zipFile{fmt.Sprintf("src/%d.go", i), []byte(fmt.Sprintf("package x // %d\n", i)), 8})
	}
	files = append(files, zipFile{"late.jpg", jpg, 8})
	files = append(files, zipFile{"junk-then.png", append([]byte("some header bytes "), pngb...), 8})
	parts := Carve(zipOf(t, files...), Limits{})
	checkWanted(t, parts, carveCase{exact: true, want: []want{{"zip entry late.jpg", jpg}, {"zip entry junk-then.png > png at offset 18", pngb}}})

	fonts := map[string][]byte{"cover.jpg": jpg}
	var names []string
	for i := range 20 {
		n := fmt.Sprintf("font%d.ttf", i)
		fonts[n] = append([]byte("\x00\x01\x00\x00\x00\x0f\x00\x80"), bytes.Repeat([]byte{byte(i)}, 500)...)
		names = append(names, n)
	}
	parts = Carve(mkvWith(false, fonts, append(names, "cover.jpg")...), Limits{})
	checkWanted(t, parts, carveCase{exact: true, want: []want{{"mkv attachment cover.jpg", jpg}}})

	svg := `<svg><style>@font-face { src: url(data:font/woff2;base64,d09GMgABAAAAAA==) }</style><image href="data:image/jpeg;base64,` + b64(jpg) + `"/></svg>`
	parts = Carve([]byte(svg), Limits{})
	checkWanted(t, parts, carveCase{exact: true, want: []want{{"svg data uri 2", jpg}}})
}

// TestNeverPanics feeds mutated containers to Carve.
func TestNeverPanics(t *testing.T) {
	cs := cases(t)
	buf := make([]byte, 8)
	for _, tc := range cs {
		for i := range 200 {
			in := bytes.Clone(tc.in)
			rand.Read(buf)
			for k := 0; k < 1+i%8; k++ {
				rand.Read(buf)
				pos := int(binary.LittleEndian.Uint32(buf)) % max(1, len(in))
				if len(in) > 0 {
					in[pos] = buf[4]
				}
			}
			checkLimits(t, in, Limits{MaxBytes: 8 << 20})
		}
	}
}
