package pdq

import (
	"errors"
	"testing"
)

// FuzzHashBytes feeds arbitrary bytes to the decode-and-hash entry point the
// proxy calls on every upload: it must return a typed error or a hash, in
// bounded memory, and never panic.
func FuzzHashBytes(f *testing.F) {
	img := syntheticPhoto(40, 30)
	for _, format := range []string{"png", "jpeg", "gif"} {
		data := encode(f, img, format)
		f.Add(data)
		f.Add(data[:len(data)/2])
	}
	for _, bomb := range bombs() {
		f.Add(bomb)
	}
	f.Add(pngHeader(3, 3))
	f.Add([]byte("RIFF\x00\x00\x00\x00WEBPVP8 "))
	f.Add([]byte("BM"))
	f.Add([]byte("II*\x00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		res, _, err := HashBytes(data, DecodeOptions{MaxPixels: 4 << 20}, Options{Dihedral: true})
		if err != nil {
			if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrTooManyPixels) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if res.Quality < 0 || res.Quality > 100 || res.Dihedral == nil {
			t.Fatalf("bad result %+v", res)
		}
	})
}
