package modcmd

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/notify"
)

// fakeWatcher lists the media whose ID starts with "listed".
type fakeWatcher struct {
	mu      sync.Mutex
	judged  []WatchedMedia
	notices []string
}

func (f *fakeWatcher) JudgeMedia(_ context.Context, m WatchedMedia) (MediaJudgement, error) {
	f.mu.Lock()
	f.judged = append(f.judged, m)
	f.mu.Unlock()
	if strings.HasPrefix(m.MXC, "mxc://localhost/broken") {
		return MediaJudgement{}, errors.New("no homeserver to fetch unknown media from")
	}
	if strings.HasPrefix(m.MXC, "mxc://localhost/listed") {
		return MediaJudgement{Listed: true, Reason: "sha256 matched bank TEST"}, nil
	}
	return MediaJudgement{}, nil
}

// noticed is the bot's OnWatchNotice.
func (f *fakeWatcher) noticed(m WatchedMedia) {
	f.mu.Lock()
	f.notices = append(f.notices, m.EventID)
	f.mu.Unlock()
}

// delivered are the events whose notices the bot said were delivered.
func (f *fakeWatcher) delivered() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.notices)
}

func (f *fakeWatcher) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.judged)
}

// watchedRoom makes a room the helper posts in, which the bot is invited
// to and may redact others' events in.
func (r *room) watchedRoom() *room {
	public := r.mod.CreateRoom(r.t)
	r.mod.Invite(r.t, public, r.helper.ID)
	r.helper.Join(r.t, public)
	r.mod.Invite(r.t, public, r.botUser.ID)
	pub := &room{t: r.t, hs: r.hs, id: public, mod: r.mod, helper: r.helper, botUser: r.botUser}
	pub.setLevel(r.botUser.ID, 50) // power to redact others' events
	return pub
}

