package icc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/jpeg"
	"image/png"
	"testing"
)

func invertingProfile() []byte { return matrixProfile(2, curvFunc(4096, invert(decode))) }

// app2 is one APP2 ICC_PROFILE segment.
func app2(seq, count int, chunk []byte) []byte {
	body := cat([]byte("ICC_PROFILE\x00"), []byte{byte(seq), byte(count)}, chunk)
	return cat([]byte{0xFF, 0xE2}, u16s(uint16(len(body)+2)), body)
}

// withSegments inserts segments right after a JPEG's SOI.
func withSegments(jpg []byte, segs ...[]byte) []byte {
	return cat(jpg[:2], cat(segs...), jpg[2:])
}

func encodeJPEG(t *testing.T, img image.Image) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestFromJPEG(t *testing.T) {
	prof := invertingProfile()
	third := len(prof) / 3
	c1, c2, c3 := prof[:third], prof[third:2*third], prof[2*third:]
	pic := photo(64, 48)
	jpg := encodeJPEG(t, opaque(mapNRGBA(pic, negative)))
	tests := []struct {
		name string
		data []byte
		want []byte
	}{
		{"chunks out of order", withSegments(jpg, app2(2, 3, c2), app2(1, 3, c1), app2(3, 3, c3)), prof},
		{"single chunk", withSegments(jpg, app2(1, 1, prof)), prof},
		{"fill bytes before markers", withSegments(jpg, []byte{0xFF, 0xFF}, app2(1, 2, c1), []byte{0xFF}, app2(2, 2, cat(c2, c3))), prof},
		{"no profile", jpg, nil},
		{"missing chunk", withSegments(jpg, app2(1, 3, c1), app2(3, 3, c3)), nil},
		{"duplicate chunk", withSegments(jpg, app2(1, 2, c1), app2(1, 2, c1), app2(2, 2, c2)), nil},
		{"counts disagree", withSegments(jpg, app2(1, 2, c1), app2(2, 3, cat(c2, c3))), nil},
		{"sequence number 0", withSegments(jpg, app2(0, 1, prof)), nil},
		{"truncated inside a chunk", withSegments(jpg, app2(1, 1, prof))[:200], nil},
		{"not a JPEG", prof, nil},
	}
	for _, tc := range tests {
		if got := FromJPEG(tc.data); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %d bytes, want %d", tc.name, len(got), len(tc.want))
		}
	}

	// The whole attack: a JPEG of the negative with its inverting profile.
	data := tests[0].data
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(FromJPEG(data))
	if err != nil {
		t.Fatal(err)
	}
	_, before := diff(t, slowNRGBA(img), opaque(pic))
	_, after := diff(t, p.ToSRGB(img), opaque(pic))
	// JPEG's own loss (4:2:0 chroma on a textured picture) is the floor.
	plain, err := jpeg.Decode(bytes.NewReader(encodeJPEG(t, opaque(pic))))
	if err != nil {
		t.Fatal(err)
	}
	_, floor := diff(t, slowNRGBA(plain), opaque(pic))
	t.Logf("%T: mean error %.1f ignoring the profile, %.1f applying it, %.1f for the plain JPEG", img, before, after, floor)
	if after > floor+1 || before < 50 {
		t.Errorf("mean error %.1f ignoring the profile, %.1f applying it, %.1f for the plain JPEG", before, after, floor)
	}
}

// pngChunk is a PNG chunk with its CRC (corrupted on request).
func pngChunk(typ string, body []byte, badCRC bool) []byte {
	crc := crc32.ChecksumIEEE(cat([]byte(typ), body))
	if badCRC {
		crc++
	}
	return cat(u32(uint32(len(body))), []byte(typ), body, u32(crc))
}

func iccp(name string, method byte, prof []byte) []byte {
	var z bytes.Buffer
	w := zlib.NewWriter(&z)
	w.Write(prof)
	w.Close()
	return cat([]byte(name), []byte{0, method}, z.Bytes())
}

