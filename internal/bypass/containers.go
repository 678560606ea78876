package bypass

import (
	"archive/zip"
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"image"

	"github.com/mediaguard/mediaguard/internal/testimg"
)

// Containers hide the picture, byte for byte, inside a file a client or
// player shows it from.
var Containers = []Form{
	{"pdf embedding the jpeg", "application/pdf", pdfWithJPEG},
	{"svg with the picture as a data: uri", "image/svg+xml", svgWithDataURI},
	{"svg whose root element has a namespace prefix (s:svg)", "image/svg+xml", svgPrefixedRoot},
	{"svg opening with a processing instruction other than <?xml", "image/svg+xml", func(img *image.NRGBA) []byte {
		return append([]byte("<?foo?>\n"), svgBody(img)...)
	}},
	{"svg opening with 5,000 spaces", "image/svg+xml", func(img *image.NRGBA) []byte {
		return append(bytes.Repeat([]byte(" "), 5000), svgBody(img)...)
	}},
	{"zip holding the picture", "application/zip", zipWithJPEG},
	{"mp3 whose id3 cover art is the picture", "audio/mpeg", mp3WithCover},
	{"decoy jpeg with the picture appended after its end", "image/jpeg", func(img *image.NRGBA) []byte {
		b := img.Bounds()
		decoy := testimg.JPEG(testimg.Photo(997, b.Dx(), b.Dy()), 90)
		return append(decoy, testimg.PNG(img)...)
	}},
	{"zip whose first entry inflates to just under 32 MiB of zeros, then the picture", "application/zip", zipAfterZeroPadding},
	{"xlsx whose sheet xml inflates to 40 MB, the picture in xl/media", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xlsxWithPicture},
	{"zip whose entry is 40 MiB of zeros then a zip holding the picture", "application/zip", func(img *image.NRGBA) []byte {
		inner := zipOf([2]any{"photo.jpg", testimg.JPEG(img, 90)})
		return zipOf([2]any{"inner.bin", append(make([]byte, 40<<20), inner...)})
	}},
	{"zip in a zip in a zip holding the picture (3 levels)", "application/zip", func(img *image.NRGBA) []byte { return nestedZips(img, 3) }},
	{"zip nested 5 levels deep holding the picture", "application/zip", func(img *image.NRGBA) []byte { return nestedZips(img, 5) }},
	{"zip of 12 larger decoy photos and the picture re-encoded", "application/zip", zipBehindDecoys},
	{"pdf of 12 larger decoy photos and the picture re-encoded", "application/pdf", pdfBehindDecoys},
}

// zipOf writes a zip of deflated entries, in order.
func zipOf(files ...[2]any) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, f := range files {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: f[0].(string), Method: zip.Deflate})
		if err != nil {
			panic(err)
		}
		w.Write(f[1].([]byte))
	}
	if err := zw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// zipAfterZeroPadding is a ~35 KB zip whose first entry inflates to just
// under 32 MiB of zeros, the proxy's least carving budget: inflating
// entries in order spent it all before the picture was reached.
func zipAfterZeroPadding(img *image.NRGBA) []byte {
	return zipOf(
		[2]any{"padding.bin", make([]byte, 32<<20-4<<10)},
		[2]any{"photo.jpg", testimg.JPEG(img, 90)},
	)
}

