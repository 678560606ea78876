package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// nearPDQ is a PDQ hash at distance d from the picture b's.
func nearPDQ(t *testing.T, b []byte, d int) string {
	t.Helper()
	h, err := pdq.ParseHex(reportOf(t, b).PDQ)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < d; k++ {
		h[k/64] ^= 1 << (k % 64)
	}
	return h.String()
}

// TestReviewBandEndToEnd: on a real Dendrite behind a real Caddy, a
// near-duplicate in the review band is stored and posts exactly one
// review notice; once a moderator confirms it, its next upload is refused
// and the stored copy answers 404; once another is dismissed, it passes
// from then on without a notice.
func TestReviewBandEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	room := mod.CreateRoom(t)
	mod.Invite(t, room, bot.ID)

	a, b := testimg.JPEG(testimg.Photo(181, 400, 300), 90), testimg.JPEG(testimg.Photo(182, 400, 300), 90)
	dir := t.TempDir()
	listed := filepath.Join(dir, "listed.bank")
	os.WriteFile(listed, []byte("pdq "+nearPDQ(t, a, 36)+" case-a\npdq "+nearPDQ(t, b, 40)+" case-b\n"), 0o600)
	auditPath := filepath.Join(dir, "audit.log")
	proxyPort := testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		bank LISTED %s
		review_threshold 45
		confirmed_bank CONFIRMED %s
		allow FALSE_POSITIVES %s
		audit_log %s
		homeserver %s
		notify matrix {
			homeserver %s
			access_token %s
			room %s
			command "!mjolnir redact {user} --quarantine"
		}
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
`, listed, filepath.Join(dir, "confirmed.bank"), filepath.Join(dir, "allow.bank"), auditPath, hs.URL, hs.URL, bot.AccessToken, room, proxyPort, strings.TrimPrefix(hs.URL, "http://")), "caddyfile")
	front := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)
	// The bot follows the management room from its first sync on; its
	// state file is written after that sync, and commands sent from then
	// on are carried out.
	testkit.EventuallyWithin(t, 30*time.Second, "the bot to follow the management room", func() bool {
		_, err := os.Stat(auditPath + ".commands.json")
		return err == nil
	})
	// command sends a moderator's command and returns the bot's answer.
	command := func(text string) string {
		t.Helper()
		id := mod.SendMessage(t, room, map[string]any{"msgtype": "m.text", "body": text})
		var a [2]string
		testkit.EventuallyWithin(t, 20*time.Second, "the answer to "+text, func() bool {
			var ok bool
			a, ok = commandAnswers(t, mod, room, bot.ID)[id]
			return ok
		})
		return a[1]
	}

	status, _, uriA := alice.Upload(t, front, "image/jpeg", "a.jpg", a)
	if status != 200 || uriA == "" {
		t.Fatalf("near-duplicate upload: %d, want 200 (review_action allow)", status)
	}
	got := waitNotices(t, mod, room, 1)
	if len(got) != 1 {
		t.Fatalf("want exactly one review notice, got %d: %v", len(got), got)
	}
	n := got[0]
	if n["kind"] != "review" || n["mxc"] != uriA || n["user"] != alice.ID || n["bank"] != "LISTED" || n["distance"] != float64(36) {
		t.Fatalf("review notice: %v", n)
	}
	idA := n["id"].(string)
	// The moderator answers from the management room.
	if reply := command("!mediaguard confirm " + idA); !strings.Contains(reply, "confirmed detection "+idA) {
		t.Fatalf("confirm answered %q", reply)
	}
	if reply := command("!mediaguard confirm " + idA); !strings.Contains(reply, "already confirmed") {
		t.Fatalf("second confirm answered %q", reply)
	}
	if status, _, _ := alice.Upload(t, front, "image/jpeg", "a.jpg", a); status != 403 {
		t.Fatalf("upload after confirmation: %d, want 403", status)
	}
	if status, _, _ := e2e.Download(t, front, "/_matrix/client/v1/media/download/"+e2e.MediaPath(t, uriA), alice.AccessToken); status != 404 {
		t.Fatalf("stored copy after confirmation: %d, want 404", status)
	}

	status, _, uriB := alice.Upload(t, front, "image/jpeg", "b.jpg", b)
	if status != 200 {
		t.Fatalf("second near-duplicate: %d", status)
	}
	got = waitNotices(t, mod, room, 3) // review A, the block of A, review B; newest first
	if len(got) != 3 || got[0]["kind"] != "review" || got[0]["mxc"] != uriB || got[1]["bank"] != "CONFIRMED" {
		t.Fatalf("notices %v", got)
	}
	if reply := command("!mediaguard dismiss " + got[0]["id"].(string)); !strings.Contains(reply, "dismissed") {
		t.Fatalf("dismiss answered %q", reply)
	}
	for i := 0; i < 2; i++ {
		if status, _, _ := alice.Upload(t, front, "image/jpeg", "b.jpg", b); status != 200 {
			t.Fatalf("upload %d after dismissal: %d", i, status)
		}
	}
	if got = waitNotices(t, mod, room, 4); len(got) != 3 {
		t.Fatalf("a dismissed file still notifies: %v", got[0])
	}
}
