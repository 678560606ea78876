package pdq

import (
	"image"
	"image/color"
	"runtime"
)

// Options select the hashing convention.
type Options struct {
	// Resize512 applies the reference command-line tool's pre-resize: an
	// image wider or taller than 512 px is first resized to exactly 512×512
	// by nearest neighbour. Off by default: HMA, the Java port and
	// pdqhash-python hash at full resolution, and so do the lists they feed.
	Resize512 bool
	// Dihedral also computes the eight dihedral variants.
	Dihedral bool
	// Workers bounds the goroutines the filter passes of a large image
	// are split over: 0 means up to GOMAXPROCS (at most 8), 1 keeps all
	// the work on the calling goroutine. A caller that hashes on a
	// lowered-priority thread wants 1: helper goroutines would run on
	// ordinary threads at full priority. The hash is the same either way.
	Workers int
	// Search selects the variants HashViewed adds to the forms (trimmed,
	// quadrants, negative, ...). The zero value, SearchOff, keeps the
	// reference convention.
	Search Search
}

// workers is how many goroutines hash a rows×cols image.
func (o Options) workers(rows, cols int) int {
	if rows*cols < parallelMinPixels {
		return 1
	}
	if o.Workers > 0 {
		return min(o.Workers, 8)
	}
	return min(runtime.GOMAXPROCS(0), 8)
}

// FromImage hashes a decoded image. Palette images are hashed from their
// colours, CMYK is converted to RGB, alpha is dropped (not composited) and
// greyscale images use the grey value as luma, as the reference does.
func FromImage(img image.Image, opt Options) Result {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	if w < MinDim || h < MinDim {
		return hashLuma(nil, nil, h, w, opt.Dihedral, 1)
	}
	rows, cols := h, w
	if opt.Resize512 && (w > 512 || h > 512) {
		rows, cols = 512, 512
	}
	s := getScratch()
	s.grow(rows * cols)
	workers := opt.workers(rows, cols)
	fillLuma(img, s.a, rows, cols, min(workers, 2))
	res := hashLuma(s.a, s.b, rows, cols, opt.Dihedral, workers)
	putScratch(s)
	return res
}

// fillLuma writes the rows×cols luma of img into dst. When rows×cols is
// smaller than the image, source pixels are picked by nearest neighbour
// (index floor(dst·W/512), exact in float64 as in the reference's CImg),
// which is the same as resizing RGB first since no pixel values are mixed.
func fillLuma(img image.Image, dst []float32, rows, cols, workers int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	xs := make([]int, cols)
	for j := range xs {
		xs[j] = b.Min.X + j*w/cols
	}
	parallel(rows, workers, func(r0, r1 int) {
		for i := r0; i < r1; i++ {
			y := b.Min.Y + i*h/rows
			lumaRow(img, y, xs, dst[i*cols:(i+1)*cols], cols == w)
		}
	})
}

func rgbLuma(r, g, b uint8) float32 {
	return float32(float32(lumaR*float32(r))+float32(lumaG*float32(g))) + float32(lumaB*float32(b))
}

