package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"go.uber.org/zap/zaptest"
)

const fullHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func sample(id, user string) Detection {
	return Detection{
		ID: id, Time: time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC),
		Direction: "upload", Endpoint: "upload", User: user, MXC: "mxc://localhost/abc123",
		HashType: "pdq", MatchedHash: fullHash, Bank: "ncmec", Source: "hma",
		Distance: 12, Confidence: 0.95, Action: "upload refused (403)",
	}
}

// TestDendrite runs the notifier against a real Dendrite: the moderator
// creates the management room (with an alias) and invites the bot; the
// notifier joins via the alias on Start.
func TestDendrite(t *testing.T) {
	hs := e2e.StartDendrite(t)
	mod := hs.RegisterUser(t, "moderator", "moderator-password", false)
	bot := hs.RegisterUser(t, "mediaguard", "mediaguard-password", false)
	room := mod.CreateRoom(t)
	alias := "#management:" + hs.ServerName
	if st, b := mod.Do(t, http.MethodPut, "/_matrix/client/v3/directory/room/"+url.PathEscape(alias), map[string]any{"room_id": room}); st != http.StatusOK {
		t.Fatalf("creating alias: %d %s", st, b)
	}
	mod.Invite(t, room, bot.ID)

	var mu sync.Mutex
	var delivered []string
	m, err := NewMatrix(MatrixConfig{
		Homeserver: hs.URL, AccessToken: bot.AccessToken, Room: alias, MaxRetryDelay: 200 * time.Millisecond, Logger: zaptest.NewLogger(t),
		OnDelivered: func(id string) { mu.Lock(); delivered = append(delivered, id); mu.Unlock() },
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	d := sample("det-dendrite-1", "@uploader<b>:localhost")
	if !m.Notify(d) {
		t.Fatal("Notify refused")
	}
	testkit.EventuallyWithin(t, 10*time.Second, "first delivery", func() bool { return m.Stats().Delivered == 1 })
	// The same detection again (an audit-log redelivery): same txnId.
	if !m.Notify(d) {
		t.Fatal("Notify refused")
	}
	testkit.EventuallyWithin(t, 10*time.Second, "second delivery", func() bool { return m.Stats().Delivered == 2 })
	mu.Lock()
	if fmt.Sprint(delivered) != "[det-dendrite-1 det-dendrite-1]" {
		t.Errorf("OnDelivered calls = %v", delivered)
	}
	mu.Unlock()

	var found []e2e.Event
	for _, ev := range mod.Messages(t, room, 50) {
		if ev.Type == "m.room.message" && ev.Content["msgtype"] == "m.notice" {
			found = append(found, ev)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly 1 m.notice in the room (txnId idempotency), got %d: %+v", len(found), found)
	}
	ev := found[0]
	if ev.Sender != bot.ID {
		t.Errorf("sender = %q, want the bot %q", ev.Sender, bot.ID)
	}
	body, html := Format(d)
	if ev.Content["body"] != body || ev.Content["formatted_body"] != html || ev.Content["format"] != "org.matrix.custom.html" {
		t.Errorf("content does not carry the formatted notice: %+v", ev.Content)
	}
	det, _ := ev.Content["org.mediaguard.detection"].(map[string]any)
	if det["user"] != d.User || det["id"] != d.ID || det["matched_hash_prefix"] != fullHash[:16] || det["mxc"] != d.MXC || det["confidence"] != "0.95" {
		t.Errorf("org.mediaguard.detection = %+v", det)
	}
	if strings.Contains(fmt.Sprint(ev.Content), bot.AccessToken) || strings.Contains(fmt.Sprint(ev.Content), fullHash) {
		t.Error("the event leaks the access token or the full hash")
	}

	// Direct check of the homeserver fact the design relies on: the same
	// txnId from the same token answers with the same event ID.
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(room) + "/send/m.room.message/mediaguard-" + d.ID
	st, b := bot.Do(t, http.MethodPut, path, map[string]any{"msgtype": "m.notice", "body": "should not appear"})
	var r struct {
		EventID string `json:"event_id"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &r) != nil || r.EventID != ev.EventID {
		t.Errorf("resend with the same txnId: %d %s, want event_id %s", st, b, ev.EventID)
	}
}

// fakeHS is a FAKE homeserver, not Matrix: just enough of the
// client-server API for the notifier, relying on these facts of the Matrix
// spec (https://spec.matrix.org/latest/client-server-api/):
//   - POST /_matrix/client/v3/join/{roomIdOrAlias} answers 200
//     {"room_id": "!..."} (an alias is resolved by the join itself);
//   - PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId} answers
//     200 {"event_id"}, and a repeated txnId from the same access token
//     returns the original event_id without creating an event
//     ("Transaction identifiers" in the spec);
//   - errors are JSON {"errcode","error"}; 429 M_LIMIT_EXCEEDED may carry
//     retry_after_ms; 403 M_FORBIDDEN when the sender is not in the room.
//
// Each entry of fail is consumed by one send call: "502", "429", "403",
// "400", "drop" (connection closed, nothing stored) or "lost" (event
// stored, then the connection is closed before the answer).
type fakeHS struct {
	t     *testing.T
	token string
	srv   *httptest.Server
	base  string        // srv's URL, known before srv starts
	hang  chan struct{} // if not nil, send blocks until it is closed or the client gives up

	mu        sync.Mutex
	fail      []string
	events    []map[string]any // stored event contents, in order
	byTxn     map[string]string
	sendCalls int
	joins     int
	raw       []string // every request body, to check nothing secret is sent
}

func newFakeHS(t *testing.T, fail ...string) *fakeHS {
	f := newUnstartedFakeHS(t, fail...)
	f.srv.Start()
	return f
}

// newUnstartedFakeHS has a URL but refuses connections until f.srv.Start.
func newUnstartedFakeHS(t *testing.T, fail ...string) *fakeHS {
	f := &fakeHS{t: t, token: "syt_secret_bot_token_XYZ", fail: fail, byTxn: map[string]string{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.base = "http://" + f.srv.Listener.Addr().String()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeHS) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("Authorization") != "Bearer "+f.token {
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"bad token"}`)
		return
	}
	f.mu.Lock()
	f.raw = append(f.raw, string(b))
	f.mu.Unlock()
	switch {
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/_matrix/client/v3/join/"):
		f.mu.Lock()
		f.joins++
		f.mu.Unlock()
		io.WriteString(w, `{"room_id":"!room:fake"}`)
	case r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, "/_matrix/client/v3/rooms/!room:fake/send/m.room.message/"):
		f.send(w, r, b)
	default:
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, `{"errcode":"M_UNRECOGNIZED","error":"fake: not implemented"}`)
	}
}

