package modcmd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// fakeModeration records the commands it is asked to carry out. The
// Matrix side under test is real (Dendrite); what a command does is the
// service's business, tested there.
type fakeModeration struct {
	mu    sync.Mutex
	calls []string
}

func (f *fakeModeration) add(s string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	return s
}

func (f *fakeModeration) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *fakeModeration) Confirm(_ context.Context, id, mod string) (string, error) {
	return "confirmed " + f.add("confirm "+id+" by "+mod), nil
}
func (f *fakeModeration) Dismiss(_ context.Context, id, mod string) (string, error) {
	return "dismissed " + f.add("dismiss "+id+" by "+mod), nil
}
func (f *fakeModeration) Block(_ context.Context, mxc, mod string) (string, error) {
	return "blocked " + f.add("block "+mxc+" by "+mod), nil
}
func (f *fakeModeration) Unblock(_ context.Context, mxc, mod string) (string, error) {
	return "unblocked " + f.add("unblock "+mxc+" by "+mod), nil
}
func (f *fakeModeration) Status(context.Context) (string, error) {
	f.add("status")
	return "all well\nsecond line", nil
}
func (f *fakeModeration) Lookup(_ context.Context, h string) (string, error) {
	f.add("lookup " + h)
	return "", fmt.Errorf("backend down")
}

// room is the management room as the tests drive it.
type room struct {
	t       *testing.T
	hs      *e2e.Dendrite
	id      string
	mod     *e2e.User // creator, level 100
	helper  *e2e.User // member, level 0
	botUser *e2e.User
}

func newRoom(t *testing.T) *room {
	hs := e2e.StartDendrite(t)
	r := &room{t: t, hs: hs,
		mod:     hs.RegisterUser(t, "moderator", "moderator-password", false),
		helper:  hs.RegisterUser(t, "helper", "helper-password", false),
		botUser: hs.RegisterUser(t, "mediaguard", "mediaguard-password", false),
	}
	r.id = r.mod.CreateRoom(t)
	r.mod.Invite(t, r.id, r.helper.ID)
	r.helper.Join(t, r.id)
	r.mod.Invite(t, r.id, r.botUser.ID)
	return r
}

func (r *room) bot(t *testing.T, state string, m Moderation, rec func(Record)) (*Bot, func() string) {
	log, logs := testkit.ObserveLogs()
	b, err := New(Config{Homeserver: r.hs.URL, AccessToken: r.botUser.AccessToken, Room: r.id, StateFile: state,
		Moderation: m, OnRecord: rec, PollTimeout: 2 * time.Second, MaxRetryDelay: 300 * time.Millisecond,
		Logger: zap.New(zapcore.NewTee(log.Core(), testkitLogger(t).Core()))})
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, func() string { return testkit.LogText(logs) }
}

func testkitLogger(t *testing.T) *zap.Logger {
	if testing.Verbose() {
		l, _ := zap.NewDevelopment()
		return l
	}
	return zap.NewNop()
}

func (r *room) say(u *e2e.User, body string) string {
	return u.SendMessage(r.t, r.id, map[string]any{"msgtype": "m.text", "body": body})
}

func (r *room) send(u *e2e.User, typ string, content map[string]any) string {
	r.t.Helper()
	path := fmt.Sprintf("/_matrix/client/v3/rooms/%s/send/%s/t%d", url.PathEscape(r.id), typ, time.Now().UnixNano())
	st, b := u.Do(r.t, http.MethodPut, path, content)
	if st != http.StatusOK {
		r.t.Fatalf("send %s: %d %s", typ, st, b)
	}
	var ev struct {
		EventID string `json:"event_id"`
	}
	_ = jsonUnmarshal(b, &ev)
	return ev.EventID
}

// answers returns the bot's answers in the room: command event ID ->
// (thread root, body).
func (r *room) answers() map[string][2]string {
	out := map[string][2]string{}
	for _, ev := range r.mod.Messages(r.t, r.id, 200) {
		if ev.Sender != r.botUser.ID {
			continue
		}
		cmd, _ := ev.Content["org.mediaguard.command"].(map[string]any)
		rel, _ := ev.Content["m.relates_to"].(map[string]any)
		if cmd == nil || rel == nil {
			continue
		}
		if rel["rel_type"] != "m.thread" || ev.Content["msgtype"] != "m.notice" {
			r.t.Errorf("answer is not an m.notice in a thread: %v", ev.Content)
		}
		id, _ := cmd["event_id"].(string)
		if _, dup := out[id]; dup {
			r.t.Errorf("two answers to %s", id)
		}
		root, _ := rel["event_id"].(string)
		body, _ := ev.Content["body"].(string)
		out[id] = [2]string{root, body}
	}
	return out
}

