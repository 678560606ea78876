package pdq

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"io"

	// Decoders for every image format Matrix clients commonly upload.
	_ "image/gif"
	_ "image/jpeg"
	_ "image/png"

	_ "golang.org/x/image/bmp"
	_ "golang.org/x/image/tiff"
	_ "golang.org/x/image/webp"
)

// DefaultMaxPixels bounds the decoded size (50 megapixels): a few hundred
// bytes of PNG can declare a 100000×100000 canvas, and decoding allocates
// for the declared size.
const DefaultMaxPixels = 50_000_000

// Typed errors. Callers branch on them with errors.Is: an unknown format is
// "not an image" (unscannable), the others are bad or hostile input.
var (
	// ErrNotImage: no registered decoder recognises the bytes.
	ErrNotImage = errors.New("pdq: not a decodable image")
	// ErrTooManyPixels: the header declares more pixels than allowed.
	ErrTooManyPixels = errors.New("pdq: image has too many pixels")
	// ErrCorrupt: the header was readable but the body is truncated or invalid.
	ErrCorrupt = errors.New("pdq: corrupt or truncated image")
	// ErrCrafted is an ErrCorrupt no encoder writes: what the file shows
	// depends on the decoder (samples past what decoders agree on), or
	// it is built to make a decoder give up (a work bound). Callers that
	// skip a picture they cannot decode (one carved out of a container)
	// must not skip this one: the listed picture may be what some viewer
	// shows.
	ErrCrafted = fmt.Errorf("%w: crafted so that what it shows depends on the decoder", ErrCorrupt)
)

// DecodeOptions bound decoding.
type DecodeOptions struct {
	// MaxPixels refuses images whose header declares more pixels than
	// this before any pixel memory is allocated. 0 means DefaultMaxPixels.
	MaxPixels int
	// Viewed asks a hashing worker to decode as a viewer sees the picture
	// (hashing/picture) and hash every form (HashViewed) rather than the
	// reference convention alone. Decode itself ignores it.
	Viewed bool
	// Exact, with Viewed, hashes a JPEG from its decoded pixels, as the
	// reference does, rather than from its DCT blocks (BlockHasher):
	// the same filter and clamping without the decoder's rounding, for
	// a fraction of the cost. Decode ignores it.
	Exact bool
}

// CheckHeader reads only r's image header and says whether Decode could
// go ahead: ErrNotImage for bytes of no known image format, ErrCorrupt for
// an unreadable header, ErrTooManyPixels above the limit, nil otherwise.
// It costs a few kilobytes of reading, so callers can turn away encrypted
// attachments and bombs before queueing for the expensive decode. r is
// left where it was.
func CheckHeader(r io.ReadSeeker, opt DecodeOptions) (format string, err error) {
	maxPixels := opt.MaxPixels
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	start, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return "", err
	}
	defer func() {
		if _, serr := r.Seek(start, io.SeekStart); serr != nil && err == nil {
			err = serr
		}
	}()
	cfg, format, err := image.DecodeConfig(r)
	if err != nil {
		if errors.Is(err, image.ErrFormat) {
			return "", ErrNotImage
		}
		return format, fmt.Errorf("%w: %s header: %v", ErrCorrupt, orUnknown(format), err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 {
		return format, fmt.Errorf("%w: %s declares %dx%d", ErrCorrupt, format, cfg.Width, cfg.Height)
	}
	if int64(cfg.Width)*int64(cfg.Height) > int64(maxPixels) {
		return format, fmt.Errorf("%w: %s is %dx%d, limit %d pixels", ErrTooManyPixels, format, cfg.Width, cfg.Height, maxPixels)
	}
	return format, nil
}

// Decode reads only the image header first and refuses images above the
// pixel limit, then decodes. r must be seekable (a bytes.Reader or the
// spool file) so the header can be read twice without buffering the body.
// It returns the format name ("jpeg", "png", ...).
func Decode(r io.ReadSeeker, opt DecodeOptions) (img image.Image, format string, err error) {
	if format, err := CheckHeader(r, opt); err != nil {
		return nil, format, err
	}
	img, format, err = decodeNoPanic(r)
	if err != nil {
		return nil, format, fmt.Errorf("%w: %s: %v", ErrCorrupt, orUnknown(format), err)
	}
	// A decoder that trusted a different size than its header said would
	// defeat the limit; refuse rather than hash something unexpected.
	maxPixels := opt.MaxPixels
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	if b := img.Bounds(); int64(b.Dx())*int64(b.Dy()) > int64(maxPixels) {
		return nil, format, fmt.Errorf("%w: %s decoded to %dx%d", ErrTooManyPixels, format, b.Dx(), b.Dy())
	}
	return img, format, nil
}

// decodeNoPanic turns a decoder panic (a bug in a third-party decoder on
// hostile input) into an error: one bad upload must not take the proxy down.
func decodeNoPanic(r io.Reader) (img image.Image, format string, err error) {
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, fmt.Errorf("decoder panic: %v", p)
		}
	}()
	return image.Decode(r)
}

func orUnknown(f string) string {
	if f == "" {
		return "image"
	}
	return f
}

// HashReader decodes and hashes an image read from r.
func HashReader(r io.ReadSeeker, dopt DecodeOptions, opt Options) (Result, string, error) {
	img, format, err := Decode(r, dopt)
	if err != nil {
		return Result{}, format, err
	}
	return FromImage(img, opt), format, nil
}

// HashBytes decodes and hashes an encoded image.
func HashBytes(b []byte, dopt DecodeOptions, opt Options) (Result, string, error) {
	return HashReader(bytes.NewReader(b), dopt, opt)
}
