package picture

import (
	"image"
	"io"

	"github.com/mediaguard/mediaguard/hashing/picture/jpegx"
)

// The tolerant decoder reads what image/jpeg refuses the way libjpeg-turbo
// (and so browsers) does: truncated files, renumbered restarts, missing
// Huffman tables, DNL, odd sampling; and decodes oversized ones at a
// reduced scale.
func init() {
	jpegFallback = func(r io.Reader, maxPixels int) (image.Image, int, bool, error) {
		res, err := jpegx.Decode(r, maxPixels)
		return res.Image, res.Scale, res.Truncated, err
	}
}
