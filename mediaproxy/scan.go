package mediaproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/external"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/picture"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/matcher"
)

// scanned is what hashing a body produced.
type scanned struct {
	query matcher.Query
	pdq   *pdq.Result
	// unscannable says why no perceptual hash was possible where one
	// could have mattered ("" when the bytes were a hashable image or a
	// kind PDQ does not apply to, such as video).
	unscannable string
	// undecodable says why bytes that are an image by their signature
	// could not be decoded; the OnUndecodableImage policy decides them.
	undecodable string
	// format is what the bytes were sniffed as: an image format or a
	// video container, "" for neither.
	format string
}

// scan builds the matcher query for a body whose exact digests are known,
// decoding it as an image when its bytes are one, whatever it was
// declared as: a declared type is the client's claim, and a listed photo
// declared video/mp4 is still shown as a photo. r is read from the start.
// If ctx ends while waiting for a hashing slot, the query has the exact
// digests only; the caller's match then sees ctx's error.
func (p *Proxy) scan(ctx context.Context, r io.ReadSeeker, contentType string, d hashing.Digests) scanned {
	s := p.scanBody(ctx, r, contentType, d)
	if ctx.Err() == nil {
		// Embedded pictures join the query as forms and digests; the
		// body's own kind (a video keeps its video MD5 lookup) stays. A
		// body whose embedded pictures could not all be judged is not
		// clean: it gets the undecodable-image policy.
		if why := p.scanEmbedded(ctx, r, &s.query); why != "" && s.undecodable == "" && ctx.Err() == nil {
			s.undecodable = why
		}
	}
	return s
}

// scanBody judges the body itself (see scan).
func (p *Proxy) scanBody(ctx context.Context, r io.ReadSeeker, contentType string, d hashing.Digests) scanned {
	q := exactQuery(d, contentType)
	// The signature is cheap: encrypted attachments and non-images are
	// told apart before queueing for a decoding slot.
	format, weak := imageByBytes(r)
	s := scanned{format: format}
	if format == "" {
		if video := worker.VideoByBytes(r); video != "" {
			if videoDecoding() {
				return p.scanVideo(ctx, r, q, video)
			}
			// A video by its bytes is a video whatever it was declared
			// as: its kind decides whether HMA's video_md5 list is asked,
			// and a banked video sent as application/octet-stream must
			// still be looked up there.
			q.Kind = matcher.KindVideo
			s.format = video
			s.query = q
			return s
		}
		// No image by its bytes (ciphertext, video, documents): exact
		// hashes are all that can apply. Encrypted attachments arrive as
		// opaque octet-streams and can never be on a list.
		if isOpaque(contentType) {
			s.unscannable = "opaque or encrypted content"
		} else if q.Kind == matcher.KindImage {
			s.unscannable = "declared as an image but not an image by its bytes"
		}
		s.query = q
		return s
	}
	pixels := declaredPixels(r)
	big := pixels == 0 || pixels > smallImagePixels
	if !p.acquireHashSlot(ctx, big) {
		s.query = q
		return s
	}
	res, err := p.hashImage(ctxBudget(ctx, format, pixels), r)
	p.releaseHashSlot(big)
	if err != nil && ctx.Err() != nil && errors.Is(err, ctx.Err()) {
		// The client left mid-hash: nothing is judged (and nothing
		// remembered as unscannable); the match sees ctx's error.
		s.query = q
		return s
	}
	if err != nil && weak && !errors.Is(err, pdq.ErrCrafted) {
		// Only a short signature said "image", and nothing could read
		// it: as likely random bytes as an image, so it is judged like
		// any opaque body. A decoder that found the picture crafted
		// (pdq.ErrCrafted) read far past any signature.
		s.unscannable = format + " signature only, not decodable: " + err.Error()
		s.query = q
		return s
	}
	q.Kind = matcher.KindImage
	if err != nil {
		// An image by its bytes that no decoder here could read: a
		// viewer may still see it, so it is not "clean".
		s.undecodable = format + ": " + err.Error()
		s.query = q
		return s
	}
	s = hashed(q, res)
	s.format = format
	return s
}

// hashed is the result of a body whose pictures were hashed: the stored
// form as the query's PDQ, every other form beside it.
func hashed(q matcher.Query, res pdq.Result) scanned {
	q.Has |= matcher.HasPDQ
	q.PDQ, q.PDQQuality = res.Hash, res.Quality
	if res.Dihedral != nil {
		q.Dihedral = res.Dihedral[:]
	}
	q.Forms = res.Forms
	return scanned{query: q, pdq: &res}
}

