// Package picture decodes image bytes the way a viewer (a browser, a phone's
// gallery) shows them, not the way Go's strict standard decoders accept them.
//
// An attacker who wants a listed picture past a hash filter sends it in a
// form that viewers still display but a strict decoder refuses: a PNG with a
// bad CRC, a truncated GIF, an animated WebP, a BMP with RLE compression, a
// HEIC from a phone. Each decoder here is tolerant where viewers are
// tolerant, and bounded where a hostile file could make it allocate or spin:
// declared sizes are checked before any pixel memory is allocated, and every
// format has a work budget.
//
// The package has no dependency on the rest of mediaguard.
package picture

import (
	"errors"
	"fmt"
	"image"
	"io"
	"math"
	"runtime/debug"
	"sort"
)

// Typed errors; callers branch on them with errors.Is.
var (
	// ErrNotImage: the bytes are no image format we know (ciphertext, text,
	// video...).
	ErrNotImage = errors.New("picture: not an image")
	// ErrTooManyPixels: the image is larger than Options allow and the
	// format offers no reduced-scale decode.
	ErrTooManyPixels = errors.New("picture: image has too many pixels")
	// ErrCorrupt: an image by its bytes that could not be decoded at all.
	ErrCorrupt = errors.New("picture: corrupt image")
)

// Defaults for Options' zero values.
const (
	DefaultMaxPixels = 50_000_000
	DefaultMaxFrames = 32
)

// Options bound decoding. The zero value is usable.
type Options struct {
	// MaxPixels bounds each decoded frame; 0 means DefaultMaxPixels. A
	// larger image is decoded at a reduced scale where the format allows
	// (PNG, GIF, BMP, ICO; JPEG through the fallback hook), else Decode
	// returns ErrTooManyPixels.
	MaxPixels int
	// MaxFrames bounds the animation frames returned; 0 means
	// DefaultMaxFrames. Longer animations are sampled evenly, first and
	// last frame included.
	MaxFrames int
	// MaxTotalPixels bounds the pixels of all returned frames together;
	// 0 means 4*MaxPixels. It also sets the work budget: no input makes
	// Decode process more than 4*MaxTotalPixels source pixels.
	MaxTotalPixels int
}

// Picture is what a viewer shows.
type Picture struct {
	// Format is the format by the bytes: "jpeg", "png", "gif", "webp",
	// "bmp", "tiff", "ico", "avif", "heic".
	Format string
	// Frames are the displayed frames in order. Frames[0] is the default
	// (first) image; for an animation each frame is composited onto the
	// canvas as a viewer shows it at that point, disposal and blending
	// applied. Frames keep their alpha: the caller composites.
	Frames []image.Image
	// FrameIndex is the animation frame number of each entry in Frames
	// (sampling may skip some). It is -1 for a default image that is not
	// part of its animation (an APNG whose IDAT image precedes the first
	// fcTL: viewers without APNG support show it, APNG viewers do not).
	FrameIndex []int
	// Orientation is the EXIF/container orientation 1..8 that a viewer
	// applies; 1 means none. It is NOT applied to Frames. (HEIC is the
	// exception by necessity: its decoder applies irot/imir itself, so
	// HEIC frames come out as displayed and Orientation is 1.)
	Orientation int
	// Truncated says the data ended (or was unreadable, or the work budget
	// ran out) before the whole picture was decoded: Frames hold what could
	// be decoded, undecoded areas are transparent or black.
	Truncated bool
	// Scale is 1 for full size, N when decoded at 1/N in each dimension
	// because the image has more than MaxPixels.
	Scale int
}

// jpegFallback, when set, decodes JPEGs that image/jpeg refuses (or that are
// too large for it: it is then asked to decode at a reduced scale so that at
// most maxPixels remain). It returns the image, the scale it decoded at
// (1 = full size), and whether the data ended early.
var jpegFallback func(r io.Reader, maxPixels int) (image.Image, int, bool, error)

// limits are the normalized Options plus the running work budget.
type limits struct {
	maxPixels int64
	maxFrames int
	maxTotal  int64
	work      int64 // source pixels left to process
}