// xlsxWithPicture is shaped as a spreadsheet: every part but the picture
// is XML, and the sheet inflates to 40 MB, more than the proxy's least
// carving budget (a 137 KB .xlsx like it was refused as undecodable).
func xlsxWithPicture(img *image.NRGBA) []byte {
	sheet := []byte(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" + `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>`)
	row := []byte(`<row r="1"><c r="A1" t="n"><v>12345</v></c><c r="B1" t="s"><v>7</v></c></row>`)
	for len(sheet) < 40<<20 {
		sheet = append(sheet, row...)
	}
	sheet = append(sheet, "</sheetData></worksheet>"...)
	return zipOf(
		[2]any{"[Content_Types].xml", []byte(`<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="png" ContentType="image/png"/></Types>`)},
		[2]any{"xl/worksheets/sheet1.xml", sheet},
		[2]any{"xl/media/image1.png", testimg.PNG(img)},
	)
}

// nestedZips holds the picture in a zip inside a zip..., levels deep.
func nestedZips(img *image.NRGBA, levels int) []byte {
	z := zipOf([2]any{"photo.jpg", testimg.JPEG(img, 90)})
	for i := 2; i <= levels; i++ {
		z = zipOf([2]any{fmt.Sprintf("level%d.zip", i), z})
	}
	return z
}

// decoys are 12 photos twice the picture's size, so that a bound on how
// many embedded pictures are decoded, largest first, leaves the picture
// out. The picture itself is re-encoded at another quality, so that only
// its PDQ hash, not its exact digests, can match.
func decoys(img *image.NRGBA) [][]byte {
	b := img.Bounds()
	var out [][]byte
	for i := range 12 {
		out = append(out, testimg.JPEG(testimg.Photo(900+i, 2*b.Dx(), 2*b.Dy()), 92))
	}
	return out
}

func zipBehindDecoys(img *image.NRGBA) []byte {
	var files [][2]any
	for i, d := range decoys(img) {
		files = append(files, [2]any{fmt.Sprintf("decoy%02d.jpg", i), d})
	}
	files = append(files, [2]any{"photo.jpg", testimg.JPEG(img, 71)})
	return zipOf(files...)
}

// pdfBehindDecoys is a PDF of one page per picture, the decoys first.
func pdfBehindDecoys(img *image.NRGBA) []byte {
	pics := append(decoys(img), testimg.JPEG(img, 71))
	var b bytes.Buffer
	var offs []int
	obj := func(body string, stream []byte) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s", len(offs), body)
		if stream != nil {
			b.WriteString("\nstream\n")
			b.Write(stream)
			b.WriteString("\nendstream")
		}
		b.WriteString("\nendobj\n")
	}
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	n := len(pics)
	obj("<< /Type /Catalog /Pages 2 0 R >>", nil)
	kids := ""
	for i := range n {
		kids += fmt.Sprintf("%d 0 R ", 3+3*i)
	}
	obj(fmt.Sprintf("<< /Type /Pages /Kids [%s] /Count %d >>", kids, n), nil)
	for i, j := range pics {
		w, h := 480, 360
		if i == n-1 {
			w, h = img.Bounds().Dx(), img.Bounds().Dy()
		}
		obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 %d 0 R >> >> /Contents %d 0 R >>", w, h, 4+3*i, 5+3*i), nil)
		obj(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length %d >>", w, h, len(j)), j)
		content := fmt.Sprintf("q %d 0 0 %d 0 0 cm /Im1 Do Q", w, h)
		obj(fmt.Sprintf("<< /Length %d >>", len(content)), []byte(content))
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

// pdfWithJPEG is a one-page PDF drawing the JPEG as an image XObject
// (/DCTDecode: the stream is the JPEG file itself).
func pdfWithJPEG(img *image.NRGBA) []byte {
	j := testimg.JPEG(img, 90)
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	var b bytes.Buffer
	var offs []int
	obj := func(body string, stream []byte) {
		offs = append(offs, b.Len())
		fmt.Fprintf(&b, "%d 0 obj\n%s", len(offs), body)
		if stream != nil {
			b.WriteString("\nstream\n")
			b.Write(stream)
			b.WriteString("\nendstream")
		}
		b.WriteString("\nendobj\n")
	}
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	obj("<< /Type /Catalog /Pages 2 0 R >>", nil)
	obj("<< /Type /Pages /Kids [3 0 R] /Count 1 >>", nil)
	obj(fmt.Sprintf("<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>", w, h), nil)
	obj(fmt.Sprintf("<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceRGB /BitsPerComponent 8 /Filter /DCTDecode /Length %d >>", w, h, len(j)), j)
	content := fmt.Sprintf("q %d 0 0 %d 0 0 cm /Im1 Do Q", w, h)
	obj(fmt.Sprintf("<< /Length %d >>", len(content)), []byte(content))
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(offs)+1)
	for _, o := range offs {
		fmt.Fprintf(&b, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(offs)+1, xref)
	return b.Bytes()
}

func svgWithDataURI(img *image.NRGBA) []byte {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="%d" height="%d">
  <image width="%d" height="%d" xlink:href="data:image/jpeg;base64,%s"/>
</svg>
`, w, h, w, h, base64.StdEncoding.EncodeToString(testimg.JPEG(img, 90))))
}

// svgBody is an svg element drawing the picture from a data: URI, with no
// XML declaration before it.
func svgBody(img *image.NRGBA) []byte {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	return []byte(fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d"><image width="%d" height="%d" href="data:image/jpeg;base64,%s"/></svg>
`, w, h, w, h, base64.StdEncoding.EncodeToString(testimg.JPEG(img, 90))))
}

// svgPrefixedRoot names the SVG namespace by a prefix: the root element is
// s:svg, which browsers show as any svg.
func svgPrefixedRoot(img *image.NRGBA) []byte {
	w, h := img.Bounds().Dx(), img.Bounds().Dy()
	return []byte(fmt.Sprintf(`<s:svg xmlns:s="http://www.w3.org/2000/svg" width="%d" height="%d"><s:image width="%d" height="%d" href="data:image/jpeg;base64,%s"/></s:svg>
`, w, h, w, h, base64.StdEncoding.EncodeToString(testimg.JPEG(img, 90))))
}

func zipWithJPEG(img *image.NRGBA) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	f, _ := zw.Create("holiday/photo.jpg")
	f.Write(testimg.JPEG(img, 90))
	n, _ := zw.Create("notes.txt")
	n.Write([]byte("nothing to see here\n"))
	zw.Close()
	return b.Bytes()
}

// mp3WithCover is an ID3v2.3 tag with an APIC frame (front cover) and a
// few MPEG audio frame headers after it.
func mp3WithCover(img *image.NRGBA) []byte {
	pic := testimg.JPEG(img, 90)
	var apic bytes.Buffer
	apic.WriteByte(0) // ISO-8859-1
	apic.WriteString("image/jpeg\x00")
	apic.WriteByte(3) // front cover
	apic.WriteString("cover\x00")
	apic.Write(pic)
	frame := []byte("APIC")
	frame = binary.BigEndian.AppendUint32(frame, uint32(apic.Len()))
	frame = append(frame, 0, 0)
	frame = append(frame, apic.Bytes()...)
	size := len(frame)
	tag := []byte{'I', 'D', '3', 3, 0, 0, byte(size >> 21 & 0x7f), byte(size >> 14 & 0x7f), byte(size >> 7 & 0x7f), byte(size & 0x7f)}
	tag = append(tag, frame...)
	// MPEG-1 Layer III, 128 kbit/s, 44.1 kHz frames of silence.
	for range 20 {
		f := make([]byte, 417)
		f[0], f[1], f[2], f[3] = 0xff, 0xfb, 0x90, 0x64
		tag = append(tag, f...)
	}
	return tag
}