// lumaRow fills one output row from source row y at columns xs; identity is
// true when xs is 0..w-1 so fast paths can walk the row directly.
func lumaRow(img image.Image, y int, xs []int, out []float32, identity bool) {
	switch m := img.(type) {
	case *image.YCbCr:
		yRow := m.Y[(y-m.Rect.Min.Y)*m.YStride:]
		cRow := ycbcrRowOffset(m, y)
		hs := ycbcrHShift(m.SubsampleRatio)
		for j, x := range xs {
			yy := yRow[x-m.Rect.Min.X]
			ci := cRow + ycbcrCol(x, m.Rect.Min.X, hs)
			r, g, b := color.YCbCrToRGB(yy, m.Cb[ci], m.Cr[ci])
			out[j] = rgbLuma(r, g, b)
		}
	case *image.Gray:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for j, x := range xs {
			out[j] = float32(row[x-m.Rect.Min.X])
		}
	case *image.Gray16:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for j, x := range xs {
			out[j] = float32(row[(x-m.Rect.Min.X)*2])
		}
	case *image.NRGBA:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for j, x := range xs {
			p := row[(x-m.Rect.Min.X)*4:]
			out[j] = rgbLuma(p[0], p[1], p[2])
		}
	case *image.RGBA:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for j, x := range xs {
			p := row[(x-m.Rect.Min.X)*4:]
			if p[3] == 0xff {
				out[j] = rgbLuma(p[0], p[1], p[2])
				continue
			}
			c := color.NRGBAModel.Convert(color.RGBA{p[0], p[1], p[2], p[3]}).(color.NRGBA)
			out[j] = rgbLuma(c.R, c.G, c.B)
		}
	case *image.Paletted:
		var pal [256]float32
		for i, c := range m.Palette {
			pal[i] = colorLuma(c)
		}
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for j, x := range xs {
			out[j] = pal[row[x-m.Rect.Min.X]]
		}
	case *image.CMYK:
		row := m.Pix[(y-m.Rect.Min.Y)*m.Stride:]
		for j, x := range xs {
			p := row[(x-m.Rect.Min.X)*4:]
			out[j] = colorLuma(color.CMYK{p[0], p[1], p[2], p[3]})
		}
	default:
		for j, x := range xs {
			out[j] = colorLuma(img.At(x, y))
		}
	}
}

// colorLuma converts any colour the way the expected vectors were made:
// to non-premultiplied 8-bit RGBA, alpha then ignored. Grey colours keep
// their value (the reference reads a one-channel image as luma directly).
func colorLuma(c color.Color) float32 {
	switch g := c.(type) {
	case color.Gray:
		return float32(g.Y)
	case color.Gray16:
		return float32(g.Y >> 8)
	}
	n := color.NRGBAModel.Convert(c).(color.NRGBA)
	return rgbLuma(n.R, n.G, n.B)
}

// ycbcrHShift is log2 of the horizontal chroma subsampling.
func ycbcrHShift(r image.YCbCrSubsampleRatio) int {
	switch r {
	case image.YCbCrSubsampleRatio422, image.YCbCrSubsampleRatio420:
		return 1
	case image.YCbCrSubsampleRatio411, image.YCbCrSubsampleRatio410:
		return 2
	}
	return 0
}

// ycbcrRowOffset and ycbcrCol split image.YCbCr.COffset into its row and
// column parts so the row part is computed once per row.
func ycbcrRowOffset(m *image.YCbCr, y int) int {
	switch m.SubsampleRatio {
	case image.YCbCrSubsampleRatio420, image.YCbCrSubsampleRatio440, image.YCbCrSubsampleRatio410:
		return (y/2 - m.Rect.Min.Y/2) * m.CStride
	}
	return (y - m.Rect.Min.Y) * m.CStride
}

func ycbcrCol(x, minX, shift int) int {
	switch shift {
	case 1:
		return x/2 - minX/2
	case 2:
		return x/4 - minX/4
	}
	return x - minX
}

// goTypeName names the concrete image type, as the vector files do.
func goTypeName(img image.Image) string {
	switch img.(type) {
	case *image.YCbCr:
		return "*image.YCbCr"
	case *image.Gray:
		return "*image.Gray"
	case *image.NRGBA:
		return "*image.NRGBA"
	case *image.RGBA:
		return "*image.RGBA"
	case *image.Paletted:
		return "*image.Paletted"
	case *image.CMYK:
		return "*image.CMYK"
	}
	return "other"
}

// coefficients runs the pipeline up to the 16×16 DCT (for tests that need to
// look at the coefficients rather than the bits).
func coefficients(img image.Image, opt Options) [16][16]float32 {
	b := img.Bounds()
	rows, cols := b.Dy(), b.Dx()
	if opt.Resize512 && (rows > 512 || cols > 512) {
		rows, cols = 512, 512
	}
	luma := make([]float32, rows*cols)
	tmp := make([]float32, rows*cols)
	fillLuma(img, luma, rows, cols, 1)
	for range numJaroszPasses {
		boxRows(luma, tmp, rows, cols, jaroszWindow(cols), 1)
		boxCols(tmp, luma, rows, cols, jaroszWindow(rows), 1)
	}
	var buf [64][64]float32
	decimate(luma, rows, cols, &buf)
	var coef [16][16]float32
	dct64To16(&buf, &coef)
	return coef
}