func (f *fakeHS) send(w http.ResponseWriter, r *http.Request, b []byte) {
	if f.hang != nil {
		select {
		case <-f.hang:
		case <-r.Context().Done():
			return
		}
	}
	txn := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	f.mu.Lock()
	f.sendCalls++
	mode := ""
	if len(f.fail) > 0 {
		mode, f.fail = f.fail[0], f.fail[1:]
	}
	store := func() string {
		if id, ok := f.byTxn[txn]; ok {
			return id
		}
		var c map[string]any
		if err := json.Unmarshal(b, &c); err != nil {
			f.t.Errorf("fake: send body is not JSON: %s", b)
		}
		f.events = append(f.events, c)
		id := fmt.Sprintf("$ev%d:fake", len(f.events))
		f.byTxn[txn] = id
		return id
	}
	var id string
	if mode == "" || mode == "lost" {
		id = store()
	}
	f.mu.Unlock()
	switch mode {
	case "":
		fmt.Fprintf(w, `{"event_id":%q}`, id)
	case "502":
		w.WriteHeader(http.StatusBadGateway)
	case "429":
		w.WriteHeader(http.StatusTooManyRequests)
		io.WriteString(w, `{"errcode":"M_LIMIT_EXCEEDED","error":"slow down","retry_after_ms":150}`)
	case "403":
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"errcode":"M_FORBIDDEN","error":"not in room"}`)
	case "400":
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"errcode":"M_BAD_JSON","error":"nope"}`)
	case "drop", "lost":
		conn, _, err := w.(http.Hijacker).Hijack()
		if err != nil {
			f.t.Errorf("fake: hijack: %v", err)
			return
		}
		conn.Close()
	}
}

