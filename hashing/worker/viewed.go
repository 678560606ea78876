package worker

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"image"
	"io"
	"strconv"
	"sync"

	"github.com/mediaguard/mediaguard/hashing/external"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/picture"
	"github.com/mediaguard/mediaguard/hashing/picture/icc"
	"github.com/mediaguard/mediaguard/hashing/picture/jpegx"
)

// HashViewed decodes r as a viewer sees it (every format clients send,
// every frame, tolerant of what browsers tolerate; JPEG XL and video with
// the field's own programs where installed) and hashes every form of it
// (pdq.HashViewed). Its errors wrap pdq's kinds, so callers branch on one
// set: pdq.ErrNotImage, pdq.ErrTooManyPixels, pdq.ErrCorrupt, and
// external.ErrUnavailable when the program a format needs is missing. It
// is what worker processes run for a request marked Viewed, and what the
// proxy runs in-process where no worker can.
func HashViewed(r io.ReadSeeker, dopt pdq.DecodeOptions, opt pdq.Options) (pdq.Result, string, error) {
	data, err := readAll(r)
	if err != nil {
		return pdq.Result{}, "", err
	}
	return HashViewedBytes(data, dopt, opt)
}

// HashViewedBytes is HashViewed on a body already in memory (a worker's
// request): every decoder and the profile and container lookups read
// data itself, with no copy.
func HashViewedBytes(data []byte, dopt pdq.DecodeOptions, opt pdq.Options) (pdq.Result, string, error) {
	if kind := videoKind(data); kind != "" {
		return hashVideo(data, kind, opt)
	}
	if !dopt.Exact {
		if res, ok := hashJPEGBlocks(data, dopt, opt); ok {
			return res, "jpeg", nil
		}
	}
	pic, err := picture.DecodeBytes(data, picture.Options{MaxPixels: dopt.MaxPixels})
	if err != nil {
		format := ""
		if pic != nil {
			format = pic.Format
		}
		if picture.Sniff(data[:min(len(data), 64)]) == "jxl" {
			return hashJXL(data, opt)
		}
		kind := pdq.ErrCorrupt
		switch {
		case errors.Is(err, jpegx.ErrAmbiguous), errors.Is(err, jpegx.ErrWorkBound):
			kind = pdq.ErrCrafted
		case errors.Is(err, picture.ErrNotImage):
			kind = pdq.ErrNotImage
		case errors.Is(err, picture.ErrTooManyPixels):
			kind = pdq.ErrTooManyPixels
		}
		return pdq.Result{}, format, fmt.Errorf("%w: %v", kind, err)
	}
	if len(pic.Frames) == 0 {
		return pdq.Result{}, pic.Format, fmt.Errorf("%w: %s: no frame decoded", pdq.ErrCorrupt, pic.Format)
	}
	v := pdq.Viewed{Frames: pic.Frames, FrameIndex: pic.FrameIndex, Orientation: pic.Orientation}
	if prof := embeddedProfile(data, pic.Format); prof != nil {
		v.Managed = make([]image.Image, len(pic.Frames))
		for i, f := range pic.Frames {
			v.Managed[i] = prof.ToSRGB(f)
		}
	}
	res := pdq.HashViewed(v, opt)
	return res, pic.Format, nil
}

// embeddedProfile returns the ICC profile embedded in a JPEG, PNG or WebP,
// parsed, when it is one that changes what a viewer sees (not sRGB);
// unreadable profiles are ignored, as browsers ignore them.
func embeddedProfile(data []byte, format string) *icc.Profile {
	var extract func([]byte) []byte
	switch format {
	case "jpeg":
		extract = icc.FromJPEG
	case "png":
		extract = icc.FromPNG
	case "webp":
		extract = icc.FromWebP
	default:
		return nil
	}
	raw := extract(data)
	if raw == nil {
		return nil
	}
	return profiles.get(raw)
}

// profiles caches parsed profiles by their bytes' hash: a LUT profile
// takes milliseconds to build, and one camera or app embeds the same
// profile in every picture.
var profiles = profileCache{m: map[[32]byte]*icc.Profile{}}

type profileCache struct {
	mu sync.Mutex
	m  map[[32]byte]*icc.Profile
}

