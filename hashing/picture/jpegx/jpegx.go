// Package jpegx is a tolerant JPEG decoder for the scanning hot path.
//
// It exists because Go's image/jpeg refuses files that browsers (which use
// libjpeg-turbo) display: truncated entropy data, broken restart markers,
// Motion-JPEG frames without Huffman tables, DNL-sized frames, duplicate
// component IDs, odd sampling factors, 4-component files without an Adobe
// marker. An attacker who uploads such a file gets a picture on screen
// while a strict decoder says "corrupt", so the scanner must see what the
// browser sees. jpegx is written from ITU T.81 and from libjpeg-turbo's
// documented behaviour, and mimics libjpeg-turbo's recovery wherever the
// two differ.
//
// It also decodes at 1/2, 1/4 or 1/8 scale straight from the DCT
// coefficients, which is how a big photo gets hashed cheaply.
//
// # What it decodes
//
//   - Huffman baseline, extended and progressive (spectral selection and
//     successive approximation); arithmetic sequential and progressive
//     (SOF9, SOF10, DAC); lossless Huffman (SOF3, all predictors).
//   - 8- and 12-bit samples (12-bit is brought to 8); lossless 2..16 bits.
//   - 1, 3 or 4 components, sampling factors 1..4 in any combination,
//     including ones libjpeg-turbo refuses (fractional ratios, more than
//     10 blocks per MCU): components are replicated to full resolution.
//   - Colour as libjpeg-turbo decides it: JFIF → YCbCr; else Adobe APP14
//     transform 0 → RGB/CMYK, 1 → YCbCr, 2 → YCCK; else IDs 'R','G','B'
//     → RGB, otherwise YCbCr; 4 components without Adobe → CMYK. CMYK and
//     YCCK become RGB the way Chromium and Firefox show libjpeg-turbo's
//     output: as Adobe-inverted CMYK (R = C·K/255), with or without the
//     marker.
//
// # Recovery
//
//   - Data that ends (or hits an unexpected marker) mid-scan: what is
//     there is decoded and the rest of the scan left at zero coefficients,
//     mid-grey, with Result.Truncated set; a missing EOI is no error.
//   - Restart markers: any RSTn found where an interval ends is taken as
//     the restart, whatever its number; garbage before an RSTn is skipped;
//     a dropped RSTn is recognised (data carries on and the next marker is
//     the one after) and the interval decoded in place rather than lost.
//   - No DHT: tables 0 and 1 default to T.81 Annex K.3, as for MJPEG.
//   - Height 0 in the frame header: the DNL segment's height is used.
//   - Duplicate component IDs are renamed as libjpeg-turbo does (largest
//     so far + 1, in the frame and within each scan), which matches
//     components to scans by order.
//
// Where libjpeg-turbo does worse, jpegx decodes more: renumbered or
// dropped restart markers (libjpeg-turbo loses the intervals), DNL
// (libjpeg-turbo refuses), truncated arithmetic data (libjpeg-turbo turns
// the zero fill into noise; here it is grey). Not done: libjpeg-turbo's
// inter-block smoothing of progressive files whose AC data is missing, so
// such a file looks blockier here; and arithmetic lossless (SOF11) and
// hierarchical (SOF5-7, 13-15) JPEG, which are refused.
//
// # Bounds
//
// Frames over maxPixels even at 1/8, with over 4 components, or whose
// coefficient store would be absurd for the output size are refused
// before any allocation. Entropy decoding stops with ErrWorkBound once
// the blocks visited across all scans reach 64 times the frame's blocks
// (or after 4096 scans), so a file of thousands of empty progressive
// scans costs work proportional to its pixels and is refused rather than
// shown half-decoded. A progressive decode at 1/8 skips AC scans entirely; at 1/4
// and 1/2 only coefficients it uses are stored. Single-scan sequential
// files stream through the IDCT one MCU row at a time. Panics are
// recovered and returned as ErrCorrupt.
package jpegx

import (
	"errors"
	"fmt"
	"image"
	"io"
)

// DefaultMaxPixels is the output bound used when Decode is given 0.
const DefaultMaxPixels = 50_000_000

