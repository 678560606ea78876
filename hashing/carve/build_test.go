package carve

import (
	"archive/zip"
	"bytes"
	"compress/zlib"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"strings"
	"testing"
)

// Builders of the test inputs: pictures from the standard encoders and
// containers assembled by hand, so that no binary is committed.

// photo is a deterministic picture with some structure.
func photo(seed uint64, w, h int) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	a, b := r.IntN(7)+1, r.IntN(5)+1
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{byte(x * a), byte(y * b), byte((x + y) * 3), 255})
		}
	}
	return img
}

func jpegOf(t testing.TB, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, photo(seed, 48, 32), &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func pngOf(t testing.TB, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, photo(seed, 40, 30)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gifOf(t testing.TB, seed uint64) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gif.Encode(&buf, photo(seed, 30, 20), nil); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// webpOf is a RIFF/WEBP file with a VP8L chunk; carving never decodes it.
func webpOf(seed uint64) []byte {
	payload := make([]byte, 50)
	r := rand.New(rand.NewPCG(seed, 2))
	for i := range payload {
		payload[i] = byte(r.Uint32())
	}
	payload[0] = 0x2f
	var b []byte
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(4+8+len(payload)))
	b = append(b, "WEBPVP8L"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func zlibOf(b []byte) []byte {
	var buf bytes.Buffer
	w := zlib.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// pdfBuilder assembles a PDF object by object, with a valid xref.
type pdfBuilder struct {
	buf     bytes.Buffer
	offsets []int
}

func newPDF() *pdfBuilder {
	p := &pdfBuilder{}
	p.buf.WriteString("%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
	return p
}

// obj writes object n with the given body.
func (p *pdfBuilder) obj(n int, body string) {
	for len(p.offsets) <= n {
		p.offsets = append(p.offsets, 0)
	}
	p.offsets[n] = p.buf.Len()
	fmt.Fprintf(&p.buf, "%d 0 obj\n%s\nendobj\n", n, body)
}

// stream writes a stream object; length "" means a direct /Length.
func (p *pdfBuilder) stream(n int, dict string, data []byte, length string) {
	if length == "" {
		length = fmt.Sprint(len(data))
	}
	p.obj(n, fmt.Sprintf("<< %s /Length %s >>\nstream\r\n%s\nendstream", dict, length, data))
}

func (p *pdfBuilder) bytes() []byte {
	xref := p.buf.Len()
	fmt.Fprintf(&p.buf, "xref\n0 %d\n0000000000 65535 f \n", len(p.offsets))
	for _, o := range p.offsets[1:] {
		fmt.Fprintf(&p.buf, "%010d 00000 n \n", o)
	}
	fmt.Fprintf(&p.buf, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(p.offsets), xref)
	return p.buf.Bytes()
}

func (p *pdfBuilder) catalog() {
	p.obj(1, "<< /Type /Catalog /Pages 2 0 R >>")
	p.obj(2, "<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
	p.obj(3, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Resources << /XObject << /Im1 10 0 R >> >> /Contents 4 0 R >>")
	p.stream(4, "/Filter /FlateDecode", zlibOf([]byte("q 200 0 0 200 0 0 cm /Im1 Do Q")), "")
}

// rawRGB returns the pixels of img as PDF DeviceRGB samples.
func rawRGB(img *image.RGBA) []byte {
	var out []byte
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := img.RGBAAt(x, y)
			out = append(out, c.R, c.G, c.B)
		}
	}
	return out
}

// id3Frame builds a v2.3/v2.4 frame.
func id3Frame(ver int, id string, body []byte, flags uint16) []byte {
	var b []byte
	b = append(b, id...)
	if ver == 4 {
		b = append(b, syncsafeBytes(len(body))...)
	} else {
		b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	return append(b, body...)
}

func syncsafeBytes(n int) []byte {
	return []byte{byte(n >> 21 & 0x7f), byte(n >> 14 & 0x7f), byte(n >> 7 & 0x7f), byte(n & 0x7f)}
}

func id3Tag(ver int, flags byte, body []byte) []byte {
	b := []byte{'I', 'D', '3', byte(ver), 0, flags}
	b = append(b, syncsafeBytes(len(body))...)
	return append(b, body...)
}

func apicBody(mime string, enc byte, desc []byte, pic []byte) []byte {
	b := []byte{enc}
	b = append(b, mime...)
	b = append(b, 0, 3) // front cover
	b = append(b, desc...)
	if enc == 1 || enc == 2 {
		b = append(b, 0, 0)
	} else {
		b = append(b, 0)
	}
	return append(b, pic...)
}

// unsyncBytes applies ID3 unsynchronisation.
func unsyncBytes(b []byte) []byte {
	var out []byte
	for i, c := range b {
		out = append(out, c)
		if c == 0xff && (i+1 == len(b) || b[i+1]&0xe0 == 0xe0 || b[i+1] == 0) {
			out = append(out, 0)
		}
	}
	return out
}

func mp3Frames() []byte {
	// A few MPEG-1 Layer III frame headers with silence.
	var b []byte
	for range 3 {
		f := make([]byte, 417)
		copy(f, []byte{0xff, 0xfb, 0x90, 0x64})
		b = append(b, f...)
	}
	return b
}

func box(typ string, children ...[]byte) []byte {
	var body []byte
	for _, c := range children {
		body = append(body, c...)
	}
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = append(b, typ...)
	return append(b, body...)
}

func mp4With(brands string, covers ...[]byte) []byte {
	ftyp := box("ftyp", []byte(brands))
	var datas [][]byte
	for _, c := range covers {
		typ := uint32(13)
		if bytes.HasPrefix(c, sigPNG) {
			typ = 14
		}
		datas = append(datas, box("data", binary.BigEndian.AppendUint32(nil, typ), make([]byte, 4), c))
	}
	hdlr := box("hdlr", make([]byte, 8), []byte("mdirappl"), make([]byte, 9))
	ilst := box("ilst", box("\xa9nam", box("data", []byte{0, 0, 0, 1, 0, 0, 0, 0}, []byte("title"))), box("covr", datas...))
	meta := box("meta", make([]byte, 4), hdlr, ilst)
	moov := box("moov", box("mvhd", make([]byte, 100)), box("udta", meta))
	return append(append(ftyp, box("mdat", make([]byte, 64))...), moov...)
}

func flacWith(pic []byte, mime string) []byte {
	b := []byte("fLaC")
	b = append(b, 0, 0, 0, 34)
	b = append(b, make([]byte, 34)...) // STREAMINFO
	var p []byte
	p = binary.BigEndian.AppendUint32(p, 3)
	p = binary.BigEndian.AppendUint32(p, uint32(len(mime)))
	p = append(p, mime...)
	p = binary.BigEndian.AppendUint32(p, 5)
	p = append(p, "cover"...)
	p = append(p, make([]byte, 16)...)
	p = binary.BigEndian.AppendUint32(p, uint32(len(pic)))
	p = append(p, pic...)
	b = append(b, 0x80|6, byte(len(p)>>16), byte(len(p)>>8), byte(len(p)))
	b = append(b, p...)
	return append(b, 0xff, 0xf8, 0x69, 0x08, 0, 0) // a frame header
}

// ebml encodes an element with an 8-byte size (or unknown size).
func ebml(id uint32, unknown bool, children ...[]byte) []byte {
	var body []byte
	for _, c := range children {
		body = append(body, c...)
	}
	var b []byte
	switch {
	case id > 0xffffff:
		b = binary.BigEndian.AppendUint32(b, id)
	case id > 0xffff:
		b = append(b, byte(id>>16), byte(id>>8), byte(id))
	case id > 0xff:
		b = binary.BigEndian.AppendUint16(b, uint16(id))
	default:
		b = append(b, byte(id))
	}
	if unknown {
		b = append(b, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
	} else {
		b = append(b, 0x01)
		b = append(b, binary.BigEndian.AppendUint64(nil, uint64(len(body)))[1:]...)
	}
	return append(b, body...)
}

func mkvWith(seekHead bool, files map[string][]byte, names ...string) []byte {
	header := ebml(ebmlHeader, false, ebml(0x4282, false, []byte("matroska")))
	var atts [][]byte
	for _, n := range names {
		mime := "image/jpeg"
		if strings.HasSuffix(n, ".png") {
			mime = "image/png"
		}
		atts = append(atts, ebml(mkvAttached, false,
			ebml(mkvFileName, false, []byte(n)),
			ebml(mkvFileMime, false, []byte(mime)),
			ebml(mkvFileData, false, files[n]),
			ebml(0x46ae, false, []byte{1, 2, 3, 4})))
	}
	info := ebml(0x1549a966, false, ebml(0x2ad7b1, false, []byte{0x0f, 0x42, 0x40}))
	// A live-stream cluster of unknown size with a few SimpleBlocks.
	cluster := ebml(mkvCluster, true, ebml(0xe7, false, []byte{0}),
		ebml(0xa3, false, make([]byte, 300)), ebml(0xa3, false, bytes.Repeat([]byte{0x1a, 0x45}, 100)))
	attachments := ebml(mkvAttachment, false, atts...)
	var seg []byte
	if seekHead {
		// SeekHead first, pointing at Attachments placed after a Cluster
		// of unknown size that ends the walk (a broken child).
		pos := 0 // filled below
		build := func(pos int) []byte {
			seek := ebml(0x4dbb, false, ebml(0x53ab, false, []byte{0x19, 0x41, 0xa4, 0x69}),
				ebml(0x53ac, false, binary.BigEndian.AppendUint32(nil, uint32(pos))))
			return ebml(mkvSeekHead, false, seek)
		}
		head := build(0)
		broken := ebml(mkvCluster, true, []byte{0x00, 0x00, 0x00}) // unreadable child
		pos = len(head) + len(info) + len(broken)
		seg = append(append(append(build(pos), info...), broken...), attachments...)
	} else {
		seg = append(append(info, cluster...), attachments...)
	}
	return append(header, ebml(mkvSegment, true, seg)...)
}

type zipFile struct {
	name   string
	data   []byte
	method uint16
}

func zipOf(t testing.TB, files ...zipFile) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	for _, f := range files {
		fw, err := w.CreateHeader(&zip.FileHeader{Name: f.name, Method: f.method})
		if err != nil {
			t.Fatal(err)
		}
		fw.Write(f.data)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// wrapLines breaks s every n characters, as encoders of long attributes do.
func wrapLines(s string, n int) string {
	var b strings.Builder
	for len(s) > n {
		b.WriteString(s[:n])
		b.WriteString("\n   ")
		s = s[n:]
	}
	b.WriteString(s)
	return b.String()
}