func (c *profileCache) get(raw []byte) *icc.Profile {
	key := sha256.Sum256(raw)
	c.mu.Lock()
	p, ok := c.m[key]
	c.mu.Unlock()
	if ok {
		return p
	}
	p, err := icc.Parse(raw)
	if err != nil || p.IsIdentity() {
		p = nil
	}
	c.mu.Lock()
	if len(c.m) >= 64 {
		clear(c.m)
	}
	c.m[key] = p
	c.mu.Unlock()
	return p
}

func readHead(r io.ReadSeeker, n int) []byte {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil
	}
	b := make([]byte, n)
	k, _ := io.ReadFull(r, b)
	r.Seek(0, io.SeekStart)
	return b[:k]
}

func readAll(r io.ReadSeeker) ([]byte, error) {
	if br, ok := r.(*bytes.Reader); ok {
		b := make([]byte, br.Size())
		_, err := br.ReadAt(b, 0)
		return b, err
	}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func hashJXL(data []byte, opt pdq.Options) (pdq.Result, string, error) {
	img, err := external.DecodeJXL(context.Background(), data, 0)
	if err != nil {
		if errors.Is(err, external.ErrUnavailable) {
			return pdq.Result{}, "jxl", err
		}
		return pdq.Result{}, "jxl", fmt.Errorf("%w: jxl: %v", pdq.ErrCorrupt, err)
	}
	return pdq.HashViewed(pdq.Viewed{Frames: []image.Image{img}}, pdq.Options{Workers: 1, Search: opt.Search}), "jxl", nil
}

// hashVideo hashes a video's first frame (the stored hash) and frames
// sampled along it (forms named by their time). A video that cannot be
// decoded is not an undecodable image: it is reported ErrNotImage, so it
// stays judged by its exact hashes only.
func hashVideo(data []byte, kind string, opt pdq.Options) (pdq.Result, string, error) {
	frames, times, err := external.VideoFrames(context.Background(), data, external.VideoOptions{})
	if err != nil {
		if errors.Is(err, external.ErrUnavailable) {
			return pdq.Result{}, kind, fmt.Errorf("%w: %s video: %v", pdq.ErrNotImage, kind, err)
		}
		return pdq.Result{}, kind, fmt.Errorf("%w: %s video: %v", pdq.ErrNotImage, kind, err)
	}
	// Every sampled frame is judged as a picture is, variants included:
	// a listed picture letterboxed into a video is the commonest edit.
	names := make([]string, len(frames))
	for i := 1; i < len(frames); i++ {
		// The time, not a frame number, is what a moderator can look at.
		names[i] = "video frame " + strconv.Itoa(i+1)
		if times[i] >= 0 {
			names[i] = "video frame at " + strconv.FormatFloat(times[i], 'f', 1, 64) + "s"
		}
	}
	opt.Workers = 1
	return pdq.HashViewed(pdq.Viewed{Frames: frames, FrameNames: names}, opt), kind, nil
}

// mpegTS wants the sync byte at the start of every 188-byte packet in
// the head (at least 8 of them).
func mpegTS(h []byte) bool {
	if len(h) < 8*188 {
		return false
	}
	for i := 0; i+188 <= len(h); i += 188 {
		if h[i] != 0x47 {
			return false
		}
	}
	return true
}

// VideoByBytes returns the container of a video by its signature ("mp4",
// "matroska", "avi", "ogg", "flv", "mpegts"), or "" for anything else.
// HEIF and AVIF stills share the MP4 box structure and are images.
func VideoByBytes(r io.ReadSeeker) string { return videoKind(readHead(r, 4096)) }

// videoKind is VideoByBytes on the first bytes of a body.
func videoKind(h []byte) string {
	h = h[:min(len(h), 4096)]
	if picture.Sniff(h) != "" {
		// An image by its signature is never a video: a GIF starts with
		// 'G', MPEG-TS's sync byte, and could be padded to look like one.
		return ""
	}
	switch {
	case len(h) >= 12 && string(h[4:8]) == "ftyp":
		if picture.Sniff(h) != "" {
			return "" // an AVIF or HEIC still
		}
		return "mp4"
	case bytes.HasPrefix(h, []byte{0x1a, 0x45, 0xdf, 0xa3}):
		return "matroska"
	case len(h) >= 12 && bytes.HasPrefix(h, []byte("RIFF")) && string(h[8:12]) == "AVI ":
		return "avi"
	case bytes.HasPrefix(h, []byte("OggS\x00")):
		return "ogg"
	case bytes.HasPrefix(h, []byte("FLV\x01")):
		return "flv"
	case mpegTS(h):
		return "mpegts"
	}
	return ""
}
