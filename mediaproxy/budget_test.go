package mediaproxy

import (
	"image"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/sched"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/internal/jpegenc"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// An image whose decoding outlasts its CPU budget (a crafted one: a
// thousand progressive scans, a bomb) is killed on its worker and judged
// undecodable, so the default policy refuses it: being too costly to
// judge never makes a picture clean. The budget is lowered to a
// millisecond so an ordinary photo stands for the crafted one; with the
// budget as shipped the same photo passes. The photo is a PNG: a JPEG is
// hashed from its DCT blocks in less CPU than the kernel's 10 ms tick,
// the finest a worker's CPU time can be read at.
func TestImageOverCPUBudgetIsRefused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SKIPPED LOUDLY: workers' CPU time is read from /proc on Linux only; elsewhere jobs are bounded by wall time")
	}
	pool := worker.NewPool(1, worker.Options{})
	t.Cleanup(pool.Close)
	e := newEnv(t, nil, func(c *Config) {
		c.Runner = sched.NewRunnerFor(pool, nil)
		c.Hashing = HashingProcess
	})
	photo := testimg.PNG(testPhoto(21, 1600, 1200))
	if resp, _ := e.upload(t, "image/png", photo); resp.StatusCode != 200 {
		t.Fatalf("within its budget: %d (%s)", resp.StatusCode, e.obs.last().Outcome)
	}
	old := cpuBudgetFor
	cpuBudgetFor = func(string, int64) time.Duration { return time.Millisecond }
	t.Cleanup(func() { cpuBudgetFor = old })
	resp, code := e.upload(t, "image/png", photo[:len(photo)-1]) // new digests: not remembered as clean
	if resp.StatusCode != 403 || code != "M_FORBIDDEN" {
		t.Fatalf("over its budget: %d %s (%s: %s)", resp.StatusCode, code, e.obs.last().Outcome, e.obs.last().UnscannableReason)
	}
	if d := e.obs.last(); d.Outcome != Undecodable {
		t.Fatalf("outcome %s, want %s", d.Outcome, Undecodable)
	}
	t.Logf("refused: %s", e.obs.last().UnscannableReason)
}

// A JPEG crafted to hold a decoder (thousands of near-empty progressive
// scans) stops at the tolerant decoder's work bound and is refused as
// undecodable, never hashed as the grey half-picture decoded so far; the
// same picture with an ordinary progressive script passes.
func TestManyScanJPEGIsRefused(t *testing.T) {
	e := newEnv(t, nil, nil)
	pic := jpegenc.Picture(256, 256, 4)
	o := jpegenc.Options{Comps: jpegenc.Components(1, 1, 1), Color: "gray", Progressive: true, Adobe: -1}
	if resp, _ := e.upload(t, "image/jpeg", jpegenc.Encode(pic, o)); resp.StatusCode != 200 || e.obs.last().Outcome != Clean {
		t.Fatalf("ordinary progressive: %d %s (%s)", resp.StatusCode, e.obs.last().Outcome, e.obs.last().UnscannableReason)
	}
	o.Scans = []jpegenc.Scan{{Comps: []int{0}, Ss: 0, Se: 0}}
	for range 3000 {
		o.Scans = append(o.Scans, jpegenc.Scan{Comps: []int{0}, Ss: 63, Se: 63, Al: 13})
	}
	resp, code := e.upload(t, "image/jpeg", jpegenc.Encode(pic, o))
	if d := e.obs.last(); resp.StatusCode != 403 || code != "M_FORBIDDEN" || d.Outcome != Undecodable || !strings.Contains(d.UnscannableReason, "work bound") {
		t.Fatalf("3001 scans: %d %s, %s (%s); want refused as undecodable at the work bound", resp.StatusCode, code, d.Outcome, d.UnscannableReason)
	}
}

