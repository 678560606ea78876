package picture

import "image"

// yuvToNRGBA converts Y'CbCr to RGB with the given matrix (kr, kb luma
// coefficients) and range. Go's image.YCbCr assumes JFIF's full-range
// BT.601; VP8 (WebP lossy) is limited range, and HEIF files may say either
// and use BT.709, so viewers' colours (and contrast) need this instead.
func yuvToNRGBA(m *image.YCbCr, fullRange bool, kr, kb float64) *image.NRGBA {
	const fix = 16
	kg := 1 - kr - kb
	ys, cs := 1.0, 1.0
	yoff := 0
	if !fullRange {
		ys, cs, yoff = 255.0/219, 255.0/224, 16
	}
	f := func(v float64) int32 { return int32(v*(1<<fix) + 0.5) }
	cy := f(ys)
	crR := f(cs * 2 * (1 - kr))
	cbB := f(cs * 2 * (1 - kb))
	cbG := f(cs * 2 * kb * (1 - kb) / kg)
	crG := f(cs * 2 * kr * (1 - kr) / kg)
	b := m.Rect
	dst := image.NewNRGBA(b)
	w := b.Dx()
	clamp := func(v int32) byte {
		v = (v + 1<<(fix-1)) >> fix
		if uint32(v) > 255 {
			if v < 0 {
				return 0
			}
			return 255
		}
		return byte(v)
	}
	for y := b.Min.Y; y < b.Max.Y; y++ {
		yrow := m.Y[m.YOffset(b.Min.X, y):][:w]
		out := dst.Pix[dst.PixOffset(b.Min.X, y):][: 4*w : 4*w]
		for i, yv := range yrow {
			x := b.Min.X + i
			ci := m.COffset(x, y)
			yy := (int32(yv) - int32(yoff)) * cy
			cb := int32(m.Cb[ci]) - 128
			cr := int32(m.Cr[ci]) - 128
			q := out[4*i : 4*i+4 : 4*i+4]
			q[0] = clamp(yy + crR*cr)
			q[1] = clamp(yy - cbG*cb - crG*cr)
			q[2] = clamp(yy + cbB*cb)
			q[3] = 0xff
		}
	}
	return dst
}

// vp8ToNRGBA converts x/image/webp's lossy output with VP8's limited-range
// BT.601, keeping the alpha plane if there is one.
func vp8ToNRGBA(img image.Image) image.Image {
	switch m := img.(type) {
	case *image.YCbCr:
		return yuvToNRGBA(m, false, 0.299, 0.114)
	case *image.NYCbCrA:
		out := yuvToNRGBA(&m.YCbCr, false, 0.299, 0.114)
		w := m.Rect.Dx()
		for y := m.Rect.Min.Y; y < m.Rect.Max.Y; y++ {
			a := m.A[m.AOffset(m.Rect.Min.X, y):][:w]
			p := out.Pix[out.PixOffset(m.Rect.Min.X, y):][: 4*w : 4*w]
			for x, av := range a {
				p[4*x+3] = av
			}
		}
		return out
	}
	return img
}
