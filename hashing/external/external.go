// Package external decodes what no Go decoder here can, by running the
// field's own programs where they are installed: ffmpeg for video (the
// first frame and frames sampled along it, as HMA's video hashing does)
// and djxl (libjxl) for JPEG XL. They run inside the hashing worker
// processes, on a private temporary file, with a deadline; where a program
// is missing, Available says so and callers record the media as not
// decodable by this deployment.
//
// It imports nothing of mediaguard and no Caddy.
package external

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// ErrUnavailable: the program this needs is not installed.
var ErrUnavailable = errors.New("external: decoder program not installed")

// Programs are looked up on PATH and, since hashing workers run with an
// empty environment, in the usual install locations.
var searchDirs = []string{"/usr/bin", "/usr/local/bin", "/bin", "/opt/homebrew/bin"}

var (
	lookOnce sync.Once
	paths    map[string]string
)

func lookup(name string) string {
	lookOnce.Do(func() {
		paths = map[string]string{}
		for _, n := range []string{"ffmpeg", "djxl"} {
			if p, err := exec.LookPath(n); err == nil {
				paths[n] = p
				continue
			}
			for _, d := range searchDirs {
				p := d + "/" + n
				if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
					paths[n] = p
					break
				}
			}
		}
	})
	return paths[name]
}

// Available reports whether the named program ("ffmpeg", "djxl") can run.
func Available(name string) bool { return lookup(name) != "" }

// VideoOptions bound video decoding.
type VideoOptions struct {
	// MaxFrames is the first frame plus sampled ones; 0 means 16.
	MaxFrames int
	// Every is the sampling interval; 0 means 2 seconds.
	Every time.Duration
	// MaxSide scales frames down so neither side exceeds it (PDQ needs
	// far less); 0 means 1024.
	MaxSide int
	// Timeout bounds the whole run; 0 means 30 seconds.
	Timeout time.Duration
}

// VideoFrames returns the first frame of the video in data and frames
// sampled every opt.Every after it, and each frame's time in seconds.
func VideoFrames(ctx context.Context, data []byte, opt VideoOptions) ([]image.Image, []float64, error) {
	bin := lookup("ffmpeg")
	if bin == "" {
		return nil, nil, fmt.Errorf("%w: ffmpeg", ErrUnavailable)
	}
	if opt.MaxFrames <= 0 {
		opt.MaxFrames = 16
	}
	if opt.Every <= 0 {
		opt.Every = 2 * time.Second
	}
	if opt.MaxSide <= 0 {
		opt.MaxSide = 1024
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	f, cleanup, err := tempFile(data)
	if err != nil {
		return nil, nil, err
	}
	defer cleanup()
	ctx, cancel := context.WithTimeout(ctx, opt.Timeout)
	defer cancel()
	every := strconv.FormatFloat(opt.Every.Seconds(), 'f', 3, 64)
	side := strconv.Itoa(opt.MaxSide)
	// The first frame always, then one whenever Every has passed since
	// the last one taken; scaled down, never up, keeping the aspect.
	vf := "select='isnan(prev_selected_t)+gte(t-prev_selected_t\\," + every + ")'," +
		"scale='if(gt(iw\\,ih)\\,min(iw\\," + side + ")\\,-2)':'if(gt(iw\\,ih)\\,-2\\,min(ih\\," + side + "))'," +
		"showinfo"
	cmd := exec.CommandContext(ctx, bin, "-nostdin", "-hide_banner", "-loglevel", "info",
		"-threads", "1", "-i", f, "-map", "0:v:0", "-vf", vf, "-fps_mode", "vfr",
		"-frames:v", strconv.Itoa(opt.MaxFrames), "-f", "image2pipe", "-c:v", "png", "-")
	cmd.Env = []string{}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 1 << 20}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	br := bufio.NewReaderSize(out, 1<<16)
	var frames []image.Image
	for len(frames) < opt.MaxFrames {
		img, err := png.Decode(br)
		if err != nil {
			break
		}
		frames = append(frames, img)
	}
	io.Copy(io.Discard, br)
	werr := cmd.Wait()
	if len(frames) == 0 {
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("external: ffmpeg: %w", ctx.Err())
		}
		return nil, nil, fmt.Errorf("external: ffmpeg decoded no frame (%v): %s", werr, lastLine(stderr.Bytes()))
	}
	return frames, frameTimes(stderr.Bytes(), len(frames)), nil
}

// DecodeJXL decodes a JPEG XL image with libjxl's djxl.
func DecodeJXL(ctx context.Context, data []byte, timeout time.Duration) (image.Image, error) {
	bin := lookup("djxl")
	if bin == "" {
		return nil, fmt.Errorf("%w: djxl", ErrUnavailable)
	}
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	in, cleanup, err := tempFile(data)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	outPath := in + ".png"
	defer os.Remove(outPath)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, in, outPath, "--num_threads=1")
	cmd.Env = []string{}
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 1 << 16}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("external: djxl: %v: %s", err, lastLine(stderr.Bytes()))
	}
	f, err := os.Open(outPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return png.Decode(bufio.NewReader(f))
}

// tempFile writes data to a private file: ffmpeg must seek (an MP4's
// index may be at its end), and a pipe cannot.
func tempFile(data []byte) (string, func(), error) {
	dir := os.TempDir()
	f, err := os.CreateTemp(dir, "mediaguard-ext-*")
	if err != nil {
		return "", nil, err
	}
	name := f.Name()
	cleanup := func() { os.Remove(name) }
	if _, err := f.Write(data); err != nil {
		f.Close()
		cleanup()
		return "", nil, err
	}
	if err := f.Close(); err != nil {
		cleanup()
		return "", nil, err
	}
	return name, cleanup, nil
}

// frameTimes reads the pts_time of each frame showinfo printed.
func frameTimes(log []byte, n int) []float64 {
	out := make([]float64, 0, n)
	for _, line := range bytes.Split(log, []byte("\n")) {
		i := bytes.Index(line, []byte("pts_time:"))
		if i < 0 || !bytes.Contains(line, []byte("Parsed_showinfo")) {
			continue
		}
		rest := line[i+len("pts_time:"):]
		j := bytes.IndexAny(rest, " \t")
		if j < 0 {
			j = len(rest)
		}
		t, err := strconv.ParseFloat(string(rest[:j]), 64)
		if err != nil {
			t = -1
		}
		out = append(out, t)
		if len(out) == n {
			break
		}
	}
	for len(out) < n {
		out = append(out, -1)
	}
	return out
}

func lastLine(b []byte) string {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	if len(b) > 300 {
		b = b[:300]
	}
	return string(b)
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
