package jpegx

import (
	"image"
)

// Output assembly: sample planes to an image.Image in the colour space
// libjpeg-turbo would decide on.

func (d *decoder) outSize() (int, int) {
	s := d.scale
	return (d.width + s - 1) / s, (d.height + s - 1) / s
}

func (d *decoder) assemble() image.Image {
	d.decideColorSpace()
	ow, oh := d.outSize()
	rect := image.Rect(0, 0, ow, oh)
	planes := make([][]byte, len(d.comps))
	strides := make([]int, len(d.comps))
	for i := range d.comps {
		if d.planes != nil {
			planes[i], strides[i] = d.planes[i], d.strides[i]
			if !d.streamDone {
				fillGrey(planes[i]) // the scan never came
			}
			continue
		}
		if d.lossless {
			planes[i], strides[i] = d.losslessPlane(&d.comps[i])
		} else {
			planes[i], strides[i] = d.idctComponent(&d.comps[i])
		}
		d.comps[i].coef = nil // let the coefficients go before the next allocation
		d.comps[i].mask = nil
	}
	switch d.colorSpace {
	case csGray:
		c := &d.comps[0]
		if c.h == d.hmax && c.v == d.vmax {
			return &image.Gray{Pix: planes[0], Stride: strides[0], Rect: rect}
		}
	case csYCbCr:
		if ratio, ok := d.standardRatio(); ok {
			return &image.YCbCr{
				Y: planes[0], Cb: planes[1], Cr: planes[2],
				YStride: strides[0], CStride: strides[1],
				SubsampleRatio: ratio, Rect: rect,
			}
		}
		// Unusual sampling (3x1, 1x4, chroma finer than luma...):
		// nearest-neighbour to full resolution, 4:4:4.
		y := d.upsample(0, planes[0], strides[0], ow, oh)
		cb := d.upsample(1, planes[1], strides[1], ow, oh)
		cr := d.upsample(2, planes[2], strides[2], ow, oh)
		return &image.YCbCr{Y: y, Cb: cb, Cr: cr, YStride: ow, CStride: ow,
			SubsampleRatio: image.YCbCrSubsampleRatio444, Rect: rect}
	}
	full := make([][]byte, len(d.comps))
	for i := range d.comps {
		full[i] = d.upsample(i, planes[i], strides[i], ow, oh)
	}
	switch d.colorSpace {
	case csGray:
		return &image.Gray{Pix: full[0], Stride: ow, Rect: rect}
	case csRGB:
		img := image.NewRGBA(rect)
		r, g, b := full[0], full[1], full[2]
		pix := img.Pix
		for i := range r {
			p := pix[4*i : 4*i+4 : 4*i+4]
			p[0], p[1], p[2], p[3] = r[i], g[i], b[i], 255
		}
		return img
	case csCMYK, csYCCK:
		img := image.NewRGBA(rect)
		c, m, y, k := full[0], full[1], full[2], full[3]
		pix := img.Pix
		ycck := d.colorSpace == csYCCK
		for i := range c {
			cc, mm, yy, kk := c[i], m[i], y[i], k[i]
			if ycck {
				// libjpeg-turbo turns YCC into CMY as 255-R, 255-G, 255-B.
				r, g, b := ycbcrToRGB(cc, mm, yy)
				cc, mm, yy = 255-r, 255-g, 255-b
			}
			// Browsers (Chromium/Skia, Firefox) read libjpeg-turbo's
			// CMYK as Adobe-inverted: 0 means full ink.
			p := pix[4*i : 4*i+4 : 4*i+4]
			p[0] = mulDiv255(cc, kk)
			p[1] = mulDiv255(mm, kk)
			p[2] = mulDiv255(yy, kk)
			p[3] = 255
		}
		return img
	}
	// csYCbCr was handled above.
	return nil
}

func mulDiv255(a, b byte) byte {
	v := uint32(a)*uint32(b) + 128
	return byte((v + v>>8) >> 8)
}

// ycbcrToRGB is the JFIF conversion (T.871), rounded.
func ycbcrToRGB(y, cb, cr byte) (byte, byte, byte) {
	yy := int32(y) << 16
	b1 := int32(cb) - 128
	r1 := int32(cr) - 128
	r := (yy + 91881*r1 + 1<<15) >> 16
	g := (yy - 22554*b1 - 46802*r1 + 1<<15) >> 16
	b := (yy + 116130*b1 + 1<<15) >> 16
	return clamp255(r), clamp255(g), clamp255(b)
}

func clamp255(v int32) byte {
	if uint32(v) > 255 {
		if v < 0 {
			return 0
		}
		return 255
	}
	return byte(v)
}

// standardRatio reports whether the three components map onto one of
// image.YCbCr's subsample ratios with luma at full resolution.
func (d *decoder) standardRatio() (image.YCbCrSubsampleRatio, bool) {
	y, cb, cr := d.comps[0], d.comps[1], d.comps[2]
	if y.h != d.hmax || y.v != d.vmax || cb.h != cr.h || cb.v != cr.v {
		return 0, false
	}
	if d.hmax%cb.h != 0 || d.vmax%cb.v != 0 {
		return 0, false
	}
	switch [2]int{d.hmax / cb.h, d.vmax / cb.v} {
	case [2]int{1, 1}:
		return image.YCbCrSubsampleRatio444, true
	case [2]int{2, 1}:
		return image.YCbCrSubsampleRatio422, true
	case [2]int{2, 2}:
		return image.YCbCrSubsampleRatio420, true
	case [2]int{1, 2}:
		return image.YCbCrSubsampleRatio440, true
	case [2]int{4, 1}:
		return image.YCbCrSubsampleRatio411, true
	case [2]int{4, 2}:
		return image.YCbCrSubsampleRatio410, true
	}
	return 0, false
}

// upsample returns component i's plane at the output size (ow×oh, stride
// ow), replicating samples of a subsampled component (nearest neighbour;
// works for ratios libjpeg-turbo would refuse, such as 3:2).
func (d *decoder) upsample(i int, plane []byte, stride, ow, oh int) []byte {
	c := &d.comps[i]
	out := make([]byte, ow*oh)
	if c.h == d.hmax && c.v == d.vmax {
		for y := range oh {
			copy(out[y*ow:(y+1)*ow], plane[y*stride:])
		}
		return out
	}
	xmap := make([]int32, ow)
	for x := range ow {
		xmap[x] = int32(x * c.h / d.hmax)
	}
	for y := range oh {
		src := plane[(y*c.v/d.vmax)*stride:]
		dst := out[y*ow : (y+1)*ow]
		for x, sx := range xmap {
			dst[x] = src[sx]
		}
	}
	return out
}
