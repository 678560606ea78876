package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"strconv"

	"github.com/mediaguard/mediaguard/hashing/external"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/picture"
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
	if kind := VideoByBytes(r); kind != "" {
		return hashVideo(r, kind, opt)
	}
	pic, err := picture.Decode(r, picture.Options{MaxPixels: dopt.MaxPixels})
	if err != nil {
		format := ""
		if pic != nil {
			format = pic.Format
		}
		if head := readHead(r, 64); picture.Sniff(head) == "jxl" {
			return hashJXL(r)
		}
		kind := pdq.ErrCorrupt
		switch {
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
	res := pdq.HashViewed(pdq.Viewed{Frames: pic.Frames, FrameIndex: pic.FrameIndex, Orientation: pic.Orientation}, opt)
	return res, pic.Format, nil
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

func hashJXL(r io.ReadSeeker) (pdq.Result, string, error) {
	data, err := readAll(r)
	if err != nil {
		return pdq.Result{}, "jxl", err
	}
	img, err := external.DecodeJXL(context.Background(), data, 0)
	if err != nil {
		if errors.Is(err, external.ErrUnavailable) {
			return pdq.Result{}, "jxl", err
		}
		return pdq.Result{}, "jxl", fmt.Errorf("%w: jxl: %v", pdq.ErrCorrupt, err)
	}
	return pdq.HashViewed(pdq.Viewed{Frames: []image.Image{img}}, pdq.Options{Workers: 1}), "jxl", nil
}

// hashVideo hashes a video's first frame (the stored hash) and frames
// sampled along it (forms named by their time). A video that cannot be
// decoded is not an undecodable image: it is reported ErrNotImage, so it
// stays judged by its exact hashes only.
func hashVideo(r io.ReadSeeker, kind string, opt pdq.Options) (pdq.Result, string, error) {
	data, err := readAll(r)
	if err != nil {
		return pdq.Result{}, kind, err
	}
	frames, times, err := external.VideoFrames(context.Background(), data, external.VideoOptions{})
	if err != nil {
		if errors.Is(err, external.ErrUnavailable) {
			return pdq.Result{}, kind, fmt.Errorf("%w: %s video: %v", pdq.ErrNotImage, kind, err)
		}
		return pdq.Result{}, kind, fmt.Errorf("%w: %s video: %v", pdq.ErrNotImage, kind, err)
	}
	first := pdq.FromImage(frames[0], pdq.Options{Workers: 1, Dihedral: opt.Dihedral})
	res := pdq.Result{Hash: first.Hash, Quality: first.Quality, Dihedral: first.Dihedral}
	seen := map[pdq.Hash]bool{first.Hash: true}
	for i := 1; i < len(frames); i++ {
		f := pdq.FromImage(frames[i], pdq.Options{Workers: 1})
		if seen[f.Hash] {
			continue
		}
		seen[f.Hash] = true
		// The time, not a frame number, is what a moderator can look at.
		name := "video frame " + strconv.Itoa(i+1)
		if times[i] >= 0 {
			name = "video frame at " + strconv.FormatFloat(times[i], 'f', 1, 64) + "s"
		}
		res.Forms = append(res.Forms, pdq.Form{Name: name, Hash: f.Hash, Quality: f.Quality})
	}
	return res, kind, nil
}

// VideoByBytes returns the container of a video by its signature ("mp4",
// "matroska", "avi", "ogg", "flv", "mpegts"), or "" for anything else.
// HEIF and AVIF stills share the MP4 box structure and are images.
func VideoByBytes(r io.ReadSeeker) string {
	h := readHead(r, 4096)
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
	case len(h) >= 3*188 && h[0] == 0x47 && h[188] == 0x47 && h[376] == 0x47:
		return "mpegts"
	}
	return ""
}
