package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// newFakeSynapseMedia starts the shared fake Synapse (internal/fakes.Synapse,
// which says what each answer follows: Dendrite has no admin API) storing
// media as hs.example/Bad123, with admin token admin-secret.
func newFakeSynapseMedia(t *testing.T, media []byte) *fakes.Synapse {
	f := fakes.NewSynapse(t)
	f.AdminToken = "admin-secret"
	f.Put("Bad123", media, "image/jpeg")
	return f
}

// quarantineCalls lists the fake's quarantine calls as "path auth body".
func quarantineCalls(f *fakes.Synapse) []string {
	var out []string
	for _, c := range f.Calls() {
		if c.Method == "POST" && strings.HasPrefix(c.Path, "/_synapse/admin/v1/media/quarantine/") {
			out = append(out, c.Path+" "+c.Auth+" "+c.Body)
		}
	}
	return out
}

// TestQuarantineBlockedDownload: a blocked download of stored media is
// quarantined through the Synapse admin API with the admin token, after
// retrying a failure, and the outcome is in the audit log.
func TestQuarantineBlockedDownload(t *testing.T) {
	listed := testimg.JPEG(testimg.Photo(91, 200, 150), 90)
	rep := reportOf(t, listed)
	f := newFakeSynapseMedia(t, listed)
	f.FailAdmin(1, 503)
	dir := t.TempDir()
	bank := filepath.Join(dir, "b.bank")
	os.WriteFile(bank, []byte("sha256 "+rep.SHA256+"\n"), 0o600)
	auditPath := filepath.Join(dir, "audit.log")
	port := testkit.FreePort(t)
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
	calls := quarantineCalls(f)
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
