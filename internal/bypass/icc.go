package bypass

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"math"

	"github.com/mediaguard/mediaguard/internal/testimg"
)

// invertingProfile is an RGB matrix/TRC ICC profile (ICC.1 v2) with sRGB's
// colorants whose tone curves run backwards: a colour-managed viewer shows
// a stored negative as the positive.
func invertingProfile() []byte {
	s15 := func(v float64) uint32 { return uint32(int32(math.Round(v * 65536))) }
	xyz := func(x, y, z float64) []byte {
		b := []byte("XYZ \x00\x00\x00\x00")
		for _, v := range []float64{x, y, z} {
			b = binary.BigEndian.AppendUint32(b, s15(v))
		}
		return b
	}
	curv := []byte("curv\x00\x00\x00\x00")
	curv = binary.BigEndian.AppendUint32(curv, 256)
	for i := range 256 {
		// Linear light of the inverted value, so the output encodes 1-x.
		x := 1 - float64(i)/255
		lin := x / 12.92
		if x > 0.04045 {
			lin = math.Pow((x+0.055)/1.055, 2.4)
		}
		curv = binary.BigEndian.AppendUint16(curv, uint16(math.Round(lin*65535)))
	}
	tags := []struct {
		sig  string
		data []byte
	}{
		{"wtpt", xyz(0.9642, 1.0, 0.8249)},
		{"rXYZ", xyz(0.4361, 0.2225, 0.0139)},
		{"gXYZ", xyz(0.3851, 0.7169, 0.0971)},
		{"bXYZ", xyz(0.1431, 0.0606, 0.7141)},
		{"rTRC", curv}, {"gTRC", curv}, {"bTRC", curv},
	}
	var body bytes.Buffer
	table := binary.BigEndian.AppendUint32(nil, uint32(len(tags)))
	dataStart := 128 + 4 + 12*len(tags)
	for _, t := range tags {
		off := dataStart + body.Len()
		table = append(table, t.sig...)
		table = binary.BigEndian.AppendUint32(table, uint32(off))
		table = binary.BigEndian.AppendUint32(table, uint32(len(t.data)))
		body.Write(t.data)
		for body.Len()%4 != 0 {
			body.WriteByte(0)
		}
	}
	size := dataStart + body.Len()
	h := make([]byte, 128)
	binary.BigEndian.PutUint32(h[0:], uint32(size))
	binary.BigEndian.PutUint32(h[8:], 0x02100000)
	copy(h[12:], "mntrRGB XYZ ")
	copy(h[36:], "acsp")
	binary.BigEndian.PutUint32(h[68:], s15(0.9642))
	binary.BigEndian.PutUint32(h[72:], s15(1.0))
	binary.BigEndian.PutUint32(h[76:], s15(0.8249))
	return append(append(h, table...), body.Bytes()...)
}

func negative(img *image.NRGBA) *image.NRGBA {
	out := image.NewNRGBA(img.Bounds())
	for i, v := range img.Pix {
		if i%4 == 3 {
			out.Pix[i] = v
		} else {
			out.Pix[i] = 255 - v
		}
	}
	return out
}

// jpegWithICC stores the negative with the inverting profile in APP2.
func jpegWithICC(img *image.NRGBA) []byte {
	j := testimg.JPEG(negative(img), 92)
	p := invertingProfile()
	seg := append([]byte("ICC_PROFILE\x00\x01\x01"), p...)
	app2 := []byte{0xff, 0xe2, byte((len(seg) + 2) >> 8), byte(len(seg) + 2)}
	out := append([]byte{}, j[:2]...)
	out = append(out, app2...)
	out = append(out, seg...)
	return append(out, j[2:]...)
}

// pngWithICC stores the negative with the inverting profile in iCCP.
func pngWithICC(img *image.NRGBA) []byte {
	p := testimg.PNG(negative(img))
	var z bytes.Buffer
	zw := zlib.NewWriter(&z)
	zw.Write(invertingProfile())
	zw.Close()
	data := append([]byte("icc\x00\x00"), z.Bytes()...)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	chunk = append(chunk, "iCCP"...)
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
	ihdrEnd := 8 + 8 + 13 + 4
	out := append([]byte{}, p[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, p[ihdrEnd:]...)
}

// pngChunks splits a PNG into its chunks (type, data).
func pngChunks(p []byte) (types []string, datas [][]byte) {
	for i := 8; i+12 <= len(p); {
		n := int(binary.BigEndian.Uint32(p[i:]))
		types = append(types, string(p[i+4:i+8]))
		datas = append(datas, p[i+8:i+8+n])
		i += 12 + n
	}
	return types, datas
}

func appendChunk(out []byte, typ string, data []byte) []byte {
	start := len(out)
	out = binary.BigEndian.AppendUint32(out, uint32(len(data)))
	out = append(out, typ...)
	out = append(out, data...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(out[start+4:]))
}

// apngBehindDecoy is an APNG whose default image (what viewers without
// APNG support, and Go's image/png, show) is a decoy, and whose only
// animation frame (what browsers show) is the picture.
func apngBehindDecoy(img *image.NRGBA) []byte {
	b := img.Bounds()
	decoy := testimg.PNG(testimg.Photo(998, b.Dx(), b.Dy()))
	dt, dd := pngChunks(decoy)
	pt, pd := pngChunks(testimg.PNG(img))
	out := []byte("\x89PNG\r\n\x1a\n")
	out = appendChunk(out, "IHDR", dd[0])
	out = appendChunk(out, "acTL", binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, 1), 0))
	for i, t := range dt {
		if t == "IDAT" {
			out = appendChunk(out, "IDAT", dd[i])
		}
	}
	fc := binary.BigEndian.AppendUint32(nil, 0)
	fc = binary.BigEndian.AppendUint32(fc, uint32(b.Dx()))
	fc = binary.BigEndian.AppendUint32(fc, uint32(b.Dy()))
	fc = binary.BigEndian.AppendUint32(fc, 0)
	fc = binary.BigEndian.AppendUint32(fc, 0)
	fc = append(fc, 0, 1, 0, 10, 0, 0) // delay 1/10 s, dispose none, blend source
	out = appendChunk(out, "fcTL", fc)
	seq := uint32(1)
	for i, t := range pt {
		if t == "IDAT" {
			out = appendChunk(out, "fdAT", append(binary.BigEndian.AppendUint32(nil, seq), pd[i]...))
			seq++
		}
	}
	return appendChunk(out, "IEND", nil)
}

// pngWithEXIFOrientation stores the pixels turned a quarter
// counter-clockwise with an eXIf chunk saying "rotate 90 clockwise".
func pngWithEXIFOrientation(img *image.NRGBA) []byte {
	p := testimg.PNG(rotateCCW(img))
	var tiff bytes.Buffer
	tiff.WriteString("II\x2a\x00")
	binary.Write(&tiff, binary.LittleEndian, uint32(8))
	binary.Write(&tiff, binary.LittleEndian, uint16(1))
	binary.Write(&tiff, binary.LittleEndian, [4]uint16{0x0112, 3, 1, 0})
	binary.Write(&tiff, binary.LittleEndian, [2]uint16{6, 0})
	binary.Write(&tiff, binary.LittleEndian, uint32(0))
	ihdrEnd := 8 + 8 + 13 + 4
	out := append([]byte{}, p[:ihdrEnd]...)
	out = appendChunk(out, "eXIf", tiff.Bytes())
	return append(out, p[ihdrEnd:]...)
}
