package caddymodule

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/pgtest"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/ledger"
)

// The metrics these tests read. hash_duration_seconds is observed once
// per body hashed (spooled or buffered, digests and PDQ), so its _count
// is the number of hashing jobs; media decided from memory or the ledger
// are not hashed and not counted. known_clean counts downloads served
// from what was known.
const (
	downloadsHashed = `caddy_mediaguard_hash_duration_seconds_count{direction="download"}`
	uploadsHashed   = `caddy_mediaguard_hash_duration_seconds_count{direction="upload"}`
	knownClean      = `caddy_mediaguard_requests_total{direction="download",verdict="known_clean"}`
)

// fleetCaddyfile is one instance of a fleet: its own admin endpoint and
// front port, the shared bank file and ledger, notices to a webhook.
func fleetCaddyfile(admin string, front int, bank, ledgerLine, hsURL, webhook string) string {
	notify := ""
	if webhook != "" {
		notify = "notify webhook " + webhook
	}
	return fmt.Sprintf(`{
	admin %s
	persist_config off
	grace_period 2s
	mediaguard {
		bank TEST %s
		%s
		homeserver %s
		%s
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard
	reverse_proxy %s
}
`, admin, bank, ledgerLine, hsURL, notify, front, strings.TrimPrefix(hsURL, "http://"))
}

// hook is a webhook receiver that keeps every POST's body.
type hook struct {
	mu     sync.Mutex
	bodies []string
}

func (h *hook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	if r.Method == http.MethodPost {
		h.mu.Lock()
		h.bodies = append(h.bodies, string(b))
		h.mu.Unlock()
	}
	w.WriteHeader(http.StatusOK)
}

// mentioning are the POSTs whose body contains s.
func (h *hook) mentioning(s string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, b := range h.bodies {
		if strings.Contains(b, s) {
			out = append(out, b)
		}
	}
	return out
}

