package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// TestRetroScanEndToEnd: media uploaded clean through mediaguard to a
// real Dendrite becomes listed when its hash is appended to the bank
// file; within 2 s of the reload every download and thumbnail endpoint
// answers 404, exactly one retro notice reaches the management room, the
// audit log has a retro_block and the Synapse admin API (a fake: Dendrite
// has none) got the quarantine call.
func TestRetroScanEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	room := mod.CreateRoom(t)
	mod.Invite(t, room, bot.ID)
	admin := fakes.NewSynapse(t)
	admin.AdminToken = "admin-secret"

	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	os.WriteFile(bank, []byte("sha256 "+strings.Repeat("00", 32)+" unrelated\n"), 0o600)
	auditPath := filepath.Join(dir, "audit.log")
	proxyPort := testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		bank TEST %s
		ledger %s
		audit_log %s
		homeserver %s
		notify matrix {
			homeserver %s
			access_token %s
			room %s
		}
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
`, bank, filepath.Join(dir, "ledger.db"), auditPath, hs.URL, hs.URL, bot.AccessToken, room, admin.URL, proxyPort, strings.TrimPrefix(hs.URL, "http://")), "caddyfile")
	front := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)

	img := testimg.JPEG(testimg.Photo(91, 400, 300), 90)
	status, body, uri := alice.Upload(t, front, "image/jpeg", "holiday.jpg", img)
	if status != 200 {
		t.Fatalf("clean upload: %d %s", status, body)
	}
	path := e2e.MediaPath(t, uri)
	endpoints := []string{
		"/_matrix/media/v3/download/" + path, "/_matrix/client/v1/media/download/" + path,
		"/_matrix/media/v3/thumbnail/" + path + "?width=32&height=32&method=scale",
		"/_matrix/client/v1/media/thumbnail/" + path + "?width=32&height=32&method=crop",
	}
	for _, p := range endpoints {
		if status, _, _ := e2e.Download(t, front, p, alice.AccessToken); status != 200 {
			t.Fatalf("%s before the bank change: %d", p, status)
		}
	}

	// The list grows: publish the new bank file by renaming it into place.
	rep := reportOf(t, img)
	next := filepath.Join(dir, "test.bank.new")
	os.WriteFile(next, []byte("sha256 "+strings.Repeat("00", 32)+" unrelated\nsha256 "+rep.SHA256+" newly-listed\n"), 0o600)
	changed := time.Now()
	if err := os.Rename(next, bank); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, 3*time.Second, "every endpoint answers 404 after the bank change", func() bool {
		for _, p := range endpoints {
			if status, _, _ := e2e.Download(t, front, p, alice.AccessToken); status != 404 {
				return false
			}
		}
		return true
	})
	// The bank is polled every second: the reload itself may come up to
	// a second after the rename.
	if took := time.Since(changed); took > 3*time.Second {
		t.Fatalf("stored media still served %v after the bank change", took)
	}

	got := waitNotices(t, mod, room, 1)
	if len(got) != 1 || got[0]["kind"] != "retro_block" || got[0]["mxc"] != "mxc://"+path || got[0]["user"] != alice.ID || got[0]["first_seen"] == nil {
		t.Fatalf("want exactly one retro notice naming the media and its uploader, got %d: %v", len(got), got)
	}
	var retro int
	audit.Read(auditPath, time.Time{}, func(r audit.Record) error {
		if r.Kind == audit.KindRetroBlock && r.Media == path && r.Digests["sha256"] == rep.SHA256 {
			retro++
		}
		return nil
	})
	if retro != 1 {
		t.Fatalf("audit retro_block records for the media: %d, want 1", retro)
	}
	testkit.Eventually(t, "the quarantine call", func() bool {
		calls := quarantineCalls(admin)
		return len(calls) == 1 && strings.HasPrefix(calls[0], "/_synapse/admin/v1/media/quarantine/"+path+" Bearer admin-secret")
	})
}
