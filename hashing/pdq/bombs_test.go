package pdq

import (
	"bytes"
	"encoding/binary"
	"errors"
	"runtime"
	"testing"
)

// Decompression bombs: tiny files whose headers promise gigapixels. Each
// must be refused from its header, before the decoder allocates the image.
// The headers follow each format's specification just far enough for
// image.DecodeConfig to read the dimensions.

// jpegHeader is SOI, a JFIF APP0 segment, then a baseline SOF0 segment for
// a w×h 3-component image (ITU T.81 B.2.2; JFIF 1.02).
func jpegHeader(w, h uint16) []byte {
	var b bytes.Buffer
	b.Write([]byte{0xFF, 0xD8})
	b.Write([]byte{0xFF, 0xE0, 0x00, 0x10, 'J', 'F', 'I', 'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00})
	b.Write([]byte{0xFF, 0xC0, 0x00, 0x11, 0x08})
	binary.Write(&b, binary.BigEndian, h)
	binary.Write(&b, binary.BigEndian, w)
	b.Write([]byte{0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01})
	return b.Bytes()
}

// gifHeader is a GIF89a logical screen descriptor of w×h with no colour
// table, then an image descriptor of the same size (GIF89a §18, §20).
func gifHeader(w, h uint16) []byte {
	var b bytes.Buffer
	b.WriteString("GIF89a")
	binary.Write(&b, binary.LittleEndian, w)
	binary.Write(&b, binary.LittleEndian, h)
	b.Write([]byte{0x00, 0x00, 0x00, 0x2C, 0, 0, 0, 0})
	binary.Write(&b, binary.LittleEndian, w)
	binary.Write(&b, binary.LittleEndian, h)
	b.Write([]byte{0x00, 0x02, 0x02, 0x4C, 0x01, 0x00, 0x3B})
	return b.Bytes()
}

// webpHeader is a RIFF WEBP file with a VP8X chunk declaring a w×h canvas
// (24-bit width-1 and height-1, RFC 9649 §2.7).
func webpHeader(w, h uint32) []byte {
	vp8x := []byte("VP8X\x0a\x00\x00\x00\x00\x00\x00\x00")
	w, h = w-1, h-1
	vp8x = append(vp8x, byte(w), byte(w>>8), byte(w>>16), byte(h), byte(h>>8), byte(h>>16))
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(4+len(vp8x)))
	b.WriteString("WEBP")
	b.Write(vp8x)
	return b.Bytes()
}

// bmpHeader is a BITMAPINFOHEADER bitmap of w×h at 24 bits per pixel.
func bmpHeader(w, h int32) []byte {
	var b bytes.Buffer
	b.WriteString("BM")
	binary.Write(&b, binary.LittleEndian, uint32(0))
	binary.Write(&b, binary.LittleEndian, uint32(0))
	binary.Write(&b, binary.LittleEndian, uint32(54))
	binary.Write(&b, binary.LittleEndian, uint32(40))
	binary.Write(&b, binary.LittleEndian, w)
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, uint16(1))
	binary.Write(&b, binary.LittleEndian, uint16(24))
	b.Write(make([]byte, 24))
	return b.Bytes()
}

func bombs() map[string][]byte {
	return map[string][]byte{
		"png 100000x100000": pngHeader(100000, 100000),
		"jpeg 65500x65500":  jpegHeader(65500, 65500),
		"gif 65535x65535":   gifHeader(65535, 65535),
		"webp 16384x16384":  webpHeader(16384, 16384),
		"bmp 60000x60000":   bmpHeader(60000, 60000),
	}
}

func TestDecompressionBombsRefusedBeforeAllocation(t *testing.T) {
	for name, data := range bombs() {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			_, _, err := HashBytes(data, DecodeOptions{}, Options{})
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrTooManyPixels) {
				t.Fatalf("err = %v; want ErrTooManyPixels", err)
			}
			// The smallest of these images would need 268 MB; reading a
			// header costs kilobytes.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Fatalf("allocated %d bytes before refusing", alloc)
			}
		})
	}
}