func (r *room) waitAnswer(id string) [2]string {
	r.t.Helper()
	var a [2]string
	testkit.EventuallyWithin(r.t, 15*time.Second, "the answer to "+id, func() bool {
		var ok bool
		a, ok = r.answers()[id]
		return ok
	})
	return a
}

// TestBotOnDendrite: commands from a moderator are carried out once and
// answered in a thread; everything else does nothing; a restart neither
// replays nor loses commands.
func TestBotOnDendrite(t *testing.T) {
	r := newRoom(t)
	statePath := filepath.Join(t.TempDir(), "bot.json")
	// Sent before mediaguard ever followed the room: history.
	r.say(r.mod, "!mediaguard block mxc://localhost/history")

	fm := &fakeModeration{}
	var recMu sync.Mutex
	var recs []Record
	rec := func(x Record) { recMu.Lock(); recs = append(recs, x); recMu.Unlock() }
	b, _ := r.bot(t, statePath, fm, rec)
	testkit.EventuallyWithin(t, 15*time.Second, "the bot to follow the room", func() bool { return b.Stats().Following })
	early, err := loadState(statePath) // a position before every command below
	if err != nil || early.NextBatch == "" {
		t.Fatalf("state after the first sync: %+v, %v", early, err)
	}

	block := r.say(r.mod, "!mediaguard block mxc://localhost/abc")
	if a := r.waitAnswer(block); a[0] != block || !strings.Contains(a[1], "blocked block mxc://localhost/abc by "+r.mod.ID) {
		t.Fatalf("answer to block = %q", a)
	}
	// Not commands: a non-moderator's, a notice, an edit of the block,
	// a command in HTML only, another bot's prefix, the bot's own text.
	r.say(r.helper, "!mediaguard block mxc://localhost/helper")
	r.mod.SendMessage(t, r.id, map[string]any{"msgtype": "m.notice", "body": "!mediaguard block mxc://localhost/notice"})
	r.mod.SendMessage(t, r.id, map[string]any{"msgtype": "m.text", "body": "* !mediaguard block mxc://localhost/abc",
		"m.new_content": map[string]any{"msgtype": "m.text", "body": "!mediaguard block mxc://localhost/abc"},
		"m.relates_to":  map[string]any{"rel_type": "m.replace", "event_id": block}})
	r.mod.SendMessage(t, r.id, map[string]any{"msgtype": "m.text", "body": "see below", "format": "org.matrix.custom.html",
		"formatted_body": "<p>!mediaguard block mxc://localhost/html</p>"})
	r.say(r.botUser, "!mediaguard block mxc://localhost/self")
	usage := r.say(r.mod, "!mediaguard block https://evil.example/x")
	if a := r.waitAnswer(usage); !strings.Contains(a[1], "Usage: !mediaguard block") {
		t.Fatalf("usage answer = %q", a)
	}
	// A command inside a thread is answered in that thread.
	inThread := r.mod.SendMessage(t, r.id, map[string]any{"msgtype": "m.text", "body": "!mediaguard status",
		"m.relates_to": map[string]any{"rel_type": "m.thread", "event_id": block}})
	if a := r.waitAnswer(inThread); a[0] != block || a[1] != "all well\nsecond line" {
		t.Fatalf("status in a thread: %q", a)
	}
	failed := r.say(r.mod, "!mediaguard lookup "+strings.Repeat("0", 64))
	if a := r.waitAnswer(failed); !strings.Contains(a[1], "lookup failed: backend down") {
		t.Fatalf("failed lookup answer = %q", a)
	}

	// A ✅ on the bot's detection notice confirms that detection; the
	// same from the helper, or on someone else's look-alike, does not.
	notice := r.botUser.SendMessage(t, r.id, map[string]any{"msgtype": "m.notice", "body": "review request",
		"org.mediaguard.detection": map[string]any{"id": "det-1"}})
	fake := r.helper.SendMessage(t, r.id, map[string]any{"msgtype": "m.notice", "body": "forged",
		"org.mediaguard.detection": map[string]any{"id": "det-forged"}})
	react := func(u *e2e.User, target, key string) string {
		return r.send(u, "m.reaction", map[string]any{"m.relates_to": map[string]any{"rel_type": "m.annotation", "event_id": target, "key": key}})
	}
	react(r.helper, notice, "✅")
	react(r.mod, fake, "✅")
	ok := react(r.mod, notice, "✅\uFE0F")
	if a := r.waitAnswer(ok); a[0] != notice || !strings.Contains(a[1], "confirm det-1 by "+r.mod.ID) {
		t.Fatalf("reaction answer = %q", a)
	}

	// The helper is made a moderator: from then on their commands count.
	r.setLevel(r.helper.ID, 50)
	promoted := r.say(r.helper, "!mediaguard dismiss det-2")
	r.waitAnswer(promoted)

	want := []string{"block mxc://localhost/abc by " + r.mod.ID, "status", "lookup " + strings.Repeat("0", 64),
		"confirm det-1 by " + r.mod.ID, "dismiss det-2 by " + r.helper.ID}
	if got := fm.Calls(); !slices.Equal(got, want) {
		t.Fatalf("calls = %q\nwant    %q", got, want)
	}
	recMu.Lock()
	if len(recs) != 6 || recs[0].Moderator != r.mod.ID || recs[0].Command != "block mxc://localhost/abc" || !recs[0].OK ||
		recs[1].OK || recs[1].Verb != "" || recs[1].Command != "https://evil.example/x" && recs[1].Command != "!mediaguard block https://evil.example/x" || recs[3].OK || recs[3].Verb != VerbLookup {
		t.Errorf("records = %+v", recs)
	}
	recMu.Unlock()

	// Down: commands sent meanwhile are carried out once after the
	// restart, and nothing before is carried out again, even when the
	// position saved is from before them (a crash after the commands,
	// before the batch's position was written): the handled list says.
	b.Close()
	cur, err := loadState(statePath)
	if err != nil || len(cur.Handled) != 6 {
		t.Fatalf("state after 6 commands: %+v, %v", cur, err)
	}
	crashed := &state{Version: stateVersion, NextBatch: early.NextBatch, SeenTS: early.SeenTS, Room: early.Room, Handled: cur.Handled}
	if err := crashed.save(statePath); err != nil {
		t.Fatal(err)
	}
	down := r.say(r.mod, "!mediaguard unblock mxc://localhost/abc")
	b2, _ := r.bot(t, statePath, fm, nil)
	if a := r.waitAnswer(down); !strings.Contains(a[1], "unblocked unblock mxc://localhost/abc") {
		t.Fatalf("answer after restart = %q", a)
	}
	after := r.say(r.mod, "!mediaguard help")
	if a := r.waitAnswer(after); !strings.Contains(a[1], "!mediaguard confirm DETECTION_ID") {
		t.Fatalf("help = %q", a)
	}
	want = append(want, "unblock mxc://localhost/abc by "+r.mod.ID)
	if got := fm.Calls(); !slices.Equal(got, want) {
		t.Fatalf("after restart calls = %q\nwant %q", got, want)
	}
	if st := b2.Stats(); st.Commands != 2 {
		t.Errorf("second bot carried out %d commands, want 2 (unblock, help)", st.Commands)
	}
	r.answers() // checks there is one answer per command
}

