package icc

import (
	"image"
	"image/color"
)

// ToSRGB converts img (decoded pixels in the profile's colour space: RGB,
// Gray or CMYK) to sRGB as a colour-managed viewer shows it. The result is
// an *image.NRGBA with img's bounds and alpha, or an *image.Gray when a Gray
// profile meets an *image.Gray or *image.Gray16.
//
// Which images a profile applies to follows the browsers:
//   - an RGB profile applies to RGB(A), YCbCr, paletted and gray pixels (a
//     grayscale JPEG or PNG with an RGB profile is shown colour-managed);
//   - a Gray profile applies to gray pixels, and to RGBA pixels only when
//     every pixel is neutral (R = G = B: that is how Go decodes a
//     gray+alpha PNG), since viewers ignore a Gray profile on a colour image;
//   - a CMYK profile applies to *image.CMYK only.
//
// Otherwise the profile does not fit the pixels, a viewer ignores it, and
// img is returned unchanged.
//
// *image.NRGBA, *image.RGBA, *image.YCbCr, *image.NYCbCrA, *image.Gray,
// *image.CMYK and *image.Paletted are converted row by row through the
// profile's tables; other types (16-bit ones) go through img.At, quantized
// to 8 bits.
func (p *Profile) ToSRGB(img image.Image) image.Image {
	if img == nil {
		return nil
	}
	t := p.transform()
	r := img.Bounds()
	switch t.kind {
	case tfCLUT4:
		src, ok := img.(*image.CMYK)
		if !ok {
			return img
		}
		dst := image.NewNRGBA(r)
		w := 4 * r.Dx()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := dst.Pix[(y-r.Min.Y)*dst.Stride:][:w]
			copy(row, src.Pix[src.PixOffset(r.Min.X, y):][:w])
			t.cmykRow(row)
		}
		return dst
	case tfGray:
		return t.grayImage(img)
	}
	if _, ok := img.(*image.CMYK); ok {
		return img
	}
	dst := image.NewNRGBA(r)
	if g, ok := img.(*image.Gray); ok {
		w := r.Dx()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			in := g.Pix[g.PixOffset(r.Min.X, y):][:w]
			out := dst.Pix[(y-r.Min.Y)*dst.Stride:][:4*w]
			for i, v := range in {
				c := &t.gray3[v]
				px := out[4*i : 4*i+4 : 4*i+4]
				px[0], px[1], px[2], px[3] = c[0], c[1], c[2], 255
			}
		}
		return dst
	}
	if pal, ok := img.(*image.Paletted); ok {
		palettedToNRGBA(pal, dst, t)
		return dst
	}
	readRows(img, dst)
	w := 4 * r.Dx()
	for i := 0; i < r.Dy(); i++ {
		t.rgbRow(dst.Pix[i*dst.Stride:][:w])
	}
	return dst
}

// grayImage applies a Gray profile.
func (t *transform) grayImage(img image.Image) image.Image {
	r := img.Bounds()
	switch src := img.(type) {
	case *image.Gray:
		dst := image.NewGray(r)
		w := r.Dx()
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := dst.Pix[(y-r.Min.Y)*dst.Stride:][:w]
			copy(row, src.Pix[src.PixOffset(r.Min.X, y):][:w])
			t.grayRow(row)
		}
		return dst
	case *image.Gray16:
		dst := image.NewGray(r)
		for y := r.Min.Y; y < r.Max.Y; y++ {
			in := src.Pix[src.PixOffset(r.Min.X, y):][:2*r.Dx()]
			out := dst.Pix[(y-r.Min.Y)*dst.Stride:][:r.Dx()]
			for i := range out {
				out[i] = t.gray[in[2*i]] // the high byte, as color.GrayModel
			}
		}
		return dst
	case *image.CMYK:
		return img
	}
	dst := image.NewNRGBA(r)
	if pal, ok := img.(*image.Paletted); ok {
		palettedToNRGBA(pal, dst, nil)
	} else {
		readRows(img, dst)
	}
	w := 4 * r.Dx()
	for i := 0; i < r.Dy(); i++ {
		row := dst.Pix[i*dst.Stride:][:w]
		for j := 0; j+4 <= len(row); j += 4 {
			if row[j] != row[j+1] || row[j] != row[j+2] {
				return img // colour pixels: the Gray profile does not apply
			}
		}
	}
	for i := 0; i < r.Dy(); i++ {
		row := dst.Pix[i*dst.Stride:][:w]
		for j := 0; j+4 <= len(row); j += 4 {
			v := t.gray[row[j]]
			row[j], row[j+1], row[j+2] = v, v, v
		}
	}
	return dst
}

