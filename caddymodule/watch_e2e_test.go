package caddymodule

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/service"
)

// TestWatchRoomsEndToEnd: a listed picture uploaded straight to the
// homeserver (never through mediaguard) and posted in a watched room is
// found from the event: one notice names room, event, sender and media,
// the event is redacted once, the media is refused through mediaguard
// from then on, and a restart does it all no second time.
func TestWatchRoomsEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	mgmt := mod.CreateRoom(t)
	mod.Invite(t, mgmt, bot.ID)
	public := mod.CreateRoom(t)
	mod.Invite(t, public, alice.ID)
	alice.Join(t, public)
	mod.Invite(t, public, bot.ID)
	// The bot may redact others' events in the watched room.
	plPath := "/_matrix/client/v3/rooms/" + url.PathEscape(public) + "/state/m.room.power_levels/"
	if st, b := mod.Do(t, http.MethodPut, plPath, map[string]any{"users": map[string]any{mod.ID: 100, bot.ID: 50}}); st != http.StatusOK {
		t.Fatalf("power levels: %d %s", st, b)
	}

	listed := testimg.JPEG(testimg.Photo(77, 320, 240), 90)
	rep := reportOf(t, listed)
	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+rep.SHA256+" listed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Straight to the homeserver: mediaguard never sees these uploads.
	upload := func(img []byte) string {
		st, body, uri := alice.Upload(t, hs.URL, "image/jpeg", "x.jpg", img)
		if st != http.StatusOK {
			t.Fatalf("upload to the homeserver: %d %s", st, body)
		}
		return uri
	}
	listedURI := upload(listed)
	cleanURI := upload(testimg.JPEG(testimg.Photo(5, 320, 240), 90))

	auditPath := filepath.Join(dir, "audit.log")
	admin := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	port := testkit.FreePort(t)
	front := fmt.Sprintf("http://127.0.0.1:%d", port)
	cf := fmt.Sprintf(`{
	admin %s
	persist_config off
	grace_period 2s
	mediaguard {
		bank TEST %s
		audit_log %s
		homeserver %s
		notify matrix {
			homeserver %s
			access_token {env.MEDIAGUARD_TEST_BOT_TOKEN}
			room %s
			watch_rooms %s
			redact on
		}
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard
	reverse_proxy %s
}
`, admin, bank, auditPath, hs.URL, hs.URL, mgmt, public, port, strings.TrimPrefix(hs.URL, "http://"))
	var proc *caddyProc
	start := func() { proc = startBotCaddy(t, proc, dir, admin, cf, front, bot.AccessToken) }
	start()
	post := func(uri string) string {
		return alice.SendMessage(t, public, map[string]any{"msgtype": "m.image", "body": "pic.jpg", "url": uri, "info": map[string]any{"mimetype": "image/jpeg"}})
	}
	clean := post(cleanURI)
	ev := post(listedURI)

	notices := func() []map[string]any {
		var out []map[string]any
		for _, e := range mod.Messages(t, mgmt, 100) {
			if d, ok := e.Content["org.mediaguard.event_detection"].(map[string]any); ok && e.Sender == bot.ID {
				out = append(out, d)
			}
		}
		return out
	}
	testkit.EventuallyWithin(t, 30*time.Second, "the notice of the listed event", func() bool { return len(notices()) > 0 })
	got := notices()
	if len(got) != 1 || got[0]["room_id"] != public || got[0]["event_id"] != ev || got[0]["sender"] != alice.ID || got[0]["mxc"] != listedURI || got[0]["redaction"] != "redacted" {
		t.Fatalf("notices: %v", got)
	}
	st, body := mod.Do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(public)+"/event/"+url.PathEscape(ev), nil)
	if st != http.StatusOK || !strings.Contains(string(body), `"content":{}`) || !strings.Contains(string(body), bot.ID) {
		t.Fatalf("the listed event is not redacted by the bot: %d %s", st, body)
	}
	if st, body := mod.Do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(public)+"/event/"+url.PathEscape(clean), nil); st != http.StatusOK || strings.Contains(string(body), "redacted_because") {
		t.Fatalf("the clean event was touched: %d %s", st, body)
	}
	if st, _, _ := e2e.Download(t, front, "/_matrix/client/v1/media/download/"+e2e.MediaPath(t, listedURI), alice.AccessToken); st != http.StatusNotFound {
		t.Fatalf("listed media through mediaguard: %d, want 404", st)
	}
	if st, _, _ := e2e.Download(t, front, "/_matrix/client/v1/media/download/"+e2e.MediaPath(t, cleanURI), alice.AccessToken); st != http.StatusOK {
		t.Fatalf("clean media through mediaguard: %d, want 200", st)
	}

	// A restart judges nothing twice: still one notice, one redaction.
	proc.stop()
	start()
	post(cleanURI)
	time.Sleep(3 * time.Second)
	if n := len(notices()); n != 1 {
		t.Fatalf("%d notices after a restart, want 1", n)
	}
	var recs []audit.Record
	audit.Read(auditPath, time.Time{}, func(r audit.Record) error {
		if r.Action == service.ActionWatch {
			recs = append(recs, r)
		}
		return nil
	})
	if len(recs) != 1 || recs[0].Ref != ev || recs[0].User != alice.ID || recs[0].Media != e2e.MediaPath(t, listedURI) {
		t.Fatalf("audit records of watched media: %+v", recs)
	}
	redactions := 0
	for _, e := range mod.Messages(t, public, 100) {
		if e.Type == "m.room.redaction" {
			redactions++
		}
	}
	if redactions != 1 {
		t.Fatalf("%d redactions in the watched room, want 1", redactions)
	}
}