func newLimits(opt Options) *limits {
	l := &limits{maxPixels: int64(opt.MaxPixels), maxFrames: opt.MaxFrames, maxTotal: int64(opt.MaxTotalPixels)}
	if l.maxPixels <= 0 {
		l.maxPixels = DefaultMaxPixels
	}
	if l.maxFrames <= 0 {
		l.maxFrames = DefaultMaxFrames
	}
	if l.maxTotal <= 0 {
		l.maxTotal = 4 * l.maxPixels
	}
	if l.maxTotal < l.maxPixels {
		l.maxTotal = l.maxPixels
	}
	l.work = 4 * l.maxTotal
	return l
}

// spend takes n source pixels off the work budget and says whether there
// was enough.
func (l *limits) spend(n int64) bool {
	if n < 0 || n > l.work {
		l.work = 0
		return false
	}
	l.work -= n
	return true
}

// scaleFor returns the smallest N such that a w×h image decoded at 1/N has
// at most maxPixels pixels. Images too big to even walk through within the
// work budget get ErrTooManyPixels.
func (l *limits) scaleFor(format string, w, h int) (int, error) {
	if w <= 0 || h <= 0 {
		return 0, corruptf(format, "declares %dx%d", w, h)
	}
	total := int64(w) * int64(h)
	if total <= l.maxPixels {
		return 1, nil
	}
	if total > l.work {
		return 0, fmt.Errorf("%w: %s is %dx%d, beyond the work budget even at reduced scale", ErrTooManyPixels, format, w, h)
	}
	n := int(math.Sqrt(float64(total) / float64(l.maxPixels)))
	if n < 2 {
		n = 2
	}
	for int64(ceilDiv(w, n))*int64(ceilDiv(h, n)) > l.maxPixels {
		n++
	}
	return n, nil
}

// fits refuses a full-size-only decode over the pixel limit. Formats with
// no reduced-scale decoder (WebP, TIFF, AVIF, HEIC) may use the whole
// frame budget, MaxTotalPixels: refusing a big phone HEIC outright would
// refuse ordinary photos, while the budget still bounds a bomb.
func (l *limits) fits(format string, w, h int) error {
	if w <= 0 || h <= 0 {
		return corruptf(format, "declares %dx%d", w, h)
	}
	if int64(w)*int64(h) > l.maxTotal {
		return fmt.Errorf("%w: %s is %dx%d, limit %d pixels", ErrTooManyPixels, format, w, h, l.maxTotal)
	}
	return nil
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

func corruptf(format, msg string, args ...any) error {
	if format == "" {
		format = "image"
	}
	return fmt.Errorf("%w: %s: %s", ErrCorrupt, format, fmt.Sprintf(msg, args...))
}

// sniffLen is how many leading bytes Sniff needs to tell every format apart
// (an ISO-BMFF ftyp box lists its compatible brands; 4 KiB covers any sane
// one).
const sniffLen = 4096

// Sniff returns the format name if head (the first bytes of a file, up to
// 4 KiB are looked at) is an image format this package recognises, else "".
// It goes by magic bytes only, never by a declared content type. "jxl" is
// recognised but cannot be decoded here.
func Sniff(head []byte) string {
	b := head
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "jpeg"
	case hasPrefix(b, "\x89PNG\r\n\x1a\n"):
		return "png"
	case hasPrefix(b, "GIF87a"), hasPrefix(b, "GIF89a"):
		return "gif"
	case len(b) >= 12 && hasPrefix(b, "RIFF") && string(b[8:12]) == "WEBP":
		return "webp"
	case hasPrefix(b, "BM") && len(b) >= 18:
		// "BM" alone would claim one in 65536 random files: require a
		// DIB header size that exists.
		switch le32(b[14:]) {
		case 12, 16, 40, 52, 56, 64, 108, 124:
			return "bmp"
		}
		return ""
	case hasPrefix(b, "II*\x00"), hasPrefix(b, "MM\x00*"):
		return "tiff"
	case len(b) >= 6 && b[0] == 0 && b[1] == 0 && (b[2] == 1 || b[2] == 2) && b[3] == 0 && (b[4] != 0 || b[5] != 0):
		if len(b) >= 22 && b[9] != 0 { // directory entry's reserved byte must be 0
			return ""
		}
		return "ico"
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0x0A:
		return "jxl"
	case hasPrefix(b, "\x00\x00\x00\x0cJXL \r\n\x87\n"):
		return "jxl"
	case len(b) >= 12 && string(b[4:8]) == "ftyp":
		return sniffFtyp(b)
	}
	return ""
}

