package picture

import (
	"bytes"
	"errors"
	"fmt"
	"image/jpeg"
	"io"

	"github.com/mediaguard/mediaguard/hashing/picture/jpegx"
)

// jpegOrientation finds the first APP1 "Exif" segment before the image data
// and returns its orientation (1 when there is none).
func jpegOrientation(data []byte) int {
	o := 1
	jpegSegments(data, func(m byte, seg, _ []byte) bool {
		if m == 0xe1 && len(seg) >= 6 && string(seg[:6]) == "Exif\x00\x00" {
			o = exifOrientation(seg[6:])
			return false
		}
		return m != 0xda
	})
	return o
}

func configJPEG(r io.Reader) (int, int, error) {
	cfg, err := jpeg.DecodeConfig(r)
	if err != nil {
		return 0, 0, corruptf("jpeg", "header: %v", err)
	}
	return cfg.Width, cfg.Height, nil
}

// decodeJPEG uses image/jpeg, and the jpegFallback hook for what it refuses
// or for images too large to decode at full size.
func decodeJPEG(data []byte, l *limits) (*Picture, error) {
	orient := jpegOrientation(data)
	if jpegFallback != nil {
		// Every JPEG is checked first for samples decoders disagree on
		// (image/jpeg and jpegx clamp what libjpeg-turbo's integer IDCT
		// wraps): the check reads every coefficient of a sequential
		// file at full scale, which a reduced-scale decode does not. A
		// file it cannot read goes to the tolerant decoder, which checks
		// as it decodes, never unchecked to image/jpeg.
		chk := jpegx.CheckSamples(data, int(l.maxPixels))
		if errors.Is(chk, jpegx.ErrAmbiguous) {
			return nil, fmt.Errorf("%w: jpeg: %w", ErrCorrupt, chk)
		}
		if chk != nil || jpegWantsFallback(data) {
			return jpegViaFallback(data, l, orient, corruptf("jpeg", "decoded as libjpeg-turbo does"))
		}
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(data))
	if err == nil {
		if int64(cfg.Width)*int64(cfg.Height) > l.maxPixels {
			// Too big to decode in full: DCT scaling is both exact
			// enough for PDQ and far cheaper.
			ferr := fmt.Errorf("%w: jpeg is %dx%d, limit %d pixels", ErrTooManyPixels, cfg.Width, cfg.Height, l.maxPixels)
			if jpegFallback == nil {
				return nil, ferr
			}
			return jpegViaFallback(data, l, orient, ferr)
		}
		l.spend(int64(cfg.Width) * int64(cfg.Height))
		img, derr := jpeg.Decode(bytes.NewReader(data))
		if derr == nil {
			pic := still(img, 1, false)
			pic.Orientation = orient
			return pic, nil
		}
		err = derr
	}
	if jpegFallback == nil {
		return nil, corruptf("jpeg", "%v", err)
	}
	return jpegViaFallback(data, l, orient, corruptf("jpeg", "%v", err))
}

func jpegViaFallback(data []byte, l *limits, orient int, prior error) (*Picture, error) {
	img, scale, truncated, err := jpegFallback(bytes.NewReader(data), int(l.maxPixels))
	if err != nil || img == nil {
		if err == nil {
			return nil, prior
		}
		// %w keeps the decoder's kind (a crafted file) for the caller.
		return nil, fmt.Errorf("%w: jpeg: %w (image/jpeg: %v)", ErrCorrupt, err, prior)
	}
	b := img.Bounds()
	if err := l.fits("jpeg", b.Dx(), b.Dy()); err != nil {
		return nil, err
	}
	pic := still(img, scale, truncated)
	pic.Orientation = orient
	return pic, nil
}
