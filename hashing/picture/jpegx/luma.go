package jpegx

// Luma blocks: the JPEG's luma handed over as dequantised DCT blocks, for
// a consumer that only needs linear functions of the luma (PDQ's filter
// and decimation, an area-averaged thumbnail) and can compute them from
// the coefficients without an inverse DCT. The chroma is decoded only to
// bound each block: a block whose pixels a decoder would clamp is handed
// over as the transform of its clamped luma (lumaclip.go).

// LumaInfo describes the luma plane LumaBlocks is about to hand over.
type LumaInfo struct {
	// Width and Height are the picture's size in pixels.
	Width, Height int
	// BlocksW and BlocksH are the luma's 8×8 blocks, padding included:
	// every row handed over holds BlocksW blocks.
	BlocksW, BlocksH int
}

// LumaBlocks entropy-decodes data and hands its luma, one row of 8×8
// blocks at a time in order, to the function start returns: each block
// is 64 dequantised coefficients in natural (row-major) order, without
// the level shift of 128; rows[bx] has bit v set when row v of block bx
// holds a nonzero coefficient (most do not: the consumer skips them).
// Both slices are reused after the call. Rows
// the data never reached are not handed over: their coefficients are
// zero, mid-grey, as libjpeg-turbo leaves them.
//
// It only takes the JPEGs whose luma is the picture's luma as 8-bit
// samples at full resolution: greyscale, or YCbCr (by libjpeg-turbo's
// rules) whose first component has the largest sampling factors and
// whose Cb and Cr are sampled alike, 8-bit Huffman or arithmetic,
// sequential or progressive, no larger than maxPixels. Anything else is
// ErrUnsupported, and the caller decodes the pixels. truncated reports
// data that ended early.
func LumaBlocks(data []byte, maxPixels int, start func(LumaInfo) func(by int, blocks []float32, rows []uint8)) (truncated bool, err error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	defer func() {
		if !recoverPanics {
			return
		}
		if p := recover(); p != nil {
			truncated = false
			err = corrupt("internal decoder error: %v", p)
		}
	}()
	d := &decoder{data: data, maxPixels: maxPixels, lumaStart: start}
	res, err := d.decode()
	return res.Truncated, err
}

// lumaEligible refuses, at the first scan (the colour space is decided
// by the markers before it), what LumaBlocks does not take; setupFrame
// already refused lossless and 12-bit frames.
func (d *decoder) lumaEligible() error {
	d.decideColorSpace()
	c := &d.comps[0]
	switch {
	case d.colorSpace != csGray && d.colorSpace != csYCbCr:
		return unsupported("luma blocks of a JPEG that is not YCbCr or greyscale")
	case c.h != d.hmax || c.v != d.vmax:
		return unsupported("luma blocks of a JPEG whose luma is subsampled")
	case len(d.comps) == 3 && (d.hmax%d.comps[1].h != 0 || d.vmax%d.comps[1].v != 0 || d.hmax%d.comps[2].h != 0 || d.vmax%d.comps[2].v != 0):
		return unsupported("luma blocks of a JPEG with fractional chroma sampling")
	case len(d.comps) == 3 && (d.comps[1].h != d.comps[2].h || d.comps[1].v != d.comps[2].v):
		return unsupported("luma blocks of a JPEG whose Cb and Cr are sampled differently")
	case d.scale != 1:
		return unsupported("luma blocks of a JPEG over the pixel limit")
	}
	d.lumaBuf = make([]float32, c.bw*64)
	d.lumaRows = make([]uint8, c.bw)
	d.lumaRow = d.lumaStart(LumaInfo{Width: d.width, Height: d.height, BlocksW: c.bw, BlocksH: c.bh})
	return nil
}

// emitLuma hands over nrows block rows of the luma held in coef,
// starting at block row by0.
func (d *decoder) emitLuma(coef []int16, by0, nrows int) {
	c := &d.comps[0]
	if !d.clip.ready {
		d.clipSetup()
	}
	q := &d.clip.q[0]
	for r := range nrows {
		row := coef[r*c.bw*64 : (r+1)*c.bw*64]
		buf := d.lumaBuf
		for i := 0; i < len(row); i += 64 {
			src := (*[64]int16)(row[i : i+64])
			dst := (*[64]float32)(buf[i : i+64])
			var m uint8
			y := span{c: float32(src[0]) * q[0] / 8}
			for v := range 8 {
				s := (*[8]int16)(src[v*8:])
				if s[0]|s[1]|s[2]|s[3]|s[4]|s[5]|s[6]|s[7] == 0 {
					continue
				}
				m |= 1 << v
				for u := range 8 {
					f := float32(s[u]) * q[v*8+u]
					dst[v*8+u] = f
					if v|u != 0 {
						y.r += abs32(f) * bnd[v*8+u]
					}
				}
			}
			if y.c+y.r > sampleLimit || y.c-y.r < -sampleLimit {
				if err := d.checkSamples(0, src[:]); err != nil {
					d.ambiguous, d.stopped = err, true
					return
				}
			}
			if d.mayClip(i/64, by0+r, y) {
				m = d.fix(src[:], i/64, by0+r, dst, m)
			}
			d.lumaRows[i/64] = m
		}
		d.lumaRow(by0+r, buf, d.lumaRows)
	}
}

// finishLuma ends a luma-blocks decode: a stored (progressive or
// multi-scan) luma is handed over now; a streamed one already was.
func (d *decoder) finishLuma() (Result, error) {
	c := &d.comps[0]
	if d.lumaRow == nil {
		return Result{}, corrupt("no scan carries the luma")
	}
	for i := range d.comps {
		// A component never decoded is mid-grey here as in the pixels,
		// but the picture is not whole: the caller decodes pixels.
		if !d.comps[i].scanned || (d.progressive && !d.comps[i].dcSeen) {
			d.truncated = true
		}
	}
	if !d.streaming {
		d.emitLuma(c.coef, 0, c.bh)
	}
	if d.ambiguous != nil {
		return Result{}, d.ambiguous
	}
	return Result{Scale: 1, Truncated: d.truncated}, nil
}
