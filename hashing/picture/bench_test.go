package picture

import (
	"bytes"
	"image"
	"image/png"
	"testing"
)

// benchPNG encodes a 1024×1024 (1 MP) picture with image/png's encoder at
// its default compression: opaque gives 8-bit RGB, alpha gives RGBA.
func benchPNG(b *testing.B, alpha bool) []byte {
	var src image.Image = photo(1024, 1024)
	if alpha {
		src = alphaPhoto(1024, 1024)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, src); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkPNG compares this package's PNG decoder (through Decode, input
// read included) with image/png on the same 1 MP files.
func BenchmarkPNG(b *testing.B) {
	for _, c := range []struct {
		name  string
		alpha bool
	}{{"RGB", false}, {"RGBA", true}} {
		data := benchPNG(b, c.alpha)
		b.Run(c.name+"/picture", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(data), Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/image_png", func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := png.Decode(bytes.NewReader(data)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHEIF measures a steady-state AVIF and HEIC decode (the
// WebAssembly compile, about a second per decoder, happens once per
// process, before the timer).
func BenchmarkHEIF(b *testing.B) {
	for _, name := range []string{"still.avif", "still.heic", "p130x66.heic"} {
		data := readTestdata(b, name)
		if _, err := Decode(bytes.NewReader(data), Options{}); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Decode(bytes.NewReader(data), Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