// setLevel gives userID level in the room's power levels.
func (r *room) setLevel(userID string, level int) {
	r.t.Helper()
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(r.id) + "/state/m.room.power_levels/"
	st, b := r.mod.Do(r.t, http.MethodGet, path, nil)
	if st != http.StatusOK {
		r.t.Fatalf("get power levels: %d %s", st, b)
	}
	var pl map[string]any
	if err := jsonUnmarshal(b, &pl); err != nil {
		r.t.Fatal(err)
	}
	users, _ := pl["users"].(map[string]any)
	users[userID] = level
	if st, b := r.mod.Do(r.t, http.MethodPut, path, pl); st != http.StatusOK {
		r.t.Fatalf("set power levels: %d %s", st, b)
	}
}

// TestBotNotInRoom: a management room the bot is not invited to gives a
// clear error, retried, and no crash; once invited, it follows.
func TestBotNotInRoom(t *testing.T) {
	hs := e2e.StartDendrite(t)
	mod := hs.RegisterUser(t, "moderator", "moderator-password", false)
	botUser := hs.RegisterUser(t, "mediaguard", "mediaguard-password", false)
	roomID := mod.CreateRoom(t)
	r := &room{t: t, hs: hs, id: roomID, mod: mod, botUser: botUser}
	fm := &fakeModeration{}
	b, logs := r.bot(t, filepath.Join(t.TempDir(), "bot.json"), fm, nil)
	testkit.EventuallyWithin(t, 10*time.Second, "two failed attempts", func() bool {
		return strings.Count(logs(), "is not in the management room "+roomID+" and cannot join it") >= 2
	})
	if !strings.Contains(logs(), "M_FORBIDDEN") || !strings.Contains(logs(), "invite it to the room") {
		t.Errorf("the error does not say why or what to do:\n%s", logs())
	}
	if strings.Contains(logs(), botUser.AccessToken) {
		t.Error("the access token is in the logs")
	}
	mod.Invite(t, roomID, botUser.ID)
	testkit.EventuallyWithin(t, 10*time.Second, "the bot to follow the room once invited", func() bool { return b.Stats().Following })
	cmd := r.say(mod, "!mediaguard status")
	r.waitAnswer(cmd)
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