// ids returns the detection IDs of the stored events, in order.
func (f *fakeHS) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.events {
		det, _ := c["org.mediaguard.detection"].(map[string]any)
		out = append(out, fmt.Sprint(det["id"]))
	}
	return out
}

func (f *fakeHS) notifier(t *testing.T, cfg MatrixConfig) *Matrix {
	cfg.Homeserver, cfg.AccessToken, cfg.Room = f.base, f.token, "#management:fake"
	cfg.Logger = zaptest.NewLogger(t)
	if cfg.MaxRetryDelay == 0 {
		cfg.MaxRetryDelay = 20 * time.Millisecond
	}
	m, err := NewMatrix(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestRetryUntilRecovered: the send endpoint fails with 502, a dropped
// connection, a "lost answer" (stored, then dropped) and 502 again; every
// notice still lands exactly once and in order.
func TestRetryUntilRecovered(t *testing.T) {
	f := newFakeHS(t, "502", "drop", "lost", "502")
	m := f.notifier(t, MatrixConfig{})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if !m.Notify(sample(id, "@u"+id+":fake")) {
			t.Fatal("Notify refused")
		}
	}
	testkit.EventuallyWithin(t, 5*time.Second, "3 deliveries", func() bool { return m.Stats().Delivered == 3 })
	if got := fmt.Sprint(f.ids()); got != "[a b c]" {
		t.Errorf("stored events = %s, want [a b c] exactly once each, in order", got)
	}
	st := m.Stats()
	if st.Retried != 4 || st.Dropped != 0 || st.Queued != 3 || st.Pending != 0 {
		t.Errorf("stats = %+v, want 4 retries, 0 dropped, 3 queued, none pending", st)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendCalls != 7 {
		t.Errorf("send calls = %d, want 7", f.sendCalls)
	}
	for _, b := range f.raw {
		if strings.Contains(b, f.token) || strings.Contains(b, fullHash) {
			t.Errorf("a request body leaks the token or the full hash: %s", b)
		}
	}
}

// TestHomeserverDownAtStart: Start does not fail when the homeserver is
// unreachable; notices wait, in order, and go out once it is back.
func TestHomeserverDownAtStart(t *testing.T) {
	f := newUnstartedFakeHS(t)
	// Until Start, the listener exists but nobody accepts: close it and
	// re-listen on the same address later to simulate "down, then back".
	addr := f.srv.Listener.Addr().String()
	f.srv.Listener.Close()
	m := f.notifier(t, MatrixConfig{})
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Start with the homeserver down: %v", err)
	}
	for _, id := range []string{"a", "b"} {
		m.Notify(sample(id, "@u"+id+":fake"))
	}
	time.Sleep(100 * time.Millisecond)
	if st := m.Stats(); st.Delivered != 0 || st.Dropped != 0 || st.Pending != 2 {
		t.Fatalf("stats while down = %+v; want both notices pending", st)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("could not re-listen on %s: %v", addr, err)
	}
	f.srv.Listener = l
	f.srv.Start()
	testkit.EventuallyWithin(t, 5*time.Second, "2 deliveries", func() bool { return m.Stats().Delivered == 2 })
	if got := fmt.Sprint(f.ids()); got != "[a b]" {
		t.Errorf("stored events = %s, want [a b]", got)
	}
}

// TestStatusHandling: 429 waits retry_after_ms, 403 rejoins then retries,
// 400 drops that notice and the queue moves on.
func TestStatusHandling(t *testing.T) {
	f := newFakeHS(t, "429", "403", "", "400", "")
	m := f.notifier(t, MatrixConfig{})
	start := time.Now()
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		m.Notify(sample(id, "@u"+id+":fake"))
	}
	testkit.EventuallyWithin(t, 5*time.Second, "2 deliveries", func() bool { return m.Stats().Delivered == 2 })
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("delivered after %v; retry_after_ms=150 not honoured", el)
	}
	if got := fmt.Sprint(f.ids()); got != "[a c]" {
		t.Errorf("stored events = %s, want [a c] (b rejected with 400)", got)
	}
	f.mu.Lock()
	joins := f.joins
	f.mu.Unlock()
	if st := m.Stats(); joins != 2 || st.Dropped != 1 || st.Rejected != 1 || st.Retried != 1 {
		t.Errorf("joins = %d (want 2: Start + rejoin after 403), stats = %+v (want 1 dropped as rejected, 1 retried)", joins, st)
	}
}

