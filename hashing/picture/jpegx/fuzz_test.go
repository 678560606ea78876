package jpegx

import (
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/jpegenc"
)

func fuzzSeeds() [][]byte {
	pic := synthPicture(40, 30, 9)
	gray := grayOf(pic)
	base := jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1}
	seeds := [][]byte{
		goJPEG(pic, 80),
		goJPEG(gray, 80),
		encodeJPEG(pic, base),
	}
	o := base
	o.Progressive = true
	seeds = append(seeds, encodeJPEG(pic, o))
	o.Restart = 2
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.Restart = 3
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.Restart = 1
	o.StdTables = true
	o.OmitDHT = true
	seeds = append(seeds, encodeJPEG(pic, o))
	seeds = append(seeds, encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 1, 1, 1, 1, 1, 1), Color: "cmyk", Adobe: 0, Progressive: true}))
	seeds = append(seeds, encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 3, 1, 1, 2, 2, 1), Color: "ycbcr", Adobe: -1}))
	seeds = append(seeds, encodeJPEG(pic, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Adobe: -1, Progressive: true}))
	o = base
	o.Arith, o.Progressive, o.Restart = true, true, 3
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.Arith = true
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.Lossless, o.Predictor, o.Restart = true, 4, 7
	seeds = append(seeds, encodeJPEG(pic, o))
	o = base
	o.Precision, o.Progressive = 12, true
	seeds = append(seeds, encodeJPEG(pic, o))
	g := goJPEG(pic, 80)
	seeds = append(seeds, g[:len(g)/2])
	return seeds
}

// FuzzDecode: no input may panic, hang, or return an image of the wrong
// size, in Decode or LumaBlocks.
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
		// The luma-blocks mode walks the same scans with other sinks:
		// rows in order, each of the geometry announced.
		var info LumaInfo
		next := 0
		_, err := LumaBlocks(data, 1<<20, func(i LumaInfo) func(int, []float32, []uint8) {
			info = i
			if i.BlocksW*8 < i.Width || i.BlocksH*8 < i.Height {
				t.Fatalf("geometry %+v", i)
			}
			return func(by int, blocks []float32, nz []uint8) {
				if by < next || by >= info.BlocksH || len(blocks) != info.BlocksW*64 || len(nz) != info.BlocksW {
					t.Fatalf("row %d (next %d) of %d blocks for %+v", by, next, len(blocks)/64, info)
				}
				next = by + 1
			}
		})
		_ = err
		if el := time.Since(start); el > 5*time.Second { // generous: CI machines are shared
			t.Fatalf("took %v on %d bytes", el, len(data))
		}
	})
}
