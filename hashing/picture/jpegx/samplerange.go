package jpegx

import "fmt"

// sampleLimit is how far from mid-grey (level shift removed) a block's
// samples may reach before the file is ErrAmbiguous. An 8-bit picture's
// samples are within ±128, and a JPEG of one adds its quantisation
// error; past ±511 libjpeg-turbo's integer IDCT leaves its range-limit
// table (which clamps within ±512 and wraps beyond) and, from ±1,024,
// overflows its SIMD code's 16-bit DC. Within ±500 every decoder clamps
// alike: the coefficients are then within ±4,000 (the transform is
// orthonormal), far inside the 16-bit arithmetic of the SIMD IDCTs.
const sampleLimit = 500

// checkRange reports ErrAmbiguous for the first of n blocks held in coef
// (component ci) whose samples reach past sampleLimit. Each block is
// bounded from its coefficients first; only the few whose bound reaches
// that far are transformed. At a reduced scale only the DC is held, and
// only it is checked: enough for the flat blocks that are the cheap way
// to use the wrap.
func (d *decoder) checkRange(ci int, coef []int16, n int) error {
	if d.precision != 8 || d.lossless {
		return nil
	}
	if ci == 0 && d.lumaStart != nil {
		return nil // emitLuma bounds every luma block anyway
	}
	d.floatTables()
	q := &d.clip.q[ci]
	K := d.kstore
	for b := range n {
		blk := coef[b*K : b*K+K]
		if K != 64 {
			if dc := float32(blk[0]) * q[0] / 8; dc > sampleLimit || dc < -sampleLimit {
				return d.ambiguousAt(ci, dc)
			}
			continue
		}
		if s := blockSpan(blk, q); abs32(s.c)+s.r <= sampleLimit {
			continue
		}
		if err := d.checkSamples(ci, blk); err != nil {
			return err
		}
	}
	return nil
}

// checkSamples is the exact test for a block its bound did not clear.
func (d *decoder) checkSamples(ci int, blk []int16) error {
	var px [64]float32
	idct8f(blk, d.clip.t[ci], &px)
	for _, v := range px {
		if v-128 > sampleLimit || v-128 < -sampleLimit {
			return d.ambiguousAt(ci, v)
		}
	}
	return nil
}

func (d *decoder) ambiguousAt(ci int, v float32) error {
	return fmt.Errorf("%w: component %d has a sample coded at %.0f (0..255 is the picture; no 8-bit picture's JPEG reaches past %d..%d)",
		ErrAmbiguous, ci, v, 128-sampleLimit, 128+sampleLimit)
}

// CheckSamples entropy-decodes data and reports ErrAmbiguous where a
// block's samples reach past what any decoder agrees on, for a caller
// that decodes the pixels with another decoder (Go's image/jpeg clamps
// such samples as libjpeg-turbo's integer IDCT does not). Other errors
// are the decoder's, and leave the judgement to that other decoder.
func CheckSamples(data []byte, maxPixels int) (err error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	defer func() {
		if !recoverPanics {
			return
		}
		if p := recover(); p != nil {
			err = corrupt("internal decoder error: %v", p)
		}
	}()
	d := &decoder{data: data, maxPixels: maxPixels, checkOnly: true}
	_, err = d.decode()
	return err
}
