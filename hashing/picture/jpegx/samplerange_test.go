package jpegx

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"testing"

	"github.com/mediaguard/mediaguard/internal/jpegenc"
)

// Blocks coded past what any decoder agrees on are ErrAmbiguous on every
// path (pixels, luma blocks, the check alone), in every layout; those
// just inside it decode. Debian's djpeg 2.1.5 (libjpeg-turbo, its
// default integer IDCT) shows a grey block coded at 1200 as black and one
// at −900 as white, where its float IDCT and Go's image/jpeg show 255
// and 0; its C range-limit table wraps from ±512 about mid-grey.
func TestAmbiguousSamples(t *testing.T) {
	pic := synthPicture(64, 48, 2)
	layouts := []struct {
		name string
		o    jpegenc.Options
	}{
		{"grey", jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", JFIF: true, Adobe: -1}},
		{"4:2:0", jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1}},
		{"4:2:0 progressive", jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1, Progressive: true}},
		{"4:4:4 non-interleaved", jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1,
			Scans: []jpegenc.Scan{{Comps: []int{0}, Se: 63}, {Comps: []int{1}, Se: 63}, {Comps: []int{2}, Se: 63}}}},
	}
	for _, l := range layouts {
		for _, c := range []struct {
			plane     int
			v         float64
			ambiguous bool
		}{
			{0, 1200, true}, {0, -900, true}, {0, 700, true}, {0, 620, false}, {0, -360, false},
			{2, 900, true}, {1, -700, true}, {2, 600, false},
		} {
			if c.plane > 0 && l.name == "grey" {
				continue
			}
			t.Run(fmt.Sprintf("%s/plane %d at %v", l.name, c.plane, c.v), func(t *testing.T) {
				o := l.o
				o.EditPlanes = func(p [][]float64, w, h int) {
					for i := range p[c.plane] {
						if i%w < w/2 && i/w >= 16 { // a flat area from the third block row
							p[c.plane][i] = c.v
						}
					}
				}
				data := encodeJPEG(pic, o)
				_, derr := DecodeBytes(data, 0)
				_, lerr := LumaBlocks(data, 0, func(LumaInfo) func(int, []float32, []uint8) { return func(int, []float32, []uint8) {} })
				cerr := CheckSamples(data, 0)
				for name, err := range map[string]error{"DecodeBytes": derr, "LumaBlocks": lerr, "CheckSamples": cerr} {
					if got := errors.Is(err, ErrAmbiguous); got != c.ambiguous {
						t.Errorf("%s: %v, want ambiguous %v", name, err, c.ambiguous)
					}
				}
			})
		}
	}
}

// A Huffman table that cannot be built is an error only for a scan that
// uses it, as in libjpeg-turbo: an oversubscribed DC table replaced
// before the scan is a file browsers show (found in review: refusing it
// at its DHT sent such files around the sample check to image/jpeg).
func TestUnusedBadHuffmanTable(t *testing.T) {
	data := encodeJPEG(synthPicture(64, 48, 2), jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1})
	// Three 1-bit DC codes for table 0: oversubscribed.
	bad := []byte{0xFF, 0xC4, 0, 22, 0x00, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2}
	sos := bytes.Index(data, []byte{0xFF, 0xDA})
	want, err := DecodeBytes(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	early := append(append(append([]byte(nil), data[:2]...), bad...), data[2:]...)
	got, err := DecodeBytes(early, 0)
	if err != nil {
		t.Fatalf("bad table replaced before the scan: %v", err)
	}
	if !bytes.Equal(got.Image.(*image.YCbCr).Y, want.Image.(*image.YCbCr).Y) {
		t.Fatal("bad table replaced before the scan: a different picture")
	}
	if err := CheckSamples(early, 0); err != nil {
		t.Fatalf("check: %v", err)
	}
	late := append(append(append([]byte(nil), data[:sos]...), bad...), data[sos:]...)
	if _, err := DecodeBytes(late, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad table used by the scan: %v, want ErrCorrupt", err)
	}
}