// TestLedgerFleetEndToEnd: two Caddy processes in front of one real
// Dendrite share a real PostgreSQL ledger and one bank file. A clean
// image uploaded through A is downloaded through B without B hashing it
// (B's hashing-job count does not move; the download is known_clean).
// Then the image's sha256 joins the bank: both reload it, ONE retro-scan
// blocks the media (the other instance finds it done), ONE notice
// reaches the webhook both notify, and both answer 404 for the media on
// download and thumbnail. When the entry is removed again, both serve it
// again: the instance that skipped the scan forgets its block too.
func TestLedgerFleetEndToEnd(t *testing.T) {
	dsn := pgtest.Start(t)
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	notices := &hook{}
	receiver := httptest.NewServer(notices)
	defer receiver.Close()

	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	unrelated := "sha256 " + strings.Repeat("00", 32) + " unrelated\n"
	if err := os.WriteFile(bank, []byte(unrelated), 0o600); err != nil {
		t.Fatal(err)
	}
	type instance struct {
		*caddyProc
		front string
	}
	start := func(name string) instance {
		admin := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
		port := testkit.FreePort(t)
		cf := fleetCaddyfile(admin, port, bank, "ledger postgres {env.MG_E2E_LEDGER_DSN}", hs.URL, receiver.URL)
		p := startCaddyProc(t, dir, name, admin, cf, "MG_E2E_LEDGER_DSN="+dsn)
		front := fmt.Sprintf("http://127.0.0.1:%d", port)
		p.waitReady(t, front+"/_matrix/client/versions")
		return instance{p, front}
	}
	began := time.Now()
	a, b := start("a"), start("b")
	t.Logf("two instances up in %v", time.Since(began).Round(time.Millisecond))

	// (a) A verdict reached by A is used by B without hashing.
	img := testimg.JPEG(testimg.Photo(171, 320, 240), 90)
	status, body, uri := alice.Upload(t, a.front, "image/jpeg", "holiday.jpg", img)
	if status != http.StatusOK {
		t.Fatalf("clean upload through A: %d %s", status, body)
	}
	path := e2e.MediaPath(t, uri)
	server, id, _ := strings.Cut(path, "/")
	if n := a.metrics(t)[uploadsHashed]; n != 1 {
		t.Fatalf("A hashed %v uploads, want 1: the metric must count hashing jobs", n)
	}
	// A writes the ledger in the background: wait for the record to land
	// in PostgreSQL before asking B, as a client of B would in practice
	// (media is shared in a room after its upload).
	st, err := ledger.Open(context.Background(), ledger.Spec{DSN: dsn, Postgres: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	testkit.Eventually(t, "A's record of the upload in the shared ledger", func() bool {
		r, ok, err := st.Get(context.Background(), ledger.Key{Server: server, ID: id})
		return err == nil && ok && r.Verdict == ledger.Clean
	})

	// The control: media B never saw (stored past mediaguard) is hashed
	// by B, so the counter below is live.
	_, _, otherURI := alice.Upload(t, hs.URL, "image/jpeg", "other.jpg", testimg.JPEG(testimg.Photo(172, 320, 240), 90))
	before := b.metrics(t)
	if status, _, _ := e2e.Download(t, b.front, "/_matrix/client/v1/media/download/"+e2e.MediaPath(t, otherURI), alice.AccessToken); status != http.StatusOK {
		t.Fatalf("download of unknown media through B: %d", status)
	}
	after := b.metrics(t)
	if d := after[downloadsHashed] - before[downloadsHashed]; d != 1 {
		t.Fatalf("B hashed %v bodies for media it did not know, want 1", d)
	}

	before = after
	status, got, _ := e2e.Download(t, b.front, "/_matrix/client/v1/media/download/"+path, alice.AccessToken)
	if status != http.StatusOK || !bytes.Equal(got, img) {
		t.Fatalf("download of A's upload through B: %d, %d bytes (want the %d uploaded)", status, len(got), len(img))
	}
	after = b.metrics(t)
	if d := after[downloadsHashed] - before[downloadsHashed]; d != 0 {
		t.Fatalf("B hashed media A had judged: %v hashing jobs, want 0", d)
	}
	if d := after[knownClean] - before[knownClean]; d != 1 {
		t.Fatalf("B's known_clean downloads went up by %v, want 1 (decided from the shared ledger)", d)
	}

	// (b) The bank change both instances see: one retro-scan, one notice.
	offA, offB := len(a.log()), len(b.log())
	next := filepath.Join(dir, "test.bank.new")
	if err := os.WriteFile(next, []byte(unrelated+"sha256 "+reportOf(t, img).SHA256+" newly-listed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	if err := os.Rename(next, bank); err != nil {
		t.Fatal(err)
	}
	endpoints := []string{
		"/_matrix/media/v3/download/" + path, "/_matrix/client/v1/media/download/" + path,
		"/_matrix/media/v3/thumbnail/" + path + "?width=32&height=32&method=scale",
		"/_matrix/client/v1/media/thumbnail/" + path + "?width=32&height=32&method=crop",
	}
	took := testkit.EventuallyWithin(t, 10*time.Second, "both instances answer 404 on every endpoint", func() bool {
		for _, in := range []instance{a, b} {
			for _, p := range endpoints {
				if status, _, _ := e2e.Download(t, in.front, p, alice.AccessToken); status != http.StatusNotFound {
					return false
				}
			}
		}
		return true
	})
	t.Logf("both instances 404 on every endpoint %v after the bank change (waited %v)", time.Since(changed).Round(time.Millisecond), took)

	// Each instance reloads the bank and asks for the retro-scan of the
	// same change: one scans, the other finds it done under the lock.
	var scans, skips []string
	testkit.EventuallyWithin(t, 15*time.Second, "each instance's retro-scan outcome in its log", func() bool {
		la, lb := a.logSince(offA), b.logSince(offB)
		scans = append(linesWith(la, "retro-scan done"), linesWith(lb, "retro-scan done")...)
		skips = append(linesWith(la, "retro-scan already done by another instance"), linesWith(lb, "retro-scan already done by another instance")...)
		return len(scans)+len(skips) >= 2
	})
	if len(scans) != 1 || !strings.Contains(scans[0], `"now_blocked":1`) || len(skips) != 1 {
		t.Fatalf("want one retro-scan that blocked 1 media and one instance finding it done, got scans %q, skips %q", scans, skips)
	}
	scanner := "A"
	if len(linesWith(b.logSince(offB), "retro-scan done")) == 1 {
		scanner = "B"
	}
	t.Logf("instance %s ran the retro-scan: %s", scanner, scans[0])
	testkit.Eventually(t, "the retro notice at the webhook", func() bool { return len(notices.mentioning(id)) >= 1 })
	// A second notice, were there one, would follow within the same
	// second or two: give it the time to arrive.
	time.Sleep(2 * time.Second)
	if n := notices.mentioning(id); len(n) != 1 {
		t.Fatalf("want exactly one notice of the media, got %d: %q", len(n), n)
	}
	if n := len(linesWith(a.log()+b.log(), "stored media now matches a hash list")); n != 1 {
		t.Fatalf("retro-scan hits logged by the fleet: %d, want 1", n)
	}

	// (c) The entry is removed again (a tombstone, a mistaken listing):
	// one instance re-derives the verdict, and both serve the media
	// again, the one that skipped the scan included.
	offA, offB = len(a.log()), len(b.log())
	if err := os.WriteFile(next, []byte(unrelated), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, bank); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, 10*time.Second, "both instances serve the media again after the entry's removal", func() bool {
		for _, in := range []instance{a, b} {
			for _, p := range endpoints {
				if status, _, _ := e2e.Download(t, in.front, p, alice.AccessToken); status != http.StatusOK {
					return false
				}
			}
		}
		return true
	})
	testkit.Eventually(t, "one re-derivation and one instance forgetting the block it lifted", func() bool {
		l := a.logSince(offA) + b.logSince(offB)
		return len(linesWith(l, "retro-scan done", `"unblocked":1`)) == 1 &&
			len(linesWith(l, "blocks lifted by another instance's retro-scan forgotten", `"unblocked":1`)) == 1
	})
}