func hasPrefix(b []byte, p string) bool {
	return len(b) >= len(p) && string(b[:len(p)]) == p
}

// sniffFtyp tells AVIF from HEIC by the ftyp box's major and compatible
// brands (a file can list both; AVIF wins only when it is named).
func sniffFtyp(b []byte) string {
	size := int(be32(b))
	if size < 16 || size > len(b) {
		size = min(len(b), sniffLen)
	}
	brands := []string{string(b[8:12])}
	for i := 16; i+4 <= size; i += 4 {
		brands = append(brands, string(b[i:i+4]))
	}
	heif := false
	for _, br := range brands {
		switch br {
		case "avif", "avis":
			return "avif"
		case "heic", "heix", "heim", "heis", "hevc", "hevx", "hevm", "hevs", "mif1", "msf1", "mif2":
			heif = true
		}
	}
	if heif {
		return "heic"
	}
	return ""
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}
func be16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }
func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}
func le16(b []byte) uint16 { return uint16(b[0]) | uint16(b[1])<<8 }
func le24(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }

// readHead reads up to n bytes from r's current position and seeks back.
func readHead(r io.ReadSeeker, n int) ([]byte, int64, error) {
	start, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, 0, err
	}
	head := make([]byte, n)
	m, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, start, err
	}
	if _, err := r.Seek(start, io.SeekStart); err != nil {
		return nil, start, err
	}
	return head[:m], start, nil
}

// Decode decodes the picture in r (from its current position) as a viewer
// shows it. It reads the first bytes to recognise the format (ErrNotImage
// for anything else, without reading further), then reads the rest into
// memory. It never panics: a decoder bug on hostile input comes back as an
// error wrapping ErrCorrupt.
func Decode(r io.ReadSeeker, opt Options) (pic *Picture, err error) {
	head, _, err := readHead(r, sniffLen)
	if err != nil {
		return nil, err
	}
	format := Sniff(head)
	if format == "" {
		return nil, ErrNotImage
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return decodeBytes(data, format, newLimits(opt))
}

// DecodeBytes is Decode on a file already in memory, without copying it.
func DecodeBytes(data []byte, opt Options) (*Picture, error) {
	format := Sniff(data[:min(len(data), sniffLen)])
	if format == "" {
		return nil, ErrNotImage
	}
	return decodeBytes(data, format, newLimits(opt))
}

// decodeBytes runs one format's decoder under recover.
func decodeBytes(data []byte, format string, l *limits) (pic *Picture, err error) {
	defer func() {
		if p := recover(); p != nil {
			pic = nil
			stack := debug.Stack()
			if len(stack) > 2048 {
				stack = stack[:2048]
			}
			err = fmt.Errorf("%w: %s decoder panic: %v\n%s", ErrCorrupt, format, p, stack)
		}
	}()
	switch format {
	case "jpeg":
		pic, err = decodeJPEG(data, l)
	case "png":
		pic, err = decodePNG(data, l)
	case "gif":
		pic, err = decodeGIF(data, l)
	case "webp":
		pic, err = decodeWebP(data, l)
	case "bmp":
		pic, err = decodeBMPFile(data, l)
	case "tiff":
		pic, err = decodeTIFF(data, l)
	case "ico":
		pic, err = decodeICO(data, l)
	case "avif", "heic":
		pic, err = decodeHEIF(data, format, l)
	case "jxl":
		err = corruptf("jxl", "JPEG XL is recognised but has no decoder here")
	default:
		err = ErrNotImage
	}
	if err != nil {
		return nil, err
	}
	if pic == nil || len(pic.Frames) == 0 || len(pic.Frames) != len(pic.FrameIndex) {
		return nil, corruptf(format, "no frame decoded")
	}
	pic.Format = format
	if pic.Orientation < 1 || pic.Orientation > 8 {
		pic.Orientation = 1
	}
	if pic.Scale < 1 {
		pic.Scale = 1
	}
	return pic, nil
}

// DecodeConfig reads only the header of the picture in r and returns its
// format and size (the size Decode's first frame has at full scale, before
// orientation). It reads a few kilobytes at most (TIFF, JPEG and ICO may
// seek further) and leaves r at the position it started from.
func DecodeConfig(r io.ReadSeeker) (format string, width, height int, err error) {
	head, start, err := readHead(r, sniffLen)
	if err != nil {
		return "", 0, 0, err
	}
	format = Sniff(head)
	if format == "" {
		return "", 0, 0, ErrNotImage
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: %s header panic: %v", ErrCorrupt, format, p)
		}
		if _, serr := r.Seek(start, io.SeekStart); serr != nil && err == nil {
			err = serr
		}
	}()
	switch format {
	case "jpeg":
		width, height, err = configJPEG(r)
	case "png":
		width, height, err = configPNG(head)
	case "gif":
		width, height, err = configGIF(r)
	case "webp":
		width, height, err = configWebP(head)
	case "bmp":
		width, height, err = configBMPFile(head)
	case "tiff":
		width, height, err = configTIFF(r)
	case "ico":
		width, height, err = configICO(r, head)
	case "avif", "heic":
		width, height, err = configHEIF(r, format)
	case "jxl":
		err = corruptf("jxl", "JPEG XL is recognised but has no decoder here")
	}
	if err == nil && (width <= 0 || height <= 0) {
		err = corruptf(format, "declares %dx%d", width, height)
	}
	return format, width, height, err
}