// A JPEG whose bright half is coded at 1200, which libjpeg-turbo's
// integer IDCT shows black and Go's decoder white, is refused as
// undecodable rather than judged by either reading; coded at 600, where
// every decoder clamps alike, it is an ordinary upload.
func TestAmbiguousJPEGIsRefused(t *testing.T) {
	e := newEnv(t, nil, nil)
	pic := jpegenc.Picture(256, 256, 4)
	for _, c := range []struct {
		coded  float64
		status int
	}{{600, 200}, {1200, 403}} {
		o := jpegenc.Options{Comps: jpegenc.Components(1, 2, 2, 1, 1, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1,
			EditPlanes: func(p [][]float64, w, h int) {
				for i := range p[0] {
					if i%w < w/2 {
						p[0][i] = c.coded
					}
				}
			}}
		resp, code := e.upload(t, "image/jpeg", jpegenc.Encode(pic, o))
		d := e.obs.last()
		want := Clean
		if c.status == 403 {
			want = Undecodable
		}
		if resp.StatusCode != c.status || d.Outcome != want {
			t.Fatalf("coded at %v: %d %s, %s (%s); want %d %s", c.coded, resp.StatusCode, code, d.Outcome, d.UnscannableReason, c.status, want)
		}
		t.Logf("coded at %v: %d %s %s", c.coded, resp.StatusCode, d.Outcome, d.UnscannableReason)
	}
}

// A JPEG only its signature calls an image ("weak": its segments are not
// plausible past a junk byte, and image/jpeg refuses its sampling) is
// judged like opaque bytes when nothing decodes it; but one the tolerant
// decoder reads and finds crafted is refused, never passed as
// unscannable (found in review: a listed photo with a poisoned block, Y
// 1×1 and Cb 2×2, behind a junk byte, passed).
func TestWeakCraftedJPEGIsRefused(t *testing.T) {
	listed := testPhoto(80, 240, 180)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listed)).String()}, nil)
	r := image.NewRGBA(listed.Rect)
	copy(r.Pix, listed.Pix)
	j := jpegenc.Encode(r, jpegenc.Options{Comps: jpegenc.Components(1, 1, 1, 2, 2, 1, 1), Color: "ycbcr", JFIF: true, Adobe: -1,
		EditPlanes: func(p [][]float64, w, h int) {
			for y := range 8 {
				for x := range 8 {
					p[0][y*w+x] = 1200
				}
			}
		}})
	end := 4 + int(j[4])<<8 | int(j[5])
	body := append(append(append([]byte(nil), j[:end]...), 0x00), j[end:]...)
	resp, _ := e.upload(t, "image/jpeg", body)
	if d := e.obs.last(); resp.StatusCode != 403 || d.Outcome != Undecodable {
		t.Fatalf("%d %s (%s); want 403 undecodable", resp.StatusCode, d.Outcome, d.UnscannableReason)
	}
}

// A listed picture upscaled past max_pixels is decoded at a reduced scale
// (JPEG DCT scaling, PNG subsampling) and still matches; its clean twin
// passes. max_pixels is lowered so the test stays small and fast.
func TestUpscaledPastMaxPixels(t *testing.T) {
	listedImg, cleanImg := testPhoto(80, 240, 180), testPhoto(81, 240, 180)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listedImg)).String()}, func(c *Config) { c.MaxPixels = 30_000 })
	forms := []struct {
		name string
		make func(*image.NRGBA) []byte
	}{
		{"jpeg upscaled 3x", func(m *image.NRGBA) []byte { return jpegBytes(upscale(m, 3), 90) }},
		{"png upscaled 3x", func(m *image.NRGBA) []byte { return encodePNG(upscale(m, 3)) }},
	}
	for _, f := range forms {
		if resp, code := e.upload(t, "image/png", f.make(listedImg)); resp.StatusCode != 403 || code != "M_FORBIDDEN" || e.obs.last().Outcome != Blocked {
			t.Errorf("%s, listed: %d %s %s (%s)", f.name, resp.StatusCode, code, e.obs.last().Outcome, e.obs.last().UnscannableReason)
		}
		if resp, _ := e.upload(t, "image/png", f.make(cleanImg)); resp.StatusCode != 200 {
			t.Errorf("%s, clean twin: %d %s (%s)", f.name, resp.StatusCode, e.obs.last().Outcome, e.obs.last().UnscannableReason)
		}
	}
}

// upscale enlarges m n times by pixel repetition.
func upscale(m *image.NRGBA, n int) *image.NRGBA {
	b := m.Bounds()
	out := image.NewNRGBA(image.Rect(0, 0, b.Dx()*n, b.Dy()*n))
	for y := range out.Rect.Dy() {
		for x := range out.Rect.Dx() {
			out.SetNRGBA(x, y, m.NRGBAAt(b.Min.X+x/n, b.Min.Y+y/n))
		}
	}
	return out
}