// imageByBytes returns the image format r's bytes are, or "" when they are
// not an image. A short signature ("BM", a JPEG's three bytes, TIFF's
// four, a bare JPEG XL codestream's two) also starts one random file in a
// few thousand or million: an encrypted attachment must never be judged an
// undecodable image, so such a file counts for the undecodable policy only
// with a header that parses strictly or a sound marker chain; otherwise
// weak says it is still decoded, and judged if it decodes, but a failure
// means "not an image". r is left at its start.
func imageByBytes(r io.ReadSeeker) (format string, weak bool) {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return "", false
	}
	head := make([]byte, 4096)
	n, _ := io.ReadFull(r, head)
	head = head[:n]
	defer r.Seek(0, io.SeekStart)
	format = picture.Sniff(head)
	switch format {
	case "":
		return "", false
	case "jxl":
		return format, !bytes.HasPrefix(head, []byte("\x00\x00\x00\x0cJXL \r\n\x87\n"))
	case "png", "gif", "webp", "avif", "heic", "ico":
		return format, false
	case "jpeg":
		if plausibleJPEG(r) {
			return format, false
		}
	}
	r.Seek(0, io.SeekStart)
	if _, _, _, err := picture.DecodeConfig(r); err == nil {
		return format, false
	}
	// A short signature whose header does not parse strictly: browsers
	// tolerate junk between JPEG segments and odd BMP headers, so it is
	// still decoded, and judged if it decodes, but a failure then means
	// "not an image".
	return format, true
}

// VideoDecoding reports whether videos are decoded (ffmpeg installed):
// their first frame and frames sampled along them are PDQ-hashed, since a
// client shows a video's first frame. Without it videos are judged by
// their exact hashes only.
func VideoDecoding() bool { return external.Available("ffmpeg") }

// videoDecoding is VideoDecoding, a seam so tests can take the path of a
// machine without ffmpeg.
var videoDecoding = VideoDecoding

// scanVideo hashes a video's first frame and sampled frames in a big
// hashing slot; a video that does not decode keeps its exact hashes.
func (p *Proxy) scanVideo(ctx context.Context, r io.ReadSeeker, q matcher.Query, container string) scanned {
	s := scanned{format: container}
	q.Kind = matcher.KindVideo
	if !p.acquireHashSlot(ctx, true) {
		s.query = q
		return s
	}
	res, err := p.hashImage(ctx, r)
	p.releaseHashSlot(true)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Info("video not decodable; judged by its exact hashes", zap.String("container", container), zap.Error(err))
		}
		s.query = q
		return s
	}
	s = hashed(q, res)
	s.format = container
	return s
}

// smallImagePixels is the largest image (by its header) that may use the
// hashing lane kept free of big ones: a phone photo fits, a
// decompression bomb does not.
const smallImagePixels = 16_000_000

// declaredPixels is the pixel count r's header declares, 0 when unknown.
func declaredPixels(r io.ReadSeeker) int64 {
	defer r.Seek(0, io.SeekStart)
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return 0
	}
	_, w, h, err := picture.DecodeConfig(r)
	if err != nil || w <= 0 || h <= 0 {
		return 0
	}
	return int64(w) * int64(h)
}

func ctxBudget(ctx context.Context, format string, pixels int64) context.Context {
	return worker.WithCPUBudget(ctx, cpuBudgetFor(format, pixels))
}

// cpuBudgetFor is cpuBudget, a seam for tests to prove that an image over
// its budget is refused without spending seconds of CPU on it.
var cpuBudgetFor = cpuBudget

// cpuBudget is the CPU time one image may take to decode and hash: a
// fixed allowance plus a generous rate per declared pixel (decoding and
// PDQ cost about 30 ns a pixel here). An image over it is a crafted one
// (thousands of progressive scans, a bomb): it is cut off and judged
// undecodable, having cost a bounded share of the hashing capacity.
//
// AVIF and HEIC are decoded by WebAssembly builds of libavif and libheif,
// which a worker compiles on its first such image (about a second, far
// more under the race detector), and GIF, APNG and WebP may be long
// animations: they get larger fixed allowances.
func cpuBudget(format string, pixels int64) time.Duration {
	if pixels <= 0 {
		return 0 // the pool's own limit
	}
	base := 2 * time.Second
	switch format {
	case "avif", "heic":
		base = 20 * time.Second
	case "gif", "png", "webp":
		// Animations: the header gives one frame's size, and hundreds of
		// frames may all have to be decoded to composite the sampled ones
		// (hashing/picture bounds that work at 16 × max_pixels).
		base = 10 * time.Second
	}
	return base + time.Duration(pixels)*300*time.Nanosecond
}

