package external

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// need skips loudly where the program is missing (.ci/run installs both).
func need(t *testing.T, name string) {
	t.Helper()
	if !Available(name) {
		if os.Getenv("MEDIAGUARD_REQUIRE_E2E") != "" {
			t.Fatalf("%s is not installed but MEDIAGUARD_REQUIRE_E2E is set", name)
		}
		t.Skipf("SKIPPED: %s is not installed (apt-get install ffmpeg libjxl-tools)", name)
	}
}

// encode runs ffmpeg to build a test video from still pictures.
func encode(t *testing.T, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out"+args[len(args)-1])
	args = append(args[:len(args)-1], out)
	cmd := exec.Command(lookup("ffmpeg"), append([]string{"-nostdin", "-loglevel", "error", "-y"}, args...)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVideoFrames(t *testing.T) {
	need(t, "ffmpeg")
	dir := t.TempDir()
	a, b := testimg.Photo(21, 320, 240), testimg.Photo(22, 320, 240)
	os.WriteFile(filepath.Join(dir, "a.png"), testimg.PNG(a), 0o600)
	os.WriteFile(filepath.Join(dir, "b.png"), testimg.PNG(b), 0o600)
	// 3 s of a, then 3 s of b, at 10 fps, in MP4 (index at the end) and WebM.
	for _, ext := range []string{".mp4", ".webm"} {
		codec := []string{"-c:v", "libx264", "-pix_fmt", "yuv420p"}
		if ext == ".webm" {
			codec = []string{"-c:v", "libvpx-vp9", "-b:v", "1M"}
		}
		args := []string{"-loop", "1", "-t", "3", "-framerate", "10", "-i", filepath.Join(dir, "a.png"),
			"-loop", "1", "-t", "3", "-framerate", "10", "-i", filepath.Join(dir, "b.png"),
			"-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]", "-map", "[v]"}
		args = append(args, codec...)
		video := encode(t, append(args, ext)...)
		frames, times, err := VideoFrames(context.Background(), video, VideoOptions{})
		if err != nil {
			t.Fatal(ext, err)
		}
		if len(frames) < 3 || len(times) != len(frames) || times[0] != 0 {
			t.Fatalf("%s: %d frames at %v", ext, len(frames), times)
		}
		first := pdq.FromImage(frames[0], pdq.Options{}).Hash
		last := pdq.FromImage(frames[len(frames)-1], pdq.Options{}).Hash
		if d := pdq.Distance(first, pdq.FromImage(a, pdq.Options{}).Hash); d > 31 {
			t.Errorf("%s: first frame is %d from the first picture", ext, d)
		}
		if d := pdq.Distance(last, pdq.FromImage(b, pdq.Options{}).Hash); d > 31 {
			t.Errorf("%s: last sampled frame is %d from the second picture", ext, d)
		}
	}
}

func TestVideoGarbage(t *testing.T) {
	need(t, "ffmpeg")
	if _, _, err := VideoFrames(context.Background(), []byte("\x00\x00\x00\x20ftypisom garbage garbage"), VideoOptions{Timeout: 10 * time.Second}); err == nil {
		t.Fatal("garbage decoded")
	}
}

func TestDecodeJXL(t *testing.T) {
	need(t, "djxl")
	cjxl, err := exec.LookPath("cjxl")
	if err != nil {
		t.Skip("SKIPPED: cjxl not installed")
	}
	dir := t.TempDir()
	photo := testimg.Photo(23, 200, 150)
	in := filepath.Join(dir, "p.png")
	os.WriteFile(in, testimg.PNG(photo), 0o600)
	out := filepath.Join(dir, "p.jxl")
	if b, err := exec.Command(cjxl, in, out, "-q", "90").CombinedOutput(); err != nil {
		t.Fatalf("cjxl: %v %s", err, b)
	}
	data, _ := os.ReadFile(out)
	img, err := DecodeJXL(context.Background(), data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := pdq.Distance(pdq.FromImage(img, pdq.Options{}).Hash, pdq.FromImage(photo, pdq.Options{}).Hash); d > 16 {
		t.Fatalf("decoded JPEG XL is %d from the picture", d)
	}
	if _, err := DecodeJXL(context.Background(), []byte("\xff\x0agarbage"), 0); err == nil {
		t.Fatal("garbage decoded")
	}
}
