package picture

import (
	"image"
	"image/draw"
)

// Canvas operations shared by the animated formats (APNG, GIF, WebP). The
// canvas is always *image.NRGBA, starting fully transparent.

func cloneNRGBA(m *image.NRGBA) *image.NRGBA {
	c := &image.NRGBA{Pix: make([]byte, len(m.Pix)), Stride: m.Stride, Rect: m.Rect}
	copy(c.Pix, m.Pix)
	return c
}

// clearRect makes r transparent black.
func clearRect(m *image.NRGBA, r image.Rectangle) {
	r = r.Intersect(m.Rect)
	if r.Empty() {
		return
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		row := m.Pix[m.PixOffset(r.Min.X, y):m.PixOffset(r.Max.X, y)]
		clear(row)
	}
}

// copyRect copies r of src into dst (same geometry).
func copyRect(dst, src *image.NRGBA, r image.Rectangle) {
	r = r.Intersect(dst.Rect).Intersect(src.Rect)
	if r.Empty() {
		return
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		copy(dst.Pix[dst.PixOffset(r.Min.X, y):dst.PixOffset(r.Max.X, y)], src.Pix[src.PixOffset(r.Min.X, y):src.PixOffset(r.Max.X, y)])
	}
}

// compose draws frame onto canvas where they overlap: a plain copy when
// over is false (blend "source"), non-premultiplied alpha compositing
// ("over") otherwise.
func compose(canvas, frame *image.NRGBA, over bool) {
	r := frame.Rect.Intersect(canvas.Rect)
	if r.Empty() {
		return
	}
	if !over {
		copyRect(canvas, frame, r)
		return
	}
	n := r.Dx() * 4
	for y := r.Min.Y; y < r.Max.Y; y++ {
		d := canvas.Pix[canvas.PixOffset(r.Min.X, y):][:n:n]
		s := frame.Pix[frame.PixOffset(r.Min.X, y):][:n:n]
		for i := 0; i+3 < n; i += 4 {
			blendOverPixel(d[i:i+4:i+4], s[i], s[i+1], s[i+2], s[i+3])
		}
	}
}

// blendOverPixel composites a non-premultiplied source pixel over d.
func blendOverPixel(d []byte, sr, sg, sb, sa byte) {
	switch sa {
	case 0:
		return
	case 255:
		d[0], d[1], d[2], d[3] = sr, sg, sb, 255
		return
	}
	da := uint32(d[3])
	if da == 0 {
		d[0], d[1], d[2], d[3] = sr, sg, sb, sa
		return
	}
	sa32 := uint32(sa)
	// Work in 255*255 units: out alpha = sa + da*(1-sa).
	dw := da * (255 - sa32) // dst weight ×255
	oa := sa32*255 + dw     // out alpha ×255
	d[0] = byte((uint32(sr)*sa32*255 + uint32(d[0])*dw + oa/2) / oa)
	d[1] = byte((uint32(sg)*sa32*255 + uint32(d[1])*dw + oa/2) / oa)
	d[2] = byte((uint32(sb)*sa32*255 + uint32(d[2])*dw + oa/2) / oa)
	d[3] = byte((oa + 127) / 255)
}

// toNRGBA converts any decoded image to *image.NRGBA, quickly for the types
// the decoders here produce.
func toNRGBA(src image.Image) *image.NRGBA {
	switch m := src.(type) {
	case *image.NRGBA:
		return m
	case *image.YCbCr:
		// Opaque, so RGBA and NRGBA bytes are the same: let draw's fast
		// YCbCr path fill the buffer.
		dst := image.NewRGBA(m.Rect)
		draw.Draw(dst, dst.Rect, m, m.Rect.Min, draw.Src)
		return &image.NRGBA{Pix: dst.Pix, Stride: dst.Stride, Rect: dst.Rect}
	case *image.NYCbCrA:
		dst := image.NewRGBA(m.Rect)
		draw.Draw(dst, dst.Rect, &m.YCbCr, m.Rect.Min, draw.Src)
		out := &image.NRGBA{Pix: dst.Pix, Stride: dst.Stride, Rect: dst.Rect}
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
	b := src.Bounds()
	dst := image.NewNRGBA(b)
	draw.Draw(dst, b, src, b.Min, draw.Src)
	return dst
}