// Result is a decoded picture.
type Result struct {
	// Image is *image.Gray, *image.YCbCr or *image.RGBA (RGB, CMYK and
	// YCCK files, converted to RGB as libjpeg-turbo plus a browser show
	// them).
	Image image.Image
	// Scale is 1, 2, 4 or 8: the picture was decoded at 1/Scale of the
	// frame's size by DCT scaling.
	Scale int
	// Truncated says the data ended early: blocks with no data are
	// mid-grey, as libjpeg-turbo leaves them. (The work bound is an
	// error, ErrWorkBound, not a truncation.)
	Truncated bool
}

// Errors. Decode wraps them with detail; test with errors.Is.
var (
	// ErrNotJPEG: the data does not start with an SOI marker.
	ErrNotJPEG = errors.New("jpegx: not a JPEG")
	// ErrTooBig: even a 1/8 decode would exceed maxPixels, or the frame
	// is absurd.
	ErrTooBig = errors.New("jpegx: image too big")
	// ErrUnsupported: a JPEG process or layout this decoder does not do.
	ErrUnsupported = errors.New("jpegx: unsupported JPEG")
	// ErrCorrupt: the headers are unusable.
	ErrCorrupt = errors.New("jpegx: corrupt JPEG")
	// ErrWorkBound: entropy decoding reached the work bound (blocks
	// visited across all scans, or the number of scans) before the data
	// ended. No encoder writes such a file: it is crafted to hold a
	// decoder, and what was decoded when it stopped is not what a viewer
	// that kept going would show, so no picture is returned. Callers
	// judge it undecodable (mediaguard's on_undecodable_image), never
	// clean (issue #12: a pathological image cut off by its budget is
	// never judged as a truncated picture).
	ErrWorkBound = errors.New("jpegx: work bound reached")
	// ErrAmbiguous: a block's samples reach further past 0..255 than any
	// 8-bit picture's coefficients can (sampleLimit). No encoder writes
	// such a block, and decoders disagree on what it shows:
	// libjpeg-turbo's integer IDCT (Chrome, Firefox, Android) wraps it
	// (a grey block coded at 1200 shows black, at −900 white) where its
	// float IDCT, Go's image/jpeg and this decoder clamp. A file that
	// shows one picture in some viewers and another in others is judged
	// undecodable (mediaguard's on_undecodable_image), never by either
	// reading.
	ErrAmbiguous = errors.New("jpegx: samples past what any decoder agrees on")
)

func corrupt(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrCorrupt}, a...)...)
}

func unsupported(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, a...)...)
}

// Decode decodes r. maxPixels bounds the OUTPUT pixels: when the frame
// declares more, Decode picks the smallest Scale in {1,2,4,8} whose output
// fits, and fails only if even 1/8 does not fit. 0 means DefaultMaxPixels.
func Decode(r io.Reader, maxPixels int) (Result, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return Result{}, fmt.Errorf("jpegx: reading: %w", err)
	}
	return DecodeBytes(data, maxPixels)
}

// DecodeBytes is Decode for data already in memory; data is not retained
// or modified.
func DecodeBytes(data []byte, maxPixels int) (res Result, err error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	defer func() {
		// A decoder bug must cost one file, not the proxy.
		if !recoverPanics {
			return
		}
		if p := recover(); p != nil {
			res = Result{}
			err = fmt.Errorf("%w: internal decoder error: %v", ErrCorrupt, p)
		}
	}()
	d := &decoder{data: data, maxPixels: maxPixels}
	return d.decode()
}

// recoverPanics is switched off by the fuzz test so that panics surface.
var recoverPanics = true

// DecodeConfig reads only the headers up to the frame and returns the
// frame's full size (not scaled).
func DecodeConfig(data []byte) (width, height, components int, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: internal decoder error: %v", ErrCorrupt, p)
		}
	}()
	d := &decoder{data: data, maxPixels: DefaultMaxPixels, headerOnly: true}
	_, err = d.decode()
	if d.frame {
		return d.width, d.height, len(d.comps), nil
	}
	if err == nil {
		err = corrupt("no frame header")
	}
	return 0, 0, 0, err
}
