package caddymodule

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// TestLedgerRestartNoRehash: after a restart, the first 1,000 downloads of
// known media cause zero hashing jobs. 150 distinct clean images are
// uploaded through mediaguard (a Caddy process with the embedded ledger)
// to a real Dendrite; Caddy is stopped and a new process started, whose
// memory holds no verdict; 1,000 downloads spread over those media (both
// download endpoints) are all served, byte for byte, from the ledger and
// then memory: the hashing-job count stays 0 and every one is known_clean.
// Thumbnails are other renditions' bytes, hashed by design once each: the
// last one shows the counter is live.
func TestLedgerRestartNoRehash(t *testing.T) {
	const media, downloads = 150, 1000
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)

	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+strings.Repeat("00", 32)+" unrelated\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	admin := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	port := testkit.FreePort(t)
	front := fmt.Sprintf("http://127.0.0.1:%d", port)
	cf := fleetCaddyfile(admin, port, bank, "ledger "+filepath.Join(dir, "ledger.db"), hs.URL, "")
	start := func() *caddyProc {
		p := startCaddyProc(t, dir, "caddy", admin, cf)
		p.waitReady(t, front+"/_matrix/client/versions")
		return p
	}

	first := start()
	began := time.Now()
	imgs := make([][]byte, media)
	paths := make([]string, media)
	for i := range imgs {
		imgs[i] = testimg.JPEG(testimg.Photo(1000+i, 96, 72), 85)
		status, body, uri := alice.Upload(t, front, "image/jpeg", fmt.Sprintf("img%d.jpg", i), imgs[i])
		if status != http.StatusOK {
			t.Fatalf("clean upload %d: %d %s", i, status, body)
		}
		paths[i] = e2e.MediaPath(t, uri)
	}
	t.Logf("%d uploads through mediaguard in %v", media, time.Since(began).Round(time.Millisecond))
	if n := first.metrics(t)[uploadsHashed]; n != media {
		t.Fatalf("uploads hashed: %v, want %d", n, media)
	}
	// A graceful stop writes the ledger's queued records before Caddy
	// exits.
	first.stop()
	for _, bad := range []string{"records dropped", "ledger write failed"} {
		if strings.Contains(first.log(), bad) {
			t.Fatalf("the ledger lost records (%q):\n%s", bad, first.log())
		}
	}

	restarted := time.Now()
	second := start()
	offset := len(second.log())
	t.Logf("restarted in %v", time.Since(restarted).Round(time.Millisecond))
	if m := second.metrics(t); m[downloadsHashed] != 0 || m[knownClean] != 0 {
		t.Fatalf("a new process starts its counters at 0: hashed %v, known_clean %v", m[downloadsHashed], m[knownClean])
	}
	began = time.Now()
	for i := range downloads {
		// Round robin over the media, alternating the two download
		// endpoints (the unauthenticated legacy one and MSC3916's).
		k := i % media
		prefix := "/_matrix/media/v3/download/"
		if i%2 == 1 {
			prefix = "/_matrix/client/v1/media/download/"
		}
		status, body, _ := e2e.Download(t, front, prefix+paths[k], alice.AccessToken)
		if status != http.StatusOK || !bytes.Equal(body, imgs[k]) {
			t.Fatalf("download %d of %s: %d, %d bytes (want the %d uploaded)", i, paths[k], status, len(body), len(imgs[k]))
		}
	}
	t.Logf("%d downloads after the restart in %v", downloads, time.Since(began).Round(time.Millisecond))
	m := second.metrics(t)
	if m[downloadsHashed] != 0 {
		t.Fatalf("after the restart, %d downloads of known media caused %v hashing jobs, want 0", downloads, m[downloadsHashed])
	}
	if m[knownClean] != downloads {
		t.Fatalf("known_clean downloads: %v, want %d (each decided from the ledger, then memory)", m[knownClean], downloads)
	}

	// A thumbnail is a rendition of its own, hashed by design (the
	// original's verdict lets it through to be judged): the counter moves.
	status, _, _ := e2e.Download(t, front, "/_matrix/client/v1/media/thumbnail/"+paths[0]+"?width=32&height=32&method=scale", alice.AccessToken)
	if status != http.StatusOK {
		t.Fatalf("thumbnail: %d", status)
	}
	if n := second.metrics(t)[downloadsHashed]; n != 1 {
		t.Fatalf("a thumbnail's bytes are hashed once: %v hashing jobs, want 1", n)
	}
	if s := second.logSince(offset); strings.Contains(s, "ledger read failed") {
		t.Fatalf("ledger reads failed after the restart:\n%s", s)
	}
	// Both starts find the ledger consistent with the banks (the first
	// found it empty, the restart up to date): nothing is re-judged, and
	// a lone proxy's log names no other instance.
	if l := second.log(); len(linesWith(l, "ledger consistent with the banks")) != 2 || len(linesWith(l, "retro-scan done")) != 0 || strings.Contains(l, "another instance") {
		t.Fatalf("want the restart to find the ledger consistent, no other instance named:\n%s", strings.Join(linesWith(l, "retro-scan"), "\n")+strings.Join(linesWith(l, "ledger consistent"), "\n"))
	}
}
