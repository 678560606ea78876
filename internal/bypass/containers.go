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
	{"zip holding the picture", "application/zip", zipWithJPEG},
	{"mp3 whose id3 cover art is the picture", "audio/mpeg", mp3WithCover},
	{"decoy jpeg with the picture appended after its end", "image/jpeg", func(img *image.NRGBA) []byte {
		b := img.Bounds()
		decoy := testimg.JPEG(testimg.Photo(997, b.Dx(), b.Dy()), 90)
		return append(decoy, testimg.PNG(img)...)
	}},
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
