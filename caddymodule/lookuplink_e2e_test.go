package caddymodule

import (
	"bytes"
	"encoding/json"
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

// botMessage is one of the bot's messages in the management room.
type botMessage struct {
	id, body string
	// threadRoot is the event whose thread it is in, "" when in the
	// room's timeline.
	threadRoot string
	// detection and sighting are its org.mediaguard.detection and
	// org.mediaguard.event_detection objects, if any.
	detection, sighting map[string]any
}

// botMessages are the bot's messages in room, newest first.
func botMessages(t *testing.T, u *e2e.User, room, bot string) []botMessage {
	t.Helper()
	var out []botMessage
	for _, ev := range u.Messages(t, room, 200) {
		if ev.Sender != bot || ev.Type != "m.room.message" {
			continue
		}
		m := botMessage{id: ev.EventID}
		m.body, _ = ev.Content["body"].(string)
		if rel, ok := ev.Content["m.relates_to"].(map[string]any); ok && rel["rel_type"] == "m.thread" {
			m.threadRoot, _ = rel["event_id"].(string)
		}
		m.detection, _ = ev.Content["org.mediaguard.detection"].(map[string]any)
		m.sighting, _ = ev.Content["org.mediaguard.event_detection"].(map[string]any)
		out = append(out, m)
	}
	return out
}

// TestLookupLinkEndToEnd: on a real Dendrite behind a real Caddy, Mjolnir
// plugin's lookup of a room event whose picture mediaguard blocked is one
// reply in the thread of the block's notice, naming room, event and
// sender, and asking again adds nothing; a lookup of a listed picture
// mediaguard never saw is one notice of its own, which the block of that
// picture then joins; in a watched room with redact on, the event is
// redacted once, after mediaguard judged its media itself.
func TestLookupLinkEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	mgmt := mod.CreateRoom(t)
	mod.Invite(t, mgmt, bot.ID)
	public, watched := mod.CreateRoom(t), mod.CreateRoom(t)
	for _, r := range []string{public, watched} {
		mod.Invite(t, r, alice.ID)
		alice.Join(t, r)
	}
	mod.Invite(t, watched, bot.ID)
	plPath := "/_matrix/client/v3/rooms/" + url.PathEscape(watched) + "/state/m.room.power_levels/"
	if st, b := mod.Do(t, http.MethodPut, plPath, map[string]any{"users": map[string]any{mod.ID: 100, bot.ID: 50}}); st != http.StatusOK {
		t.Fatalf("power levels: %d %s", st, b)
	}

	seen, unseen, inWatched := testimg.JPEG(testimg.Photo(61, 320, 240), 90), testimg.JPEG(testimg.Photo(62, 320, 240), 90), testimg.JPEG(testimg.Photo(63, 320, 240), 90)
	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	var entries string
	for _, p := range [][]byte{seen, unseen, inWatched} {
		entries += "sha256 " + reportOf(t, p).SHA256 + " listed\n"
	}
	if err := os.WriteFile(bank, []byte(entries), 0o600); err != nil {
		t.Fatal(err)
	}
	// Pictures in rooms arrive straight at the homeserver (a client of
	// another server, or before mediaguard was installed).
	post := func(room string, img []byte) string {
		st, body, uri := alice.Upload(t, hs.URL, "image/jpeg", "x.jpg", img)
		if st != http.StatusOK {
			t.Fatalf("upload to the homeserver: %d %s", st, body)
		}
		return alice.SendMessage(t, room, map[string]any{"msgtype": "m.image", "body": "pic.jpg", "url": uri, "info": map[string]any{"mimetype": "image/jpeg"}})
	}
	// Posted before mediaguard starts: the bot follows its rooms from
	// its first start on, so only the lookup brings this event up.
	evWatched := post(watched, inWatched)

	auditPath := filepath.Join(dir, "audit.log")
	admin := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	port, lookupPort := testkit.FreePort(t), testkit.FreePort(t)
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
http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard_lookup
}
`, admin, bank, auditPath, hs.URL, hs.URL, mgmt, watched, port, strings.TrimPrefix(hs.URL, "http://"), lookupPort)
	proc := startBotCaddy(t, nil, dir, admin, cf, front, bot.AccessToken)

	// lookup asks as Mjolnir's plugin does (its placeholder PDQ included).
	lookup := func(img []byte, event, room string) {
		t.Helper()
		r := reportOf(t, img)
		body, _ := json.Marshal(map[string]any{
			"hashes":  map[string]string{"md5": r.MD5, "sha1": r.SHA1, "sha256": r.SHA256, "pdq": "stubbed_pdq_placeholder_0123456789abcdef"},
			"eventId": event, "roomId": room, "userId": alice.ID, "mediaType": "m.image", "timestamp": time.Now().UnixMilli(),
		})
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/", lookupPort), "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var got struct{ Action string }
		if json.NewDecoder(resp.Body).Decode(&got) != nil || resp.StatusCode != 200 || got.Action != "block" {
			t.Fatalf("lookup answered %d %+v, want a block", resp.StatusCode, got)
		}
	}
	messages := func() []botMessage { return botMessages(t, mod, mgmt, bot.ID) }
	// about are the bot's messages that report event.
	about := func(event string) []botMessage {
		var out []botMessage
		for _, m := range messages() {
			if m.sighting != nil && m.sighting["event_id"] == event {
				out = append(out, m)
			}
		}
		return out
	}
	timeline := func() (n int) {
		for _, m := range messages() {
			if m.threadRoot == "" {
				n++
			}
		}
		return n
	}

	// 1. The proxy blocks a picture, then the plugin asks about an event
	// with it: one reply in the thread of the block's notice.
	if st, body, _ := alice.Upload(t, front, "image/jpeg", "x.jpg", seen); st != http.StatusForbidden {
		t.Fatalf("listed upload through mediaguard: %d %s", st, body)
	}
	var block botMessage
	testkit.EventuallyWithin(t, 20*time.Second, "the block's notice", func() bool {
		ms := messages()
		if len(ms) == 0 || ms[0].detection == nil {
			return false
		}
		block = ms[0]
		return true
	})
	evSeen := post(public, seen)
	lookup(seen, evSeen, public)
	testkit.EventuallyWithin(t, 20*time.Second, "the reply in the block's thread", func() bool { return len(about(evSeen)) > 0 })
	reply := about(evSeen)[0]
	// The public room is not watched: the bot never read the event, so
	// what the request named is shown as its word.
	if want := "🔗 Seen in " + public + " as " + evSeen + ", sent by " + alice.ID + " (Mjolnir's lookup; room, event and sender reported by the lookup request)"; reply.threadRoot != block.id || reply.body != want {
		t.Fatalf("reply in thread %q (want %q):\n%s\nwant:\n%s", reply.threadRoot, block.id, reply.body, want)
	}
	t.Logf("the block's notice:\n%s\nits reply:\n%s", block.body, reply.body)
	if n := timeline(); n != 1 {
		t.Fatalf("%d notices in the room's timeline, want the block's only", n)
	}
	// 2. The plugin asks again: nothing more.
	lookup(seen, evSeen, public)
	time.Sleep(2 * time.Second)
	if n, all := len(about(evSeen)), len(messages()); n != 1 || all != 2 {
		t.Fatalf("after the same lookup again: %d reports of the event, %d messages; want 1 and 2", n, all)
	}

	// 3. A listed picture mediaguard never saw: a notice of its own
	// naming room, event and sender; its block later joins it.
	evUnseen := post(public, unseen)
	lookup(unseen, evUnseen, public)
	testkit.EventuallyWithin(t, 20*time.Second, "the lookup's own notice", func() bool { return len(about(evUnseen)) > 0 })
	own := about(evUnseen)[0]
	for _, want := range []string{"listed media posted in a room (Mjolnir's lookup)", "Room: " + public, "Event: " + evUnseen, "Sent by: " + alice.ID} {
		if !strings.Contains(own.body, want) || own.threadRoot != "" {
			t.Fatalf("own notice (thread %q) lacks %q:\n%s", own.threadRoot, want, own.body)
		}
	}
	t.Logf("the lookup's own notice:\n%s", own.body)
	if st, _, _ := alice.Upload(t, front, "image/jpeg", "x.jpg", unseen); st != http.StatusForbidden {
		t.Fatalf("listed upload through mediaguard: %d", st)
	}
	testkit.EventuallyWithin(t, 20*time.Second, "the block in the lookup's story", func() bool {
		ms := messages()
		return len(ms) > 0 && ms[0].detection != nil
	})
	if late := messages()[0]; late.threadRoot != own.id {
		t.Fatalf("the block of a picture a lookup reported first is in thread %q, want %q:\n%s", late.threadRoot, own.id, late.body)
	}

	// 4. A watched room with redact on: the event is redacted once.
	lookup(inWatched, evWatched, watched)
	testkit.EventuallyWithin(t, 60*time.Second, "the report of the watched event", func() bool { return len(about(evWatched)) > 0 })
	if got := about(evWatched); len(got) != 1 || got[0].sighting["redaction"] != "redacted" || got[0].sighting["via"] != "lookup" ||
		got[0].sighting["verified"] != true || got[0].sighting["sender"] != alice.ID || strings.Contains(got[0].body, "reported by the lookup request") {
		t.Fatalf("reports of the watched event: %+v", got)
	}
	t.Logf("the watched event's report:\n%s", about(evWatched)[0].body)
	st, body := mod.Do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(watched)+"/event/"+url.PathEscape(evWatched), nil)
	if st != http.StatusOK || !strings.Contains(string(body), `"content":{}`) || !strings.Contains(string(body), bot.ID) {
		t.Fatalf("the watched event is not redacted by the bot: %d %s", st, body)
	}
	lookup(inWatched, evWatched, watched)
	time.Sleep(2 * time.Second)
	redactions := 0
	for _, e := range mod.Messages(t, watched, 100) {
		if e.Type == "m.room.redaction" {
			redactions++
		}
	}
	if n := len(about(evWatched)); redactions != 1 || n != 1 {
		t.Fatalf("%d redactions and %d reports of the watched event, want 1 and 1", redactions, n)
	}

	var linked []string
	audit.Read(auditPath, time.Time{}, func(r audit.Record) error {
		if r.Action == service.ActionLookupLink {
			linked = append(linked, r.Ref)
		}
		return nil
	})
	if fmt.Sprint(linked) != fmt.Sprint([]string{evSeen, evUnseen, evWatched}) {
		t.Errorf("audit records of lookups linked: %v", linked)
	}
	m := proc.metrics(t)
	if m[`caddy_mediaguard_lookup_links_total{outcome="linked"}`] != 3 || m[`caddy_mediaguard_lookup_links_total{outcome="duplicate"}`] != 2 || m[`caddy_mediaguard_lookup_links_total{outcome="dropped"}`] != 0 {
		t.Errorf("lookup_links_total: linked %v, duplicate %v, dropped %v", m[`caddy_mediaguard_lookup_links_total{outcome="linked"}`],
			m[`caddy_mediaguard_lookup_links_total{outcome="duplicate"}`], m[`caddy_mediaguard_lookup_links_total{outcome="dropped"}`])
	}
}
