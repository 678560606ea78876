package caddymodule

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// fakeSynapseMedia serves one stored media item on the legacy download
// endpoint and the Synapse admin quarantine endpoint as documented
// (reference/matrix.md: POST /_synapse/admin/v1/media/quarantine/{server}/{mediaId},
// admin token as Bearer, body {} → 200 {}). Dendrite has no admin API, so
// this is a fake; it can fail the first N quarantine calls with 503.
type fakeSynapseMedia struct {
	*httptest.Server
	media     []byte
	failFirst atomic.Int32
	mu        sync.Mutex
	calls     []string
}

func newFakeSynapseMedia(t *testing.T, media []byte) *fakeSynapseMedia {
	f := &fakeSynapseMedia{media: media}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == "GET" && strings.HasPrefix(r.URL.Path, "/_matrix/media/v3/download/"):
			w.Header().Set("Content-Type", "image/jpeg")
			w.Write(f.media)
		case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/_synapse/admin/v1/media/quarantine/"):
			body, _ := io.ReadAll(r.Body)
			f.mu.Lock()
			f.calls = append(f.calls, r.URL.Path+" "+r.Header.Get("Authorization")+" "+string(body))
			f.mu.Unlock()
			if f.failFirst.Add(-1) >= 0 {
				w.WriteHeader(503)
				return
			}
			io.WriteString(w, "{}")
		default:
			w.WriteHeader(404)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSynapseMedia) quarantineCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// TestQuarantineBlockedDownload: a blocked download of stored media is
// quarantined through the Synapse admin API with the admin token, after
// retrying a failure, and the outcome is in the audit log.
func TestQuarantineBlockedDownload(t *testing.T) {
	listed := testimg.JPEG(testimg.Photo(91, 200, 150), 90)
	rep := reportOf(t, listed)
	f := newFakeSynapseMedia(t, listed)
	f.failFirst.Store(1)
	dir := t.TempDir()
	bank := filepath.Join(dir, "b.bank")
	os.WriteFile(bank, []byte("sha256 "+rep.SHA256+"\n"), 0o600)
	auditPath := filepath.Join(dir, "audit.log")
	port := freePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		bank TEST %s
		audit_log %s
		synapse_admin {
			homeserver %s
			access_token admin-secret
		}
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
`, bank, auditPath, f.URL, port, strings.TrimPrefix(f.URL, "http://")), "caddyfile")
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/download/hs.example/Bad123", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("listed download: %d", resp.StatusCode)
	}
	var outcome string
	deadline := time.Now().Add(10 * time.Second)
	for outcome == "" && time.Now().Before(deadline) {
		audit.Read(auditPath, time.Time{}, func(r audit.Record) error {
			if r.Kind == audit.KindAction && r.Action == "quarantine" {
				outcome = r.Outcome
			}
			return nil
		})
		time.Sleep(50 * time.Millisecond)
	}
	calls := f.quarantineCalls()
	if outcome != audit.OutcomeOK || len(calls) != 2 {
		t.Fatalf("quarantine outcome %q after %d calls", outcome, len(calls))
	}
	if calls[1] != "/_synapse/admin/v1/media/quarantine/hs.example/Bad123 Bearer admin-secret {}" {
		t.Fatalf("call %q", calls[1])
	}
	// A repeat request is answered from memory and recorded, but it is
	// not a new detection awaiting a notice.
	resp, err = http.Get(fmt.Sprintf("http://127.0.0.1:%d/_matrix/client/v1/media/download/hs.example/Bad123", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("repeat: %d", resp.StatusCode)
	}
	if pending, _ := audit.Pending(auditPath); len(pending) != 1 {
		t.Fatalf("want only the first block pending a notice, got %d", len(pending))
	}
}
