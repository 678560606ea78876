package mediaproxy

import (
	"bytes"
	"context"
	"image"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/sched"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/matcher"
)

// Where no hashing process can start (exec forbidden, a broken binary),
// images are still hashed, in-process, with the same result.
func TestHashingFallsBackInline(t *testing.T) {
	pool := worker.NewPool(1, worker.Options{Command: func() *exec.Cmd { return exec.Command("/nonexistent/mediaguard") }})
	defer pool.Close()
	p, err := New(Config{Runner: sched.NewRunnerFor(pool, nil), Matcher: downMatcher{}, TempDir: t.TempDir(), Dihedral: true})
	if err != nil {
		t.Fatal(err)
	}
	img := jpegBytes(testPhoto(11, 320, 240), 90)
	want, _, err := worker.HashViewedBytes(img, pdq.DecodeOptions{Viewed: true}, pdq.Options{Dihedral: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first try starts (and fails), the second is refused at once
		got, err := p.hashImage(context.Background(), bytes.NewReader(img))
		if err != nil || got.Hash != want.Hash || got.Dihedral == nil || *got.Dihedral != *want.Dihedral {
			t.Fatalf("got %v, %v; want the in-process hash %v", got.Hash, err, want.Hash)
		}
	}
	if started, failed := pool.Stats(); started != 0 || failed != 1 {
		t.Errorf("started %d, failed %d; want one failed start, then no retry", started, failed)
	}
}

// A client that leaves while its image is on a worker leaves it unjudged:
// no perceptual hash, and not "unscannable" (which would be remembered
// and let later downloads skip hashing).
func TestClientLeavesMidHash(t *testing.T) {
	// A worker that greets and never answers (the image fits in the
	// pipe's buffer, so sending it completes).
	pool := worker.NewPool(1, worker.Options{Command: func() *exec.Cmd {
		return exec.Command("sh", "-c", "printf 'mediaguard-hash-worker 2\\n'; exec sleep 30")
	}})
	defer pool.Close()
	p, err := New(Config{Runner: sched.NewRunnerFor(pool, nil), Matcher: downMatcher{}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	img := jpegBytes(testPhoto(12, 320, 240), 90)
	if len(img) > 60<<10 {
		t.Fatalf("a %d-byte image would not fit in the pipe", len(img))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s := p.scan(ctx, bytes.NewReader(img), "image/jpeg", hashing.DigestBytes(img))
	if ctx.Err() == nil {
		t.Fatalf("scan returned before the client left: %+v", s)
	}
	if s.unscannable != "" || s.pdq != nil || s.query.Has&matcher.HasPDQ != 0 {
		t.Fatalf("unscannable %q, pdq %v, query has %v; want the exact digests only", s.unscannable, s.pdq, s.query.Has)
	}
	if s.query.Has&matcher.HasSHA256 == 0 {
		t.Fatal("the exact digests were dropped")
	}
}

// Every picture judged is hashed at the configured search level, on a
// worker and inline alike: the same forms, with their kinds, as hashing
// it directly at that level.
func TestPDQSearchReachesTheHasher(t *testing.T) {
	img := encodePNG(translucent(testPhoto(13, 96, 96)))
	for _, hashing := range []string{HashingProcess, HashingInline} {
		for _, search := range []pdq.Search{pdq.SearchOff, pdq.SearchDefault, pdq.SearchDeep} {
			p, err := New(Config{Runner: testRunner, Matcher: downMatcher{}, TempDir: t.TempDir(), Hashing: hashing, PDQSearch: search})
			if err != nil {
				t.Fatal(err)
			}
			if got := p.pdqOptions().Search; got != search {
				t.Fatalf("%s: options search %v, want %v", hashing, got, search)
			}
			want, _, err := worker.HashViewed(bytes.NewReader(img), pdq.DecodeOptions{Viewed: true}, pdq.Options{Workers: 1, Search: search})
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.hashImage(context.Background(), bytes.NewReader(img))
			if err != nil {
				t.Fatal(err)
			}
			if got.Hash != want.Hash || !slices.Equal(got.Forms, want.Forms) {
				t.Fatalf("%s, search %v: forms %+v, want %+v", hashing, search, got.Forms, want.Forms)
			}
			for _, f := range got.Forms {
				if f.Variant == "" {
					t.Errorf("%s, search %v: form %q has no kind", hashing, search, f.Name)
				}
			}
		}
	}
	if _, err := New(Config{Runner: testRunner, Matcher: downMatcher{}, TempDir: t.TempDir(), PDQSearch: pdq.SearchDeep + 1}); err == nil {
		t.Fatal("an unknown search level was accepted")
	}
}

// translucent is img with alpha varying across it, so it has composited
// forms.
func translucent(img *image.NRGBA) *image.NRGBA {
	out := image.NewNRGBA(img.Bounds())
	copy(out.Pix, img.Pix)
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = byte(i / 4 % 256)
	}
	return out
}

// An embedded picture's stored hash is the embedded kind; its own forms
// keep theirs, named after where the picture was found.
func TestEmbeddedFormsKeepTheirKind(t *testing.T) {
	res := pdq.Result{Hash: pdq.Hash{1}, Quality: 90, Forms: []pdq.Form{
		{Name: "frame 2", Variant: pdq.VariantFrame, Hash: pdq.Hash{2}, Quality: 80},
		{Name: "quadrant 3", Variant: pdq.VariantQuadrant, Hash: pdq.Hash{3}, Quality: 70},
	}}
	prior := []pdq.Form{{Name: "on white", Variant: pdq.VariantComposited, Hash: pdq.Hash{9}}}
	got := appendEmbeddedForms(prior, "zip entry a.png", res)
	want := []pdq.Form{
		prior[0],
		{Name: "zip entry a.png", Variant: pdq.VariantEmbedded, Hash: pdq.Hash{1}, Quality: 90},
		{Name: "zip entry a.png frame 2", Variant: pdq.VariantFrame, Hash: pdq.Hash{2}, Quality: 80},
		{Name: "zip entry a.png quadrant 3", Variant: pdq.VariantQuadrant, Hash: pdq.Hash{3}, Quality: 70},
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

// A video by its bytes is judged as a video whatever it is declared as,
// with ffmpeg or without: its kind is what makes the matcher ask HMA's
// video_md5 list, so a banked video sent as application/octet-stream by
// a proxy without ffmpeg is still looked up there.
func TestVideoKindFromBytesWithoutFFmpeg(t *testing.T) {
	old := videoDecoding
	videoDecoding = func() bool { return false }
	t.Cleanup(func() { videoDecoding = old })
	p, err := New(Config{Runner: testRunner, Matcher: downMatcher{}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	mp4 := append([]byte("\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2"), bytes.Repeat([]byte{0x11}, 4096)...)
	for _, ct := range []string{"application/octet-stream", "", "application/zip", "video/mp4"} {
		s := p.scan(context.Background(), bytes.NewReader(mp4), ct, hashing.DigestBytes(mp4))
		if s.query.Kind != matcher.KindVideo || s.format != "mp4" {
			t.Errorf("declared %q: kind %v, format %q; want a video by its bytes", ct, s.query.Kind, s.format)
		}
		if s.undecodable != "" {
			t.Errorf("declared %q: a video judged undecodable: %s", ct, s.undecodable)
		}
	}
}

// JPEG XL that no decoder here reads (djxl absent, or the file broken) is
// judged by the strength of its signature, as imageByBytes does for every
// format: the ISO-box form's twelve bytes make it an image, so it is
// undecodable (refused by default); a bare codestream's two bytes (FF 0A)
// start one random file in 65536, so one that does not decode is as
// likely ciphertext and stays unscannable (passes).
func TestUndecodableJPEGXL(t *testing.T) {
	e := newEnv(t, nil, nil)
	junk := bytes.Repeat([]byte{0x5a, 0xa5, 0x13, 0x37}, 1024)
	box := append([]byte("\x00\x00\x00\x0cJXL \r\n\x87\n\x00\x00\x00\x14ftypjxl \x00\x00\x00\x00jxl "), junk...)
	if resp, _ := e.upload(t, "image/jxl", box); resp.StatusCode != 403 || e.obs.last().Outcome != Undecodable {
		t.Errorf("ISO-box JPEG XL nothing decodes: %d %s; want refused as undecodable", resp.StatusCode, e.obs.last().Outcome)
	}
	bare := append([]byte{0xff, 0x0a}, junk...)
	if resp, _ := e.upload(t, "application/octet-stream", bare); resp.StatusCode != 200 || e.obs.last().Outcome != Unscannable {
		t.Errorf("bare codestream signature on junk: %d %s; want passed as unscannable", resp.StatusCode, e.obs.last().Outcome)
	}
}
