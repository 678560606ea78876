package picture

import (
	"bytes"
	"image"
	"image/jpeg"
	"testing"

	"github.com/mediaguard/mediaguard/internal/bypass"
)

func TestJPEGWantsFallback(t *testing.T) {
	img := image.NewYCbCr(image.Rect(0, 0, 32, 32), image.YCbCrSubsampleRatio420)
	var plain bytes.Buffer
	jpeg.Encode(&plain, img, nil)
	var grey bytes.Buffer
	jpeg.Encode(&grey, image.NewGray(image.Rect(0, 0, 16, 16)), nil)
	p := plain.Bytes()
	adobe := append(append([]byte{0xff, 0xd8}, 0xff, 0xee, 0, 14, 'A', 'd', 'o', 'b', 'e', 0, 100, 0, 0, 0, 0, 1), p[2:]...)
	manyScans := append(append([]byte(nil), p...), bytes.Repeat([]byte{0xff, 0xda, 0, 2}, maxGoScans)...)
	rgb := append([]byte(nil), p...)
	for i := 2; i+4 < len(rgb); {
		n := int(rgb[i+2])<<8 | int(rgb[i+3])
		if rgb[i+1] == 0xc0 {
			rgb[i+4+6], rgb[i+4+9], rgb[i+4+12] = 'R', 'G', 'B'
			break
		}
		i += 2 + n
	}
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"plain YCbCr", p, false},
		{"greyscale", grey.Bytes(), false},
		{"Adobe marker", adobe, true},
		{"components named R G B", rgb, true},
		{"more than 64 scans", manyScans, true},
		{"garbage", []byte{0xff, 0xd8, 0x12, 0x34}, false},
		// Decoders skip junk between segments; so must the route.
		{"Adobe marker after a junk byte", withJunkBefore(adobe, 2), true},
		{"components named R G B after a junk byte", withJunkBefore(rgb, app0End(rgb)), true},
		{"Adobe marker behind FF 00", append([]byte{0xff, 0xd8, 0xff, 0x00}, adobe[2:]...), true},
	} {
		if got := jpegWantsFallback(tc.data); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// withJunkBefore puts a comment segment and then a junk byte (which
// libjpeg-turbo and image/jpeg skip) at offset at of a JPEG.
func withJunkBefore(jpg []byte, at int) []byte {
	out := append([]byte(nil), jpg[:at]...)
	out = append(out, 0xff, 0xfe, 0, 4, 'h', 'i', 0x00)
	return append(out, jpg[at:]...)
}

// app0End is the offset just past a JPEG's first segment.
func app0End(jpg []byte) int { return 4 + int(jpg[4])<<8 | int(jpg[5]) }

// The EXIF orientation behind junk between segments is read, as decoders
// read the segment.
func TestJPEGOrientationPastJunk(t *testing.T) {
	var plain bytes.Buffer
	jpeg.Encode(&plain, image.NewGray(image.Rect(0, 0, 16, 16)), nil)
	exif := bypass.WithEXIFOrientation(plain.Bytes(), 6)
	for name, data := range map[string][]byte{"plain": exif, "junk before its APP1": withJunkBefore(exif, 2),
		"FF 00 before its APP1": append([]byte{0xff, 0xd8, 0xff, 0x00}, exif[2:]...)} {
		if o := jpegOrientation(data); o != 6 {
			t.Errorf("%s: orientation %d, want 6", name, o)
		}
	}
}
