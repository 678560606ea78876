package modcmd

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

// fakeWatcher lists the media whose ID starts with "listed".
type fakeWatcher struct {
	mu     sync.Mutex
	judged []WatchedMedia
}

func (f *fakeWatcher) JudgeMedia(_ context.Context, m WatchedMedia) (MediaJudgement, error) {
	f.mu.Lock()
	f.judged = append(f.judged, m)
	f.mu.Unlock()
	if strings.HasPrefix(m.MXC, "mxc://localhost/listed") {
		return MediaJudgement{Listed: true, Reason: "sha256 matched bank TEST"}, nil
	}
	return MediaJudgement{}, nil
}

func (f *fakeWatcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.judged)
}

// TestWatchRooms: a listed media event in a watched room gets one notice
// naming room, event, sender and media, and is redacted once where the
// bot may; a restart does neither again.
func TestWatchRooms(t *testing.T) {
	r := newRoom(t)
	public := r.mod.CreateRoom(t)
	r.mod.Invite(t, public, r.helper.ID)
	r.helper.Join(t, public)
	r.mod.Invite(t, public, r.botUser.ID)
	pub := &room{t: t, hs: r.hs, id: public, mod: r.mod, helper: r.helper, botUser: r.botUser}
	pub.setLevel(r.botUser.ID, 50) // power to redact others' events

	fw := &fakeWatcher{}
	statePath := filepath.Join(t.TempDir(), "bot.json")
	start := func() *Bot {
		b, err := New(Config{Homeserver: r.hs.URL, AccessToken: r.botUser.AccessToken, Room: r.id, StateFile: statePath,
			Moderation: &fakeModeration{}, PollTimeout: 2 * time.Second, MaxRetryDelay: 300 * time.Millisecond,
			WatchRooms: []string{public}, Redact: true, Watch: fw, Logger: testkitLogger(t).With(zap.String("test", t.Name()))})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Close)
		testkit.EventuallyWithin(t, 15*time.Second, "the bot to follow", func() bool { return b.Stats().Following })
		return b
	}
	b := start()
	image := func(mxc string) string {
		return r.helper.SendMessage(t, public, map[string]any{"msgtype": "m.image", "body": "pic.jpg", "url": mxc,
			"info": map[string]any{"mimetype": "image/jpeg", "thumbnail_url": "mxc://localhost/thumb"}})
	}
	clean := image("mxc://localhost/clean")
	listed := image("mxc://localhost/listed1")
	sticker := pub.send(r.helper, "m.sticker", map[string]any{"body": "s", "url": "mxc://localhost/listed2", "info": map[string]any{}})
	// Not watched: the management room's media are not judged.
	r.helper.SendMessage(t, r.id, map[string]any{"msgtype": "m.image", "body": "x", "url": "mxc://localhost/listed3"})

	notices := func() []map[string]any {
		var out []map[string]any
		for _, ev := range r.mod.Messages(t, r.id, 100) {
			if d, ok := ev.Content["org.mediaguard.event_detection"].(map[string]any); ok && ev.Sender == r.botUser.ID {
				out = append(out, d)
			}
		}
		return out
	}
	testkit.EventuallyWithin(t, 15*time.Second, "two notices", func() bool { return len(notices()) == 2 })
	got := notices()
	byEvent := map[string]map[string]any{}
	for _, d := range got {
		byEvent[d["event_id"].(string)] = d
	}
	for ev, mxc := range map[string]string{listed: "mxc://localhost/listed1", sticker: "mxc://localhost/listed2"} {
		d := byEvent[ev]
		if d == nil || d["room_id"] != public || d["sender"] != r.helper.ID || d["mxc"] != mxc || d["redaction"] != "redacted" {
			t.Errorf("notice for %s: %v", ev, d)
		}
		st, body := r.mod.Do(t, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(public)+"/event/"+url.PathEscape(ev), nil)
		if st != http.StatusOK || !strings.Contains(string(body), `"content":{}`) || !strings.Contains(string(body), "redacted_because") {
			t.Errorf("event %s not redacted: %d %s", ev, st, body)
		}
	}
	if _, ok := byEvent[clean]; ok {
		t.Error("a notice for clean media")
	}
	judged := fw.count() // clean + its thumbnail, listed1, listed2
	if judged != 4 {
		t.Errorf("%d media judged, want 4", judged)
	}

	b.Close()
	start()
	again := image("mxc://localhost/clean2")
	_ = again
	testkit.EventuallyWithin(t, 15*time.Second, "the next event judged", func() bool { return fw.count() >= judged+2 })
	time.Sleep(500 * time.Millisecond)
	if n := len(notices()); n != 2 {
		t.Errorf("%d notices after a restart, want still 2", n)
	}
	if fw.count() != judged+2 {
		t.Errorf("events judged again after the restart: %d judgements, want %d", fw.count(), judged+2)
	}
}