// palettedToNRGBA converts the palette once (through t's RGB transform when
// t is not nil) and then looks pixels up. Indices past the palette are
// opaque black, as image/png pads short palettes.
func palettedToNRGBA(src *image.Paletted, dst *image.NRGBA, t *transform) {
	var pal [256][4]uint8
	for i := range pal {
		pal[i] = [4]uint8{0, 0, 0, 255}
		if i < len(src.Palette) && src.Palette[i] != nil {
			c := color.NRGBAModel.Convert(src.Palette[i]).(color.NRGBA)
			pal[i] = [4]uint8{c.R, c.G, c.B, c.A}
		}
		if t != nil {
			t.rgbRow(pal[i][:])
		}
	}
	r := src.Bounds()
	w := r.Dx()
	for y := r.Min.Y; y < r.Max.Y; y++ {
		in := src.Pix[src.PixOffset(r.Min.X, y):][:w]
		out := dst.Pix[(y-r.Min.Y)*dst.Stride:][:4*w]
		for i, v := range in {
			copy(out[4*i:4*i+4], pal[v][:])
		}
	}
}

// readRows writes img's pixels into dst (same bounds) as non-premultiplied
// 8-bit RGBA, identical to what color.NRGBAModel makes of img.At.
func readRows(img image.Image, dst *image.NRGBA) {
	r := img.Bounds()
	w := r.Dx()
	switch src := img.(type) {
	case *image.NRGBA:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			copy(dst.Pix[(y-r.Min.Y)*dst.Stride:][:4*w], src.Pix[src.PixOffset(r.Min.X, y):][:4*w])
		}
	case *image.RGBA:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			unpremultiply(dst.Pix[(y-r.Min.Y)*dst.Stride:][:4*w], src.Pix[src.PixOffset(r.Min.X, y):][:4*w])
		}
	case *image.YCbCr:
		readYCbCr(src, nil, dst)
	case *image.NYCbCrA:
		readYCbCr(&src.YCbCr, src, dst)
	default:
		for y := r.Min.Y; y < r.Max.Y; y++ {
			out := dst.Pix[(y-r.Min.Y)*dst.Stride:][:4*w]
			for i := 0; i < w; i++ {
				c := img.At(r.Min.X+i, y)
				if c == nil {
					continue
				}
				n := color.NRGBAModel.Convert(c).(color.NRGBA)
				out[4*i], out[4*i+1], out[4*i+2], out[4*i+3] = n.R, n.G, n.B, n.A
			}
		}
	}
}

// unpremultiply converts premultiplied RGBA to NRGBA with the arithmetic of
// color.NRGBAModel.
func unpremultiply(dst, src []uint8) {
	for i := 0; i+4 <= len(src) && i+4 <= len(dst); i += 4 {
		s := src[i : i+4 : i+4]
		d := dst[i : i+4 : i+4]
		switch a := uint32(s[3]); a {
		case 255:
			copy(d, s)
		case 0:
			d[0], d[1], d[2], d[3] = 0, 0, 0, 0
		default:
			d[0] = uint8((uint32(s[0]) * 0xffff / a) >> 8)
			d[1] = uint8((uint32(s[1]) * 0xffff / a) >> 8)
			d[2] = uint8((uint32(s[2]) * 0xffff / a) >> 8)
			d[3] = uint8(a)
		}
	}
}