// still wraps one image as a Picture.
func still(img image.Image, scale int, truncated bool) *Picture {
	return &Picture{Frames: []image.Image{img}, FrameIndex: []int{0}, Orientation: 1, Scale: scale, Truncated: truncated}
}

// sampleFramesTimed picks at most k of the animation frames whose display
// times (in any unit) are delays: half the picks are the frames shown
// longest, the rest spread evenly with the first frame always kept. A
// listed picture shown for seconds between hundreds of 20 ms decoys is
// what a viewer sees, and picking by frame number alone would miss it.
func sampleFramesTimed(delays []int, k int) []bool {
	n := len(delays)
	keep := sampleFrames(n, k)
	if k >= n || k <= 1 {
		return keep
	}
	for i := range keep {
		keep[i] = false
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return delays[order[a]] > delays[order[b]] })
	// Only frames shown longer than most count as "long": with equal
	// delays the picks are simply spread out.
	median := delays[order[n/2]]
	keep[0] = true
	picked := 1
	for _, i := range order[:(k+1)/2] {
		if delays[i] <= median {
			break
		}
		if !keep[i] {
			keep[i] = true
			picked++
		}
	}
	even := sampleFrames(n, k)
	for i := 0; i < n && picked < k; i++ {
		if even[i] && !keep[i] {
			keep[i] = true
			picked++
		}
	}
	return keep
}

// sampleFrames picks which of n animation frames to keep: at most k, spread
// evenly, first and last included.
func sampleFrames(n, k int) []bool {
	keep := make([]bool, n)
	if n <= 0 {
		return keep
	}
	if k >= n {
		for i := range keep {
			keep[i] = true
		}
		return keep
	}
	if k <= 1 {
		keep[0] = true
		return keep
	}
	for i := 0; i < k; i++ {
		keep[int((int64(i)*int64(n-1)+int64(k-1)/2)/int64(k-1))] = true
	}
	return keep
}

// affordable is how many of the leading frames, costing costs[i] source
// pixels each, the work budget can decode. An animation too costly to
// decode whole is sampled within that prefix (and marked Truncated) rather
// than losing its sampled tail frames to the budget halfway through.
func (l *limits) affordable(costs []int64) int {
	left := l.work
	for i, c := range costs {
		if c < 0 || c > left {
			return i
		}
		left -= c
	}
	return len(costs)
}

// frameQuota is how many frames of canvasPixels each fit MaxFrames and
// MaxTotalPixels (at least one).
func (l *limits) frameQuota(canvasPixels int64) int {
	k := l.maxFrames
	if canvasPixels > 0 {
		if q := l.maxTotal / canvasPixels; q < int64(k) {
			k = int(q)
		}
	}
	if k < 1 {
		k = 1
	}
	return k
}
