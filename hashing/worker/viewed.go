package worker

import (
	"errors"
	"fmt"
	"io"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/picture"
)

// HashViewed decodes r as a viewer sees it (every format clients send,
// every frame, tolerant of what browsers tolerate) and hashes every form
// of it (pdq.HashViewed). Its errors wrap pdq's kinds, so callers branch
// on one set: pdq.ErrNotImage, pdq.ErrTooManyPixels, pdq.ErrCorrupt. It is
// what worker processes run for a request marked Viewed, and what the
// proxy runs in-process where no worker can.
func HashViewed(r io.ReadSeeker, dopt pdq.DecodeOptions, opt pdq.Options) (pdq.Result, string, error) {
	pic, err := picture.Decode(r, picture.Options{MaxPixels: dopt.MaxPixels})
	if err != nil {
		kind := pdq.ErrCorrupt
		switch {
		case errors.Is(err, picture.ErrNotImage):
			kind = pdq.ErrNotImage
		case errors.Is(err, picture.ErrTooManyPixels):
			kind = pdq.ErrTooManyPixels
		}
		format := ""
		if pic != nil {
			format = pic.Format
		}
		return pdq.Result{}, format, fmt.Errorf("%w: %v", kind, err)
	}
	if len(pic.Frames) == 0 {
		return pdq.Result{}, pic.Format, fmt.Errorf("%w: %s: no frame decoded", pdq.ErrCorrupt, pic.Format)
	}
	res := pdq.HashViewed(pdq.Viewed{Frames: pic.Frames, FrameIndex: pic.FrameIndex, Orientation: pic.Orientation}, opt)
	return res, pic.Format, nil
}
