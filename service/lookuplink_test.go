package service

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/lookupwire"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/notify"
)

// linkService is a Service with one listed sha256 and a Matrix notifier
// whose homeserver never answers: notices stay queued, which is all the
// linking needs to be seen (what they say, and their threads, are
// notify's tests and the Dendrite end-to-end test's).
func linkService(t *testing.T, dir string, log *audit.Log, listed string) *Service {
	t.Helper()
	return linkServiceAt(t, dir, log, listed, "http://127.0.0.1:1")
}

// linkServiceAt is linkService with the management room's homeserver at
// hs.
func linkServiceAt(t *testing.T, dir string, log *audit.Log, listed, hs string) *Service {
	t.Helper()
	bank := filepath.Join(dir, "b.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+listed+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := New(Config{
		Local:  matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "TEST", Path: bank}}},
		Proxy:  mediaproxy.Config{TempDir: dir, Hashing: mediaproxy.HashingInline},
		Audit:  log,
		Matrix: &notify.MatrixConfig{Homeserver: hs, AccessToken: "syt_unused", Room: "!mgmt:x", MaxRetryDelay: time.Hour},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func lookupBody(sha, event, room, user string) string {
	return fmt.Sprintf(`{"hashes":{"sha256":%q,"pdq":"stubbed_pdq_placeholder_0123456789abcdef"},"eventId":%q,"roomId":%q,"userId":%q,"mediaType":"m.image"}`, sha, event, room, user)
}

// TestLookupLink: a lookup answered "block" that names a room event is
// reported once (queued on the notifier); the same event again, a
// request naming no event and an allow are not; a report never
// delivered is not on record, so after a restart the plugin asking
// again reports the event.
func TestLookupLink(t *testing.T) {
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("listed"))
	listed := hex.EncodeToString(sum[:])
	log, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	s := linkService(t, dir, log, listed)
	h, err := s.Lookup(LookupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	clean := strings.Repeat("0", 64)
	for _, tc := range []struct {
		name, body string
		want       LinkStats
	}{
		{"a listed picture in an event", lookupBody(listed, "$e1:x", "!room:x", "@u:x"), LinkStats{Linked: 1}},
		{"the same event asked again", lookupBody(listed, "$e1:x", "!room:x", "@u:x"), LinkStats{Linked: 1, Duplicate: 1}},
		{"no event named", `{"hashes":{"sha256":"` + listed + `"}}`, LinkStats{Linked: 1, Duplicate: 1}},
		{"not an event ID", lookupBody(listed, "e2", "!room:x", "@u:x"), LinkStats{Linked: 1, Duplicate: 1}},
		{"not a room ID", lookupBody(listed, "$e2:x", "#room:x", "@u:x"), LinkStats{Linked: 1, Duplicate: 1}},
		{"not listed", lookupBody(clean, "$e3:x", "!room:x", "@u:x"), LinkStats{Linked: 1, Duplicate: 1}},
		{"another event, a sender that is no user ID", lookupBody(strings.ToUpper(listed), "$e4:x", "!room:x", "mallory"), LinkStats{Linked: 2, Duplicate: 1}},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/", strings.NewReader(tc.body)))
		if w.Code != 200 {
			t.Fatalf("%s: lookup answered %d %s", tc.name, w.Code, w.Body)
		}
		testkit.Eventually(t, tc.name, func() bool { st, _ := s.LookupLinkStats(); return st == tc.want })
	}
	if q := s.NoticeStats()["matrix"].Queued; q != 2 {
		t.Errorf("%d notices queued, want one per event", q)
	}
	if recs := linkRecords(log); len(recs) != 0 {
		t.Fatalf("reports on record before any was delivered: %+v", recs)
	}

	// A restart: no report was delivered, so the plugin asking again
	// about $e1 reports it.
	s.Close()
	s2 := linkService(t, t.TempDir(), log, listed)
	h2, err := s2.Lookup(LookupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(lookupBody(listed, "$e1:x", "!room:x", "@u:x"))))
	testkit.Eventually(t, "the event whose report was never delivered", func() bool { st, _ := s2.LookupLinkStats(); return st == LinkStats{Linked: 1} })
}

// linkRecords are the lookup reports on record.
func linkRecords(log *audit.Log) []audit.Record {
	var recs []audit.Record
	audit.Read(log.Path(), time.Time{}, func(r audit.Record) error {
		if r.Action == ActionLookupLink {
			recs = append(recs, r)
		}
		return nil
	})
	return recs
}

