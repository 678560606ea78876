package mediaproxy

import (
	"bytes"
	"context"
	"os/exec"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/worker"
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
