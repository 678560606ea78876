package mediaproxy

import (
	"bytes"
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/matcher"
)

// Where no hashing process can start (exec forbidden, a broken binary),
// images are still hashed, in-process, with the same result.
func TestHashingFallsBackInline(t *testing.T) {
	p, err := New(Config{Matcher: downMatcher{}, TempDir: t.TempDir(), Dihedral: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.workers == nil {
		t.Fatal("hashing process is the default, but the proxy has no worker pool")
	}
	p.workers = worker.NewPool(1, worker.Options{Command: func() *exec.Cmd { return exec.Command("/nonexistent/mediaguard") }})
	defer p.workers.Close()
	img := jpegBytes(testPhoto(11, 320, 240), 90)
	want, _, err := pdq.HashBytes(img, pdq.DecodeOptions{}, pdq.Options{Dihedral: true})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first try starts (and fails), the second is refused at once
		got, err := p.hashImage(context.Background(), bytes.NewReader(img))
		if err != nil || got.Hash != want.Hash || got.Dihedral == nil || *got.Dihedral != *want.Dihedral {
			t.Fatalf("got %v, %v; want the in-process hash %v", got.Hash, err, want.Hash)
		}
	}
	if started, failed := p.workers.Stats(); started != 0 || failed != 1 {
		t.Errorf("started %d, failed %d; want one failed start, then no retry", started, failed)
	}
}

// A client that leaves while its image is on a worker leaves it unjudged:
// no perceptual hash, and not "unscannable" (which would be remembered
// and let later downloads skip hashing).
func TestClientLeavesMidHash(t *testing.T) {
	p, err := New(Config{Matcher: downMatcher{}, TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// A worker that greets and never answers (the image fits in the
	// pipe's buffer, so sending it completes).
	p.workers = worker.NewPool(1, worker.Options{Command: func() *exec.Cmd {
		return exec.Command("sh", "-c", "printf 'mediaguard-hash-worker 2\\n'; exec sleep 30")
	}})
	defer p.workers.Close()
	img := jpegBytes(testPhoto(12, 320, 240), 90)
	if len(img) > 60<<10 {
		t.Fatalf("a %d-byte image would not fit in the pipe", len(img))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	s := p.scan(ctx, bytes.NewReader(img), "image/jpeg", digestBytes(img))
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