func TestFromPNG(t *testing.T) {
	prof := buildProfile(2, "mntr", "GRAY", "XYZ ", tag{"kTRC", curvFunc(1024, invert(decode))})
	gray := grayOf(photo(40, 30))
	var buf bytes.Buffer
	if err := png.Encode(&buf, mapGray(gray, func(v float64) float64 { return 1 - v })); err != nil {
		t.Fatal(err)
	}
	pngData := buf.Bytes()
	const ihdrEnd = 8 + 25
	after := func(at int, chunks ...[]byte) []byte { return cat(pngData[:at], cat(chunks...), pngData[at:]) }
	bomb := make([]byte, MaxSize+1)
	tests := []struct {
		name string
		data []byte
		want []byte
	}{
		{"iCCP after IHDR", after(ihdrEnd, pngChunk("iCCP", iccp("ICC profile", 0, prof), false)), prof},
		{"bad CRC", after(ihdrEnd, pngChunk("iCCP", iccp("ICC profile", 0, prof), true)), nil},
		{"bad CRC, then a good one", after(ihdrEnd, pngChunk("iCCP", iccp("x", 0, []byte("junk")), true), pngChunk("iCCP", iccp("p", 0, prof), false)), prof},
		{"after IDAT", after(bytes.Index(pngData, []byte("IEND"))-4, pngChunk("iCCP", iccp("ICC profile", 0, prof), false)), nil},
		{"compression method 1", after(ihdrEnd, pngChunk("iCCP", iccp("ICC profile", 1, prof), false)), nil},
		{"name too long", after(ihdrEnd, pngChunk("iCCP", iccp(string(bytes.Repeat([]byte("n"), 80)), 0, prof), false)), nil},
		{"empty name", after(ihdrEnd, pngChunk("iCCP", iccp("", 0, prof), false)), nil},
		{"zlib stream truncated", after(ihdrEnd, pngChunk("iCCP", iccp("p", 0, prof)[:40], false)), nil},
		{"inflates past MaxSize", after(ihdrEnd, pngChunk("iCCP", iccp("p", 0, bomb), false)), nil},
		{"no iCCP", pngData, nil},
		{"chunk length past the end", cat(pngData[:ihdrEnd], u32(1<<31), []byte("iCCP")), nil},
		{"not a PNG", prof, nil},
	}
	for _, tc := range tests {
		if got := FromPNG(tc.data); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %d bytes, want %d", tc.name, len(got), len(tc.want))
		}
	}

	// The whole attack with a gray PNG.
	data := tests[0].data
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse(FromPNG(data))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := diff(t, p.ToSRGB(img), gray); m > 1 {
		t.Errorf("gray PNG: max error %d", m)
	}
}

// webp builds a RIFF WebP from chunks (FourCC, payload), padding odd sizes.
func webp(chunks ...any) []byte {
	var body []byte
	for i := 0; i < len(chunks); i += 2 {
		p := chunks[i+1].([]byte)
		body = append(body, chunks[i].(string)...)
		body = binary.LittleEndian.AppendUint32(body, uint32(len(p)))
		body = append(body, p...)
		if len(p)%2 == 1 {
			body = append(body, 0)
		}
	}
	out := append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(4+len(body)))...)
	return append(append(out, "WEBP"...), body...)
}

func TestFromWebP(t *testing.T) {
	prof := append(invertingProfile(), 7) // odd length: the chunk is padded
	vp8x := func(flags byte) []byte { return []byte{flags, 0, 0, 0, 9, 0, 0, 9, 0, 0} }
	vp8l := []byte{0x2f, 9, 0x40, 2, 0, 0, 0, 0}
	good := webp("VP8X", vp8x(0x20), "ICCP", prof, "VP8L", vp8l)
	tests := []struct {
		name string
		data []byte
		want []byte
	}{
		{"VP8X + ICCP", good, prof},
		{"ICCP after EXIF", webp("VP8X", vp8x(0x28), "EXIF", []byte("abc"), "ICCP", prof, "VP8L", vp8l), prof},
		{"ICC flag unset", webp("VP8X", vp8x(0x00), "ICCP", prof, "VP8L", vp8l), nil},
		{"simple file", webp("VP8L", vp8l, "ICCP", prof), nil},
		{"no ICCP", webp("VP8X", vp8x(0x20), "VP8L", vp8l), nil},
		{"ICCP past the RIFF size", func() []byte { b := bytes.Clone(good); binary.LittleEndian.PutUint32(b[4:], 30); return b }(), nil},
		{"truncated", good[:200], nil},
		{"not a WebP", prof, nil},
	}
	for _, tc := range tests {
		if got := FromWebP(tc.data); !bytes.Equal(got, tc.want) {
			t.Errorf("%s: got %d bytes, want %d", tc.name, len(got), len(tc.want))
		}
	}
	if got := FromWebP(good); &got[0] == &good[30] {
		t.Error("the profile aliases the file")
	}
}
