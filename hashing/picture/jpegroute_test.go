package picture

import (
	"bytes"
	"image"

	"image/jpeg"
	"testing"
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
	} {
		if got := jpegWantsFallback(tc.data); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}