// TestBurst: 100 identical detections become at most threshold+1 posts, and
// the summary states how many were folded into it.
func TestBurst(t *testing.T) {
	f := newFakeHS(t)
	var mu sync.Mutex
	acked := map[string]bool{}
	m := f.notifier(t, MatrixConfig{SummaryThreshold: 10, SummaryWindow: 300 * time.Millisecond,
		OnDelivered: func(id string) { mu.Lock(); acked[id] = true; mu.Unlock() }})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if !m.Notify(sample(fmt.Sprintf("d%d", i), "@flood:fake")) {
			t.Fatal("Notify refused")
		}
	}
	m.Notify(sample("other", "@someone-else:fake")) // another user: not part of the burst
	testkit.EventuallyWithin(t, 5*time.Second, "12 posts", func() bool { return m.Stats().Delivered == 12 })
	time.Sleep(400 * time.Millisecond) // a further window: nothing else may arrive
	f.mu.Lock()
	events := append([]map[string]any(nil), f.events...)
	f.mu.Unlock()
	if len(events) != 12 {
		t.Fatalf("posts = %d, want 10 + 1 other + 1 summary", len(events))
	}
	last := events[len(events)-1]
	body, _ := last["body"].(string)
	if !strings.Contains(body, "90 more identical detections in the last 300ms") {
		t.Errorf("summary body = %q", body)
	}
	if det, _ := last["org.mediaguard.detection"].(map[string]any); det["summary_count"] != float64(90) {
		t.Errorf("summary machine data = %+v", det)
	}
	if st := m.Stats(); st.Summarised != 90 {
		t.Errorf("stats = %+v, want 90 summarised", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) != 101 {
		t.Errorf("OnDelivered covered %d IDs, want all 101", len(acked))
	}
}

// TestQueueFull: with delivery stuck on a homeserver that never answers,
// Notify refuses instead of blocking, and Close still returns promptly.
func TestQueueFull(t *testing.T) {
	f := newFakeHS(t)
	f.hang = make(chan struct{})
	defer close(f.hang)
	m := f.notifier(t, MatrixConfig{QueueSize: 3})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Notify(sample("first", "@u:fake"))
	testkit.EventuallyWithin(t, 5*time.Second, "the first send to hang", func() bool {
		return len(m.queue) == 0
	})
	ok, refused := 0, 0
	start := time.Now()
	for i := range 1000 {
		if m.Notify(sample(fmt.Sprintf("q%d", i), fmt.Sprintf("@u%d:fake", i))) {
			ok++
		} else {
			refused++
		}
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("1000 Notify calls took %v: Notify blocks", el)
	}
	if ok != 3 || refused != 997 {
		t.Errorf("accepted %d, refused %d; want 3 and 997", ok, refused)
	}
	if st := m.Stats(); st.QueueFull != 997 || st.Dropped != 997 || st.Pending != 4 {
		t.Errorf("stats = %+v; want 997 refused, 4 pending (one in flight, three queued)", st)
	}
	done := make(chan struct{})
	go func() { m.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Close blocked on an in-flight send")
	}
	if m.Notify(sample("late", "@u:fake")) {
		t.Error("Notify after Close accepted")
	}
}

