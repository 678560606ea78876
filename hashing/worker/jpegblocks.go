package worker

import (
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/picture"
	"github.com/mediaguard/mediaguard/hashing/picture/jpegx"
)

// hashJPEGBlocks hashes a plain JPEG from its luma's DCT blocks
// (pdq.BlockHasher): every form HashViewed would hash from its pixels
// (stored, displayed, the variants) at about the cost of entropy
// decoding, since no pixel is made. It declines (false) what needs
// pixels: a colour profile that changes what is shown (the
// colour-managed form is a function of colour, not of luma alone), the
// reference CLI's pre-resize, and every JPEG picture.JPEGLumaBlocks
// leaves to the pixel decoders; and pictures whose hash comes out below
// blocksMinQuality.
func hashJPEGBlocks(data []byte, dopt pdq.DecodeOptions, opt pdq.Options) (pdq.Result, bool) {
	if opt.Resize512 || picture.Sniff(data[:min(len(data), 64)]) != "jpeg" || embeddedProfile(data, "jpeg") != nil {
		return pdq.Result{}, false
	}
	var bh *pdq.BlockHasher
	ok := picture.JPEGLumaBlocks(data, picture.Options{MaxPixels: dopt.MaxPixels}, func(info jpegx.LumaInfo, orientation int) func(int, []float32, []uint8) {
		bh = pdq.NewBlockHasher(info.Width, info.Height, info.BlocksW, info.BlocksH, orientation, opt.Search != pdq.SearchOff)
		return bh.Row
	})
	if !ok || bh == nil {
		return pdq.Result{}, false
	}
	res := bh.Result(opt)
	if res.Quality < blocksMinQuality {
		return pdq.Result{}, false
	}
	return res, true
}

// blocksMinQuality is the quality under which a picture is hashed from
// its pixels after all. A low quality means a nearly flat picture, whose
// few weak gradients the decoder's per-pixel rounding shifts: there the
// block path's hash drifts 10 bits (median) from the pixels' where a
// photo's drifts 0. The matcher ignores such hashes by default
// (min_pdq_quality 50) but the review band does not, and the margin
// above 50 covers the quality's own small drift between the two paths.
const blocksMinQuality = 60
