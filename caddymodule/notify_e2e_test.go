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
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// detectionNotices returns the room's m.notice events carrying a
// mediaguard detection object, newest first.
func detectionNotices(t *testing.T, u *e2e.User, room string) []map[string]any {
	var out []map[string]any
	for _, ev := range u.Messages(t, room, 50) {
		if ev.Type != "m.room.message" || ev.Content["msgtype"] != "m.notice" {
			continue
		}
		if det, ok := ev.Content["org.mediaguard.detection"].(map[string]any); ok {
			out = append(out, det)
		}
	}
	return out
}

func waitNotices(t *testing.T, u *e2e.User, room string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := detectionNotices(t, u, room)
		if len(got) >= n || time.Now().After(deadline) {
			// Give a duplicate the chance to show up before counting.
			time.Sleep(500 * time.Millisecond)
			return detectionNotices(t, u, room)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNoticesEndToEnd: a blocked upload produces exactly one m.notice in
// the management room, with the structured object and the uploader; after
// a restart, a block recorded but never delivered arrives exactly once.
func TestNoticesEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	room := mod.CreateRoom(t)
	mod.Invite(t, room, bot.ID)

	listed := testimg.JPEG(testimg.Photo(77, 320, 240), 90)
	rep := reportOf(t, listed)
	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	os.WriteFile(bank, []byte("sha256 "+rep.SHA256+" listed\n"), 0o600)
	auditPath := filepath.Join(dir, "audit.log")
	proxyPort := testkit.FreePort(t)
	config := func(auditFile string) string {
		return fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		bank TEST %s
		audit_log %s
		homeserver %s
		notify matrix {
			homeserver %s
			access_token %s
			room %s
			command "!mjolnir redact {user} --quarantine"
			command "!mjolnir quarantine-media {mxc}"
		}
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
`, bank, auditFile, hs.URL, hs.URL, bot.AccessToken, room, proxyPort, strings.TrimPrefix(hs.URL, "http://"))
	}
	tester := caddytest.NewTester(t)
	tester.InitServer(config(auditPath), "caddyfile")
	front := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)

	if status, _, _ := alice.Upload(t, front, "image/jpeg", "x.jpg", listed); status != 403 {
		t.Fatalf("listed upload: %d", status)
	}
	got := waitNotices(t, mod, room, 1)
	if len(got) != 1 {
		t.Fatalf("want exactly one notice, got %d: %v", len(got), got)
	}
	if got[0]["user"] != alice.ID || got[0]["hash_type"] != "sha256" || got[0]["matched_hash_prefix"] != rep.SHA256[:16] || got[0]["direction"] != "upload" {
		t.Fatalf("detection object: %v", got[0])
	}
	if pending, _ := audit.Pending(auditPath); len(pending) != 0 {
		t.Fatalf("delivered notice still pending in the audit log: %v", pending)
	}
	// Command mode: the redact command names the uploader; the quarantine
	// command is skipped (a refused upload has no media ID).
	var cmds []string
	for _, ev := range mod.Messages(t, room, 50) {
		if ev.Content["msgtype"] == "m.text" && ev.Sender == bot.ID {
			cmds = append(cmds, ev.Content["body"].(string))
		}
	}
	if len(cmds) != 1 || cmds[0] != "!mjolnir redact "+alice.ID+" --quarantine" {
		t.Fatalf("commands sent: %q", cmds)
	}

	// A block recorded by a run that stopped before delivering its notice.
	other := filepath.Join(dir, "audit2.log")
	l, err := audit.Open(audit.Options{Path: other})
	if err != nil {
		t.Fatal(err)
	}
	l.Append(audit.Record{Kind: audit.KindBlock, Direction: "download", Endpoint: "client_download", User: alice.ID, Media: "localhost/undelivered",
		Verdict: []byte(`{"outcome":"blocked","bank":"TEST","hash_type":"pdq","matched_hash":"` + strings.Repeat("ab", 32) + `","distance":4,"source":"local:TEST"}`)})
	l.Close()
	tester.InitServer(config(other), "caddyfile") // a config reload is a new app: a restart
	got = waitNotices(t, mod, room, 2)
	if len(got) != 2 || got[0]["mxc"] != "mxc://localhost/undelivered" {
		t.Fatalf("after restart want the undelivered notice once (2 in all), got %d: %v", len(got), got)
	}
	if pending, _ := audit.Pending(other); len(pending) != 0 {
		t.Fatalf("redelivered notice still pending: %v", pending)
	}
}