func TestFormat(t *testing.T) {
	d := sample("det-<1>", "@<script>alert(1)</script>:evil.org")
	d.Bank = `<b>bank</b> & "co"`
	d.Source = "src\n!mjolnir ban @victim:example.org"
	d.MXC = "mxc://localhost/abc?access_token=syt_leaked"
	d.Action = "upload refused (403)"
	body, html := Format(d)

	for _, bad := range []string{"<script>", "<b>bank", `"co"`} {
		if strings.Contains(html, bad) {
			t.Errorf("HTML contains unescaped %q: %s", bad, html)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;bank&lt;/b&gt; &amp; &#34;co&#34;", "det-&lt;1&gt;"} {
		if !strings.Contains(html, want) {
			t.Errorf("HTML lacks %q: %s", want, html)
		}
	}
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "!mjolnir") {
			t.Errorf("a field forged a command line in the body: %q", body)
		}
	}
	for _, s := range []string{body, html} {
		if strings.Contains(s, "syt_leaked") || strings.Contains(s, "access_token") {
			t.Errorf("notice leaks a token: %s", s)
		}
		if strings.Contains(s, fullHash[:17]) || !strings.Contains(s, fullHash[:16]) {
			t.Errorf("notice must show exactly the first 16 hash chars: %s", s)
		}
	}
	for _, want := range []string{"upload via upload", d.User, "mxc://localhost/abc", "pdq " + fullHash[:16], "PDQ distance 12", "confidence 0.95", "upload refused (403)"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}

	d2 := sample("x", "")
	d2.HashType, d2.MXC = "sha256", ""
	body2, _ := Format(d2)
	if !strings.Contains(body2, "Uploaded by: unknown") || strings.Contains(body2, "Media:") || !strings.Contains(body2, "exact match") {
		t.Errorf("unknown user / no mxc / exact hash rendered wrongly:\n%s", body2)
	}
}

// ExampleFormat documents what a moderator sees.
func ExampleFormat() {
	d := Detection{ID: "det-42", Direction: "download", Endpoint: "client_download", User: "@alice:example.org",
		MXC: "mxc://example.org/AbCd", HashType: "pdq", MatchedHash: fullHash, Bank: "ncmec", Source: "hma",
		Distance: 12, Confidence: 0.9, Action: "download refused (404)"}
	body, _ := Format(d)
	fmt.Println(body)
	// Output:
	// 🚨 mediaguard blocked a download (client_download)
	// Blocked: download via client_download
	// Requested by: @alice:example.org
	// Media: mxc://example.org/AbCd
	// Matched: pdq 0123456789abcdef…
	// Bank: ncmec (source hma)
	// Match: PDQ distance 12, confidence 0.90
	// Action: download refused (404)
	// Detection: det-42
}

// TestWhoLabel: only the uploader is "Uploaded by"; the user of a
// download asked for it and may be a bot.
func TestWhoLabel(t *testing.T) {
	for _, tc := range []struct {
		d    Detection
		want string
	}{
		{Detection{Direction: "upload", User: "@a:x"}, "Uploaded by: @a:x"},
		{Detection{Direction: "download", User: "@mjolnir:x"}, "Requested by: @mjolnir:x"},
		{Detection{Direction: "stored media", Retro: true, User: "@a:x"}, "Uploaded by: @a:x"},
		{Detection{Direction: "download"}, "Requested by: unknown"},
		{Detection{User: "@a:x"}, "User: @a:x"},
	} {
		body, html := Format(tc.d)
		if !strings.Contains(body, "\n"+tc.want+"\n") || !strings.Contains(html, strings.SplitN(tc.want, ":", 2)[0]+":</strong>") {
			t.Errorf("%+v: body lacks %q:\n%s", tc.d, tc.want, body)
		}
	}
}