// readYCbCr converts JFIF Y'CbCr (ITU-R BT.601 full range, the formula of
// the JFIF specification in 16.16 fixed point, rounded as color.YCbCrToRGB)
// to RGB, with alpha from a when it is not nil.
func readYCbCr(src *image.YCbCr, a *image.NYCbCrA, dst *image.NRGBA) {
	r := src.Bounds()
	w := r.Dx()
	// Chroma column of each pixel column, from the image's own indexing,
	// unless chroma is full width or shared by aligned pairs of pixels.
	hdiv := 0
	switch src.SubsampleRatio {
	case image.YCbCrSubsampleRatio444, image.YCbCrSubsampleRatio440:
		hdiv = 1
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		if r.Min.X >= 0 && r.Min.X%2 == 0 {
			hdiv = 2
		}
	}
	var cx []int
	if hdiv == 0 {
		c0 := src.COffset(r.Min.X, r.Min.Y)
		cx = make([]int, w)
		for i := range cx {
			cx[i] = src.COffset(r.Min.X+i, r.Min.Y) - c0
		}
	}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		yrow := src.Y[src.YOffset(r.Min.X, y):][:w]
		ci := src.COffset(r.Min.X, y)
		out := dst.Pix[(y-r.Min.Y)*dst.Stride:][:4*w]
		switch hdiv {
		case 1:
			ycbcrRow(out, yrow, src.Cb[ci:][:w], src.Cr[ci:][:w])
		case 2:
			n := (w + 1) / 2
			ycbcrRow2(out, yrow, src.Cb[ci:][:n], src.Cr[ci:][:n])
		default:
			cb, cr := src.Cb[ci:], src.Cr[ci:]
			for i, yv := range yrow {
				px := out[4*i : 4*i+4 : 4*i+4]
				px[0], px[1], px[2] = ycc(int32(yv), int32(cb[cx[i]])-128, int32(cr[cx[i]])-128)
				px[3] = 255
			}
		}
		if a != nil {
			arow := a.A[a.AOffset(r.Min.X, y):][:w]
			for i, v := range arow {
				out[4*i+3] = v
			}
		}
	}
}

func ycc(y, cb, cr int32) (uint8, uint8, uint8) {
	yy := y * 0x10101
	return clampShift(yy + 91881*cr), clampShift(yy - 22554*cb - 46802*cr), clampShift(yy + 116130*cb)
}

// ycbcrRow converts a row with one chroma sample per pixel.
func ycbcrRow(out, yrow, cb, cr []uint8) {
	for i := 0; i < len(yrow) && i < len(cb) && i < len(cr); i++ {
		px := out[4*i : 4*i+4 : 4*i+4]
		px[0], px[1], px[2] = ycc(int32(yrow[i]), int32(cb[i])-128, int32(cr[i])-128)
		px[3] = 255
	}
}

// ycbcrRow2 converts a row whose pixel pairs share a chroma sample,
// working out the chroma terms once per pair.
func ycbcrRow2(out, yrow, cb, cr []uint8) {
	for j := 0; j < len(cb) && j < len(cr); j++ {
		b1, r1 := int32(cb[j])-128, int32(cr[j])-128
		rc, gc, bc := 91881*r1, -22554*b1-46802*r1, 116130*b1
		for i := 2 * j; i < 2*j+2 && i < len(yrow); i++ {
			yy := int32(yrow[i]) * 0x10101
			px := out[4*i : 4*i+4 : 4*i+4]
			px[0], px[1], px[2], px[3] = clampShift(yy+rc), clampShift(yy+gc), clampShift(yy+bc), 255
		}
	}
}

// clampShift takes a 16.16 value to 0..255 without branches: noisy or
// saturated pictures would mispredict them.
func clampShift(v int32) uint8 {
	v >>= 16
	v &^= v >> 31        // negative: 0
	v |= (255 - v) >> 31 // above 255: all ones
	return uint8(v)
}