// plausibleJPEG follows a JPEG's marker chain from SOI to its frame
// header: every segment must start with 0xFF and a marker that may stand
// there and give a sane length. Random bytes that happen to start with
// FFD8FF (one file in 16 million) fail within a segment or two, so an
// encrypted attachment is never mistaken for an undecodable JPEG. r is
// left at its start.
func plausibleJPEG(r io.ReadSeeker) bool {
	defer r.Seek(0, io.SeekStart)
	off := int64(2)
	var h [4]byte
	for range 32 {
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			return false
		}
		if _, err := io.ReadFull(r, h[:]); err != nil {
			return false
		}
		m := h[1]
		if h[0] != 0xff {
			return false
		}
		switch {
		case m >= 0xc0 && m <= 0xcf && m != 0xc4 && m != 0xc8 && m != 0xcc:
			return true // a frame header
		case m == 0xc4 || m == 0xcc || m == 0xdb || m == 0xdd || m == 0xfe || m >= 0xe0 && m <= 0xef:
		default:
			return false
		}
		n := int64(h[2])<<8 | int64(h[3])
		if n < 2 {
			return false
		}
		off += 2 + n
	}
	return false
}

// exactQuery is the query for the exact digests alone.
func exactQuery(d hashing.Digests, contentType string) matcher.Query {
	return matcher.Query{Has: matcher.HasMD5 | matcher.HasSHA1 | matcher.HasSHA256, MD5: d.MD5, SHA1: d.SHA1, SHA256: d.SHA256, Kind: kindOf(contentType)}
}

func kindOf(contentType string) matcher.MediaKind {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(contentType))
	}
	switch {
	case strings.HasPrefix(mt, "image/"):
		return matcher.KindImage
	case strings.HasPrefix(mt, "video/"):
		return matcher.KindVideo
	case strings.HasPrefix(mt, "audio/"):
		return matcher.KindAudio
	case mt == "", mt == "application/octet-stream":
		return matcher.KindUnknown
	}
	return matcher.KindFile
}

func isOpaque(contentType string) bool {
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt == "" || mt == "application/octet-stream"
}

// match asks the matcher and fills the decision's verdict and timing.
func (p *Proxy) match(ctx context.Context, d *Decision, sc scanned) (v matcher.Verdict, err error) {
	start := time.Now()
	v, err = p.cfg.Matcher.Match(ctx, sc.query)
	d.MatchTime = time.Since(start)
	d.Verdict = v
	return v, err
}

// Hashing modes (Config.Hashing).
const (
	HashingProcess = "process"
	HashingInline  = "inline"
)

// hashImage decodes and PDQ-hashes r on a worker process, or where none
// can run, on one of the niced hashing threads (hashing/sched). Hashing is
// throughput work; passing known media through is latency work, and on a
// small machine both want the same cores.
func (p *Proxy) hashImage(ctx context.Context, r io.ReadSeeker) (res pdq.Result, err error) {
	return p.hasher.Hash(ctx, r, pdq.DecodeOptions{MaxPixels: p.cfg.MaxPixels, Viewed: true, Exact: p.cfg.PDQExact}, p.pdqOptions())
}

// pdqOptions are the options every picture judged is hashed with, on a
// worker or inline: the two must give the same forms, or whether a
// variant blocks would depend on where the picture was hashed.
func (p *Proxy) pdqOptions() pdq.Options {
	return pdq.Options{Dihedral: p.cfg.Dihedral, Search: p.cfg.PDQSearch}
}

func (p *Proxy) acquireHashSlot(ctx context.Context, big bool) bool { return p.lanes.Acquire(ctx, big) }

func (p *Proxy) releaseHashSlot(big bool) { p.lanes.Release(big) }

// HashWaiting is the number of bodies waiting for a hashing slot (metrics).
func (p *Proxy) HashWaiting() int64 { return p.lanes.Waiting() }

// HashSlots reports the decode-and-PDQ slots held now and how many there
// are (max_concurrent_hashing plus the small pictures' one), for metrics.
func (p *Proxy) HashSlots() (busy, size int) { return p.lanes.Busy(), p.lanes.Size() }
