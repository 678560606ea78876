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

// FuzzVariants runs every variant, deep ones included, over arbitrary
// luma: the edge, trim and peel searches index by positions they derive
// from the pixels, and a crafted picture must not take them out of range.
func FuzzVariants(f *testing.F) {
	f.Add(uint16(40), uint16(30), []byte{0, 255, 7, 128})
	f.Add(uint16(5), uint16(300), []byte{255})
	f.Add(uint16(513), uint16(2), []byte{0, 0, 0, 255, 255, 255})
	f.Fuzz(func(t *testing.T, w, h uint16, pix []byte) {
		ww, hh := int(w%700)+1, int(h%700)+1
		if len(pix) == 0 {
			return
		}
		luma := make([]float32, ww*hh)
		for i := range luma {
			luma[i] = float32(pix[(i*7)%len(pix)] ^ byte(i/ww*int(pix[0])))
		}
		p := downscale(luma, hh, ww, workSide)
		vs := variantSet{seen: map[Hash]int{}, budget: variantBudget(ww * hh)}
		defaultVariants(&vs, p, Result{Hash: Hash{1}}, "")
		vs.budget += deepAllowance
		deepVariants(&vs, p, "")
		for _, fm := range vs.forms {
			if fm.Quality < 0 || fm.Quality > 100 || fm.Variant == "" {
				t.Fatalf("bad form %+v", fm)
			}
		}
	})
}