// watchBot starts a bot that watches pub and redacts there, and waits
// until it follows.
func (r *room) watchBot(statePath string, pub *room, w Watcher, stories *notify.Stories) *Bot {
	t := r.t
	b, err := New(Config{Homeserver: r.hs.URL, AccessToken: r.botUser.AccessToken, Room: r.id, StateFile: statePath,
		Moderation: &fakeModeration{}, PollTimeout: 2 * time.Second, MaxRetryDelay: 300 * time.Millisecond,
		WatchRooms: []string{pub.id}, Redact: true, Watch: w, Stories: stories, OnWatchNotice: w.(*fakeWatcher).noticed,
		Logger: testkitLogger(t).With(zap.String("test", t.Name()))})
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

// image posts a picture message with a thumbnail.
func (r *room) image(mxc string) string {
	return r.helper.SendMessage(r.t, r.id, map[string]any{"msgtype": "m.image", "body": "pic.jpg", "url": mxc,
		"info": map[string]any{"mimetype": "image/jpeg", "thumbnail_url": "mxc://localhost/thumb"}})
}

// eventNotices are the bot's event reports in the management room.
func (r *room) eventNotices() []map[string]any {
	var out []map[string]any
	for _, ev := range r.mod.Messages(r.t, r.id, 100) {
		if d, ok := ev.Content["org.mediaguard.event_detection"].(map[string]any); ok && ev.Sender == r.botUser.ID {
			out = append(out, d)
		}
	}
	return out
}

// TestWatchRooms: a listed media event in a watched room gets one notice
// naming room, event, sender and media, and is redacted once where the
// bot may; a restart does neither again.
func TestWatchRooms(t *testing.T) {
	r := newRoom(t)
	pub := r.watchedRoom()
	public := pub.id
	fw := &fakeWatcher{}
	statePath := filepath.Join(t.TempDir(), "bot.json")
	start := func() *Bot { return r.watchBot(statePath, pub, fw, nil) }
	b := start()
	image := pub.image
	clean := image("mxc://localhost/clean")
	listed := image("mxc://localhost/listed1")
	sticker := pub.send(r.helper, "m.sticker", map[string]any{"body": "s", "url": "mxc://localhost/listed2", "info": map[string]any{}})
	// Not watched: the management room's media are not judged.
	r.helper.SendMessage(t, r.id, map[string]any{"msgtype": "m.image", "body": "x", "url": "mxc://localhost/listed3"})

	notices := r.eventNotices
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
	if d := fw.delivered(); len(d) != 2 || !slices.Contains(d, listed) || !slices.Contains(d, sticker) {
		t.Errorf("notices reported delivered: %v, want the two listed events'", d)
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

// TestReportedEvents: an event another reporter (the lookup API) claimed
// in its room gets no second notice from the watch path, but the watch
// path still redacts it; a claim naming the event with another room
// (a lookup's caller names both, unverified) stops nothing.
// RedactIfListed judges the event's own media before it redacts, and
// only in a watched room.
func TestReportedEvents(t *testing.T) {
	r := newRoom(t)
	pub := r.watchedRoom()
	fw := &fakeWatcher{}
	stories := notify.NewStories(0)
	statePath := filepath.Join(t.TempDir(), "bot.json")
	r.watchBot(statePath, pub, fw, stories).Close()
	// Posted while the bot is away and claimed by another reporter; the
	// bot sees them when it is back.
	clean, listed := pub.image("mxc://localhost/clean"), pub.image("mxc://localhost/listed1")
	elsewhere := pub.image("mxc://localhost/listed2")
	stories.Claim(pub.id, clean)
	stories.Claim(pub.id, listed)
	stories.Claim("!other:localhost", elsewhere) // a lookup naming the event with a room of its choosing
	b := r.watchBot(statePath, pub, fw, stories)
	redactions := func() map[string]int {
		n := map[string]int{}
		for _, e := range pub.mod.Messages(t, pub.id, 100) {
			if e.Type == "m.room.redaction" {
				target := e.Redacts
				if target == "" {
					target, _ = e.Content["redacts"].(string)
				}
				n[target]++
			}
		}
		return n
	}
	testkit.EventuallyWithin(t, 15*time.Second, "the watch path to redact both listed events", func() bool { return len(redactions()) == 2 })
	testkit.EventuallyWithin(t, 15*time.Second, "the notice of the event claimed in another room", func() bool { return len(r.eventNotices()) >= 1 })

	text := r.helper.SendMessage(t, pub.id, map[string]any{"msgtype": "m.text", "body": "no picture here"})
	broken := pub.image("mxc://localhost/broken")
	for _, tc := range []struct {
		name, room, event, want string
		read                    bool
	}{
		{"listed media the watch path redacted", pub.id, listed, "already redacted", true},
		{"clean media", pub.id, clean, "not redacted: mediaguard's own judgement of the event's media found nothing listed", true},
		{"no media", pub.id, text, "not redacted: the event has no media mediaguard can judge", true},
		{"media that cannot be judged", pub.id, broken, "not redacted: the event's media could not be judged (no homeserver", true},
		{"no such event", pub.id, "$nope:localhost", "not redacted: the event could not be read (HTTP 404", false},
		{"the management room", r.id, listed, "", false},
		{"a room not watched", "!elsewhere:localhost", listed, "", false},
	} {
		got := b.RedactIfListed(context.Background(), tc.room, tc.event)
		if !strings.HasPrefix(got.Redaction, tc.want) || (tc.want == "") != (got.Redaction == "") {
			t.Errorf("%s: RedactIfListed = %q, want %q", tc.name, got.Redaction, tc.want)
		}
		if got.Read != tc.read || (tc.read && got.Sender != r.helper.ID) || (!tc.read && got.Sender != "") {
			t.Errorf("%s: read %v, sender %q; want read %v (the sender being the event's)", tc.name, got.Read, got.Sender, tc.read)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := r.eventNotices(); len(n) != 1 || n[0]["event_id"] != elsewhere || n[0]["redaction"] != "redacted" {
		t.Errorf("the watch path's notices: %v, want one, for the event claimed in another room", n)
	}
	if d := fw.delivered(); len(d) != 1 || d[0] != elsewhere {
		t.Errorf("notices reported delivered: %v, want only the one posted", d)
	}
	if n := redactions(); n[listed] != 1 || n[elsewhere] != 1 || len(n) != 2 {
		t.Errorf("redactions by event: %v, want one of each listed event", n)
	}
	idle, err := New(Config{Homeserver: r.hs.URL, AccessToken: "x", Room: r.id, StateFile: statePath, Moderation: &fakeModeration{}})
	if err != nil {
		t.Fatal(err)
	}
	if got := idle.RedactIfListed(context.Background(), pub.id, listed); got != (EventCheck{}) {
		t.Errorf("a bot watching nothing answered %+v", got)
	}
}
