package jpegx

import (
	"testing"
	"time"
)

func fuzzSeeds() [][]byte {
	pic := synthPicture(40, 30, 9)
	gray := grayOf(pic)
	base := encOpts{comps: ycc(1, 2, 2, 1, 1, 1, 1), color: "ycbcr", jfif: true, adobe: -1}
	seeds := [][]byte{
		goJPEG(pic, 80),
		goJPEG(gray, 80),
		encodeJPEG(pic, base),
	}
	o := base
	o.progressive = true
	seeds = append(seeds, encodeJPEG(pic, o))
	o.restart = 2
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.restart = 3
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.restart = 1
	o.stdTables = true
	o.omitDHT = true
	seeds = append(seeds, encodeJPEG(pic, o))
	seeds = append(seeds, encodeJPEG(pic, encOpts{comps: ycc(1, 1, 1, 1, 1, 1, 1, 1, 1), color: "cmyk", adobe: 0, progressive: true}))
	seeds = append(seeds, encodeJPEG(pic, encOpts{comps: ycc(1, 3, 1, 1, 2, 2, 1), color: "ycbcr", adobe: -1}))
	seeds = append(seeds, encodeJPEG(pic, encOpts{comps: ycc(1, 1, 1), color: "gray", adobe: -1, progressive: true}))
	o = base
	o.arith, o.progressive, o.restart = true, true, 3
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.arith = true
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.lossless, o.predictor, o.restart = true, 4, 7
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.precision, o.progressive = 12, true
	seeds = append(seeds, encodeJPEG(pic, o))
	g := goJPEG(pic, 80)
	seeds = append(seeds, g[:len(g)/2])
	return seeds
}

// FuzzDecode: no input may panic, hang, or return an image of the wrong
// size.
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	recoverPanics = false
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		for _, mp := range []int{1 << 20, 300} {
			res, err := DecodeBytes(data, mp)
			if err != nil {
				continue
			}
			if res.Image == nil {
				t.Fatal("nil image without error")
			}
			w, h, _, err := DecodeConfig(data)
			if err != nil {
				t.Fatalf("decoded but DecodeConfig: %v", err)
			}
			s := res.Scale
			b := res.Image.Bounds()
			if b.Dx() != (w+s-1)/s || b.Dy() != (h+s-1)/s || b.Dx()*b.Dy() > mp {
				t.Fatalf("bounds %v for %dx%d at 1/%d, max %d", b, w, h, s, mp)
			}
			_ = res.Image.At(b.Dx()-1, b.Dy()-1)
		}
		if el := time.Since(start); el > 5*time.Second { // generous: CI machines are shared
			t.Fatalf("took %v on %d bytes", el, len(data))
		}
	})
}