// fakeMgmt is a homeserver that lets the bot join the management room
// and accepts every message sent there, counting them.
func fakeMgmt(t *testing.T) (url string, sent *atomic.Int64) {
	sent = new(atomic.Int64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/_matrix/client/v3/join/"):
			fmt.Fprint(w, `{"room_id":"!mgmt:x"}`)
		case r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/send/m.room.message/"):
			fmt.Fprintf(w, `{"event_id":"$n%d:x"}`, sent.Add(1))
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"errcode":"M_UNRECOGNIZED","error":"not here"}`)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, sent
}

// TestLookupLinkDelivered: a report is put on record once the management
// room accepted it, with what the request named; after a restart the
// plugin asking again about that event posts nothing.
func TestLookupLinkDelivered(t *testing.T) {
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("listed"))
	listed := hex.EncodeToString(sum[:])
	log, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	hs, sent := fakeMgmt(t)
	s := linkServiceAt(t, dir, log, listed, hs)
	h, err := s.Lookup(LookupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	// The first lookup spells its digest as the matcher accepts it,
	// padded and in capitals: it is the same digest for the story and
	// the record. The handler queues synchronously: one worker links
	// them in this order.
	for _, body := range []string{lookupBody(" "+strings.ToUpper(listed)+" ", "$e4:x", "!room:x", "mallory"), lookupBody(listed, "$e1:x", "!room:x", "@u:x")} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(body)))
	}
	testkit.Eventually(t, "two reports on record", func() bool { return len(linkRecords(log)) == 2 })
	recs := linkRecords(log)
	if recs[0].Ref != "$e4:x" || recs[0].User != "" || recs[0].Digests["sha256"] != listed ||
		recs[1].Ref != "$e1:x" || recs[1].Endpoint != "!room:x" || recs[1].User != "@u:x" || recs[1].Digests["sha256"] != listed {
		t.Fatalf("audit records: %+v", recs)
	}
	if _, about, ok := s.stories.Root(notify.Digests{SHA256: listed}); !ok || about != "$e4:x" {
		t.Errorf("the story of the file is about %q (%v), want the first lookup's event", about, ok)
	}
	if n := sent.Load(); n != 2 {
		t.Errorf("%d notices sent, want 2", n)
	}

	// A restart: the audit log says $e1 was reported.
	s.Close()
	s2 := linkServiceAt(t, t.TempDir(), log, listed, hs)
	h2, err := s2.Lookup(LookupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	h2.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(lookupBody(listed, "$e1:x", "!room:x", "@u:x"))))
	testkit.Eventually(t, "the event reported before the restart", func() bool { st, _ := s2.LookupLinkStats(); return st == LinkStats{Duplicate: 1} })
}

// TestLookupLinkQueueFull: the lookup answer never waits for the linking:
// past the queue's bound, lookups are dropped and counted.
func TestLookupLinkQueueFull(t *testing.T) {
	s := &Service{log: zaptest.NewLogger(t)}
	l := newLinker(s) // no worker: nothing is taken off the queue
	s.links = l
	req := lookupwire.Request{EventID: "$e:x", RoomID: "!r:x"}
	for range linkQueueSize + 3 {
		l.offer(req, lookupwire.Response{Action: lookupwire.ActionBlock})
	}
	if st, ok := s.LookupLinkStats(); !ok || st.Dropped != 3 {
		t.Errorf("stats %+v, want 3 dropped", st)
	}
	if _, ok := (&Service{}).LookupLinkStats(); ok {
		t.Error("link stats without a Matrix notifier")
	}
}

// TestLookupLinkSeed: after a restart, only a notice the management room
// accepted keeps a lookup of the event from reporting it. A watched
// event's judgement is recorded before its notice (which a stop may cut
// short), so that record claims nothing; the record of its delivered
// notice claims that room's event and no other room's.
func TestLookupLinkSeed(t *testing.T) {
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("listed"))
	listed := hex.EncodeToString(sum[:])
	log, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	for _, r := range []audit.Record{
		{Kind: audit.KindAction, Action: ActionWatch, Ref: "$judged:x", Endpoint: "!room:x", User: "@u:x", Outcome: "sha256 matched"},
		{Kind: audit.KindAction, Action: ActionWatch, Ref: "$noticed:x", Endpoint: "!room:x", User: "@u:x", Outcome: "sha256 matched"},
		{Kind: audit.KindAction, Action: ActionWatchNoticed, Ref: "$noticed:x", Endpoint: "!room:x", User: "@u:x", Outcome: audit.OutcomeOK},
	} {
		if err := log.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	s := linkService(t, dir, log, listed)
	h, err := s.Lookup(LookupConfig{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, event, room string
		want              LinkStats
	}{
		{"judged, its notice never delivered", "$judged:x", "!room:x", LinkStats{Linked: 1}},
		{"noticed", "$noticed:x", "!room:x", LinkStats{Linked: 1, Duplicate: 1}},
		{"the noticed event named with another room", "$noticed:x", "!other:x", LinkStats{Linked: 2, Duplicate: 1}},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(lookupBody(listed, tc.event, tc.room, "@u:x"))))
		testkit.Eventually(t, tc.name, func() bool { st, _ := s.LookupLinkStats(); return st == tc.want })
	}
}

// TestMatchedDigest: a lookup's story may begin only under the digest
// that matched, never under the others its caller sent.
func TestMatchedDigest(t *testing.T) {
	d := notify.Digests{MD5: strings.Repeat("a", 32), SHA1: strings.Repeat("b", 40), SHA256: strings.Repeat("C", 64)}
	for _, tc := range []struct {
		name string
		resp lookupwire.Response
		want notify.Digests
	}{
		{"md5 matched", lookupwire.Response{HashType: "md5", MatchedHash: d.MD5}, notify.Digests{MD5: d.MD5}},
		{"sha256 matched, either case", lookupwire.Response{HashType: "sha256", MatchedHash: strings.Repeat("c", 64)}, notify.Digests{SHA256: d.SHA256}},
		{"sha1 named, another hash", lookupwire.Response{HashType: "sha1", MatchedHash: strings.Repeat("0", 40)}, notify.Digests{}},
		{"pdq matched", lookupwire.Response{HashType: "pdq", MatchedHash: strings.Repeat("f", 64)}, notify.Digests{}},
	} {
		if got := matchedDigest(d, tc.resp); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}
