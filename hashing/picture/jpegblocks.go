package picture

import "github.com/mediaguard/mediaguard/hashing/picture/jpegx"

// JPEGLumaBlocks hands the luma of a JPEG to the function start returns,
// as dequantised 8×8 DCT blocks (jpegx.LumaBlocks), for a caller that
// computes linear functions of the luma (a PDQ hash) without pixels.
// start is told the geometry and the EXIF orientation a viewer applies.
//
// It takes only the JPEGs Decode would give Go's image/jpeg, whose luma
// is then the picture's: plain YCbCr or greyscale, whole (not truncated),
// within opt.MaxPixels. For any other input it reports false, and rows
// it may have handed over must be discarded: the caller decodes the
// pixels with Decode, which judges the file as before.
func JPEGLumaBlocks(data []byte, opt Options, start func(info jpegx.LumaInfo, orientation int) func(by int, blocks []float32, rows []uint8)) bool {
	if Sniff(data[:min(len(data), sniffLen)]) != "jpeg" || jpegWantsFallback(data) {
		return false
	}
	l := newLimits(opt)
	orient := jpegOrientation(data)
	truncated, err := jpegx.LumaBlocks(data, int(l.maxPixels), func(info jpegx.LumaInfo) func(int, []float32, []uint8) {
		return start(info, orient)
	})
	return err == nil && !truncated
}
