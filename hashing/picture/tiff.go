package picture

import (
	"bytes"
	"io"

	"golang.org/x/image/tiff"
)

// TIFF through x/image/tiff (first image only, as viewers that show TIFF
// at all do), with the orientation tag of IFD0.

func configTIFF(r io.Reader) (int, int, error) {
	cfg, err := tiff.DecodeConfig(r)
	if err != nil {
		return 0, 0, corruptf("tiff", "header: %v", err)
	}
	return cfg.Width, cfg.Height, nil
}

func decodeTIFF(data []byte, l *limits) (*Picture, error) {
	cfg, err := tiff.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, corruptf("tiff", "header: %v", err)
	}
	if err := l.fits("tiff", cfg.Width, cfg.Height); err != nil {
		return nil, err
	}
	l.spend(int64(cfg.Width) * int64(cfg.Height))
	img, err := tiff.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, corruptf("tiff", "%v", err)
	}
	pic := still(img, 1, false)
	pic.Orientation = exifOrientation(data)
	return pic, nil
}
