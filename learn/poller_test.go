package learn

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// env is a poller over a fake Synapse (its quarantine feed, the admin's
// download) and the proxy's real scan and matcher, as a running
// configuration lends them.
type env struct {
	t      testing.TB
	fake   *fakes.Synapse
	dir    string
	path   string
	local  *matcher.Local
	proxy  *mediaproxy.Proxy
	scans  atomic.Int64
	log    *zap.Logger
	logs   *observer.ObservedLogs
	poller *Poller
	mu     sync.Mutex
	feeds  []string
}

// modToken is a moderator's admin token: the quarantines mediaguard
// learns are theirs, not its own admin user's.
const modToken = "moderator-token"

func newEnv(t testing.TB) *env {
	t.Helper()
	e := &env{t: t, fake: fakes.NewSynapse(t), dir: t.TempDir()}
	e.fake.Admins[modToken] = "@moderator:hs.example"
	e.path = filepath.Join(e.dir, "learned.bank")
	e.log, e.logs = testkit.ObserveLogs()
	e.poller = e.newPoller()
	var err error
	e.local, err = matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "LEARNED", Path: e.path}}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.local.Close() })
	e.proxy, err = mediaproxy.New(mediaproxy.Config{Matcher: e.local, TempDir: e.dir, PDQSearch: pdq.SearchDefault,
		Hashing: mediaproxy.HashingInline, MaxConcurrentHashing: 2})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) newPoller() *Poller {
	e.t.Helper()
	p, err := New(Config{Path: e.path})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(p.Close)
	return p
}

// ScanFile is the proxy's, counted.
func (e *env) ScanFile(ctx context.Context, f *os.File, size int64, ct string) (mediaproxy.FileScan, error) {
	e.scans.Add(1)
	return e.proxy.ScanFile(ctx, f, size, ct)
}

func (e *env) settings() Settings {
	return Settings{
		Bank: "LEARNED", Admin: e.adminConfig(), Every: 20 * time.Millisecond,
		Scanner: e, Reload: e.local.Reload, MinPDQQuality: matcher.DefaultMinPDQQuality,
		TempDir: e.dir, MaxAttempts: 3, Logger: e.log,
	}
}

func (e *env) adminConfig() homeserver.AdminConfig {
	return homeserver.AdminConfig{Homeserver: e.fake.URL, AccessToken: e.fake.AdminToken, Attempts: 1, HTTPClient: &http.Client{Transport: e}}
}

func (e *env) use(p *Poller, s Settings) func() {
	e.t.Helper()
	release, err := p.Use(s)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(release)
	return release
}

// admin calls the fake's admin API as a moderator does.
func (e *env) admin(method, path string) {
	e.t.Helper()
	e.adminAs(modToken, method, path)
}

func (e *env) adminAs(token, method, path string) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.fake.URL+path, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		e.t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
	}
}

func (e *env) quarantine(id string) {
	e.admin("POST", "/_synapse/admin/v1/media/quarantine/hs.example/"+id)
}

func (e *env) unquarantine(id string) {
	e.admin("POST", "/_synapse/admin/v1/media/unquarantine/hs.example/"+id)
}

// match judges body as the proxy judges an upload against the learned
// bank as it is on disk now: the label of the best evidence, "" for none.
func (e *env) match(body []byte) string {
	e.t.Helper()
	e.local.Reload()
	f, err := os.CreateTemp(e.dir, "upload-*")
	if err != nil {
		e.t.Fatal(err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	f.Write(body)
	fs, err := e.proxy.ScanFile(context.Background(), f, int64(len(body)), "")
	if err != nil {
		e.t.Fatal(err)
	}
	v, _ := e.local.Match(context.Background(), fs.Query)
	if !v.Match {
		return ""
	}
	return v.Evidence[0].Label
}

// infos counts the fake's media info answers about id.
func (e *env) infos(id string) int {
	n := 0
	for _, c := range e.fake.Calls() {
		if c.Method == "GET" && c.Path == "/_synapse/admin/v1/media/hs.example/"+id {
			n++
		}
	}
	return n
}

// applied waits until the poller has applied the whole feed (the bank
// written, the checkpoint saved) and cond holds.
func (e *env) applied(p *Poller, what string, cond func(Stats) bool) {
	e.t.Helper()
	testkit.Eventually(e.t, what, func() bool {
		st := p.Stats()
		return cond(st) && st.Checkpoint == e.fake.QuarantineFeedPosition()
	})
}

// downloads counts the fake's downloads of id past its quarantine.
func (e *env) downloads(id string) int {
	n := 0
	for _, c := range e.fake.Calls() {
		if strings.HasPrefix(c.Path, "/_matrix/client/v1/media/download/") && strings.HasSuffix(c.Path, "/"+id) {
			n++
		}
	}
	return n
}

// feedCalls lists each feed poll's path and query, in order.
func (e *env) feedCalls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.feeds)
}

// RoundTrip records the feed polls of the admin client.
func (e *env) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.HasPrefix(r.URL.Path, "/_synapse/admin/v1/media/quarantine_changes") {
		e.mu.Lock()
		e.feeds = append(e.feeds, r.URL.RequestURI())
		e.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// The case: a quarantined picture is learned, so re-encoded and
// resized copies match while a clean picture does not; its unquarantine
// removes what it added, so they pass again.
func TestLearnsQuarantinedPictureAndForgetsIt(t *testing.T) {
	e := newEnv(t)
	img := testimg.Photo(42, 480, 360)
	e.fake.Put("pic", testimg.JPEG(img, 92), "image/jpeg")
	e.quarantine("pic")
	e.use(e.poller, e.settings())
	e.applied(e.poller, "the picture learned", func(st Stats) bool { return st.Learned == 1 })

	const label = "quarantined mxc://hs.example/pic"
	reencoded := testimg.JPEG(img, 60)
	resized := testimg.PNG(testimg.Resize(img, 320, 240))
	clean := testimg.JPEG(testimg.Photo(43, 480, 360), 92)
	for name, tc := range map[string]struct {
		body []byte
		want string
	}{
		"the bytes":  {testimg.JPEG(img, 92), label},
		"re-encoded": {reencoded, label},
		"resized":    {resized, label},
		"clean":      {clean, ""},
	} {
		if got := e.match(tc.body); got != tc.want {
			t.Errorf("%s matched %q, want %q", name, got, tc.want)
		}
	}
	b, _ := os.ReadFile(e.path)
	if n := strings.Count(string(b), "pdq "); n < 1 || !strings.Contains(string(b), "sha256 ") || !strings.Contains(string(b), "md5 ") {
		t.Fatalf("bank file:\n%s", b)
	}

	e.unquarantine("pic")
	e.applied(e.poller, "the picture forgotten", func(st Stats) bool { return st.Unlearned == 1 })
	if got := e.match(reencoded); got != "" {
		t.Fatalf("re-encoded copy still matches %q after the unquarantine", got)
	}
	if b, _ := os.ReadFile(e.path); strings.Contains(string(b), "mxc://") {
		t.Fatalf("bank file after the unquarantine:\n%s", b)
	}
	st := e.poller.Stats()
	if st.Media != 0 || st.FetchRetries != 0 || !st.FeedUp || st.Checkpoint != e.fake.QuarantineFeedPosition() {
		t.Fatalf("stats %+v, feed at %d", st, e.fake.QuarantineFeedPosition())
	}
	if text := testkit.LogText(e.logs); strings.Contains(text, e.fake.AdminToken) {
		t.Fatal("the admin token was logged")
	}
}

// The feed is read page by page (100 a page) to its end; the checkpoint
// survives a restart, so a new poller fetches nothing twice and carries
// on from there.
func TestPagingAndCheckpointRestart(t *testing.T) {
	e := newEnv(t)
	for i := range 105 {
		id := "m" + string(rune('a'+i/26)) + string(rune('a'+i%26))
		e.fake.Put(id, randomBytes(512), "application/octet-stream")
		e.quarantine(id)
	}
	release := e.use(e.poller, e.settings())
	e.applied(e.poller, "105 media learned", func(st Stats) bool { return st.Learned == 105 })
	testkit.Eventually(t, "the poll finding the feed's end", func() bool { return len(e.feedCalls()) >= 3 })
	calls := e.feedCalls()
	if len(calls) < 3 || !strings.HasSuffix(calls[0], "from=0") || !strings.HasSuffix(calls[1], "from=101") || !strings.HasSuffix(calls[2], "from=106") {
		t.Fatalf("feed polls: %v", calls)
	}
	release()
	e.poller.Close()

	var cp checkpoint
	b, _ := os.ReadFile(CheckpointPath(e.path))
	if err := json.Unmarshal(b, &cp); err != nil || cp.NextBatch != 106 || cp.Homeserver != e.fake.URL {
		t.Fatalf("checkpoint file %s: %v", b, err)
	}

	e.fake.Put("later", randomBytes(512), "application/octet-stream")
	e.quarantine("later")
	p2 := e.newPoller()
	e.use(p2, e.settings())
	e.applied(p2, "the new media learned after the restart", func(st Stats) bool { return st.Learned == 1 })
	if e.downloads("later") != 1 || e.downloads("maa") != 1 || p2.Stats().Media != 106 {
		t.Fatalf("after the restart: %d, %d downloads, %d media", e.downloads("later"), e.downloads("maa"), p2.Stats().Media)
	}
}

// The feed repeats records (a quarantine repeated, Synapse's backfill of
// old ones): a media learned once is neither fetched nor added again; a
// copy of the same bytes (Synapse records every copy) takes the entries
// of the first without being fetched or hashed again.
func TestDuplicatesAreIdempotent(t *testing.T) {
	e := newEnv(t)
	img := testimg.JPEG(testimg.Photo(7, 320, 240), 90)
	e.fake.Put("a", img, "image/jpeg")
	e.fake.Put("b", img, "image/jpeg")
	e.quarantine("a") // records a and b
	e.quarantine("a") // again: a and b again
	e.fake.AppendQuarantineChange("hs.example", "a", true)
	e.use(e.poller, e.settings())
	e.applied(e.poller, "the feed applied", func(Stats) bool { return true })
	st := e.poller.Stats()
	if st.Learned != 2 || st.Reused != 1 || st.Duplicates != 3 || e.scans.Load() != 1 || e.downloads("a") != 1 || e.downloads("b") != 0 {
		t.Fatalf("stats %+v, %d scans, downloads a %d b %d", st, e.scans.Load(), e.downloads("a"), e.downloads("b"))
	}
	if e.poller.bank.EntryCount() != 2*len(e.poller.bank.Entries("quarantined mxc://hs.example/a")) {
		t.Fatal("b does not hold a's entries")
	}
}

// An unquarantine removes exactly what its media added: an entry another
// quarantined media also holds stays, and still matches.
func TestUnquarantineRemovesExactlyItsEntries(t *testing.T) {
	e := newEnv(t)
	same := testimg.JPEG(testimg.Photo(8, 320, 240), 90)
	other := testimg.JPEG(testimg.Photo(9, 320, 240), 90)
	e.fake.Put("a", same, "image/jpeg")
	e.fake.Put("b", same, "image/jpeg")
	e.fake.Put("c", other, "image/jpeg")
	e.quarantine("a")
	e.quarantine("c")
	e.use(e.poller, e.settings())
	e.applied(e.poller, "three media learned", func(st Stats) bool { return st.Learned == 3 })
	// The feed records a's release alone (a best-effort feed may miss
	// b's): b still holds the same entries.
	e.fake.AppendQuarantineChange("hs.example", "a", false)
	e.applied(e.poller, "a forgotten", func(st Stats) bool { return st.Unlearned == 1 })
	if got := e.match(same); got != "quarantined mxc://hs.example/b" {
		t.Fatalf("a's bytes matched %q after a's release, want b's entry", got)
	}
	e.unquarantine("c")
	e.applied(e.poller, "c forgotten", func(st Stats) bool { return st.Unlearned == 2 })
	if got := e.match(other); got != "" {
		t.Fatalf("c's bytes still match %q", got)
	}
	if e.poller.bank.Has("quarantined mxc://hs.example/a") || !e.poller.bank.Has("quarantined mxc://hs.example/b") {
		t.Fatal("wrong keys left")
	}
}

// A media that cannot be fetched never holds up the feed: later
// quarantines are learned meanwhile; a failing one is retried with
// backoff and learned once it can be fetched; one that is gone (404) is
// skipped, with a warning, after MaxAttempts.
func TestFetchFailuresAreRetriedThenSkipped(t *testing.T) {
	e := newEnv(t)
	e.fake.Put("flaky", randomBytes(256), "application/octet-stream")
	e.fake.Put("gone", randomBytes(256), "application/octet-stream")
	e.fake.Put("fine", randomBytes(256), "application/octet-stream")
	e.fake.FailDownload("flaky", 2, 503)
	e.quarantine("flaky")
	e.quarantine("gone")
	e.fake.Delete("gone")
	e.quarantine("fine") // recorded although gone was deleted before
	e.use(e.poller, e.settings())
	testkit.Eventually(t, "fine learned past the failing ones", func() bool {
		return e.poller.bank.Has("quarantined mxc://hs.example/fine")
	})
	testkit.Eventually(t, "flaky learned after its failures, gone skipped", func() bool {
		st := e.poller.Stats()
		return st.Learned == 2 && st.FetchSkipped == 1 && st.Pending == 0
	})
	if !e.poller.bank.Has("quarantined mxc://hs.example/flaky") || e.poller.bank.Has("quarantined mxc://hs.example/gone") {
		t.Fatal("wrong media learned")
	}
	if n := e.infos("gone"); n != 3 {
		t.Fatalf("gone asked about %d times, want MaxAttempts = 3", n)
	}
	if st := e.poller.Stats(); st.FetchRetries != 2+2 {
		t.Fatalf("retries %d, want 2 for flaky and 2 for gone", st.FetchRetries)
	}
	if testkit.LogCount(e.logs, "quarantined media skipped") != 1 {
		t.Fatalf("want one warning for the skipped media:\n%s", testkit.LogText(e.logs))
	}
}

// A Synapse without the feed (before 1.152) is a clear error, logged
// once however often it is polled; once it has one, learning starts.
func TestOlderSynapseWithoutFeed(t *testing.T) {
	e := newEnv(t)
	e.fake.NoQuarantineFeed.Store(true)
	e.fake.Put("pic", randomBytes(256), "application/octet-stream")
	e.quarantine("pic")
	e.use(e.poller, e.settings())
	testkit.Eventually(t, "several polls", func() bool { return len(e.feedCalls()) >= 4 })
	if n := testkit.LogCount(e.logs, "needs Synapse 1.152 or later"); n != 1 {
		t.Fatalf("the missing feed was logged %d times:\n%s", n, testkit.LogText(e.logs))
	}
	if st := e.poller.Stats(); !st.FeedMissing || st.FeedUp || st.Learned != 0 {
		t.Fatalf("stats %+v", st)
	}
	e.fake.NoQuarantineFeed.Store(false)
	testkit.Eventually(t, "learned once upgraded", func() bool { return e.poller.Stats().Learned == 1 })
	if testkit.LogCount(e.logs, "answers again") != 1 {
		t.Fatal("the recovery was not logged")
	}
}

// A saved position the homeserver refuses as beyond its stream (its
// database restored), or a checkpoint of another homeserver, starts the
// feed over; a damaged checkpoint stops the start with what to do.
func TestCheckpointStartsOver(t *testing.T) {
	for _, tc := range []struct {
		name string
		cp   func(f *fakes.Synapse) string
	}{
		{"position beyond the stream", func(f *fakes.Synapse) string {
			return `{"homeserver":"` + f.URL + `","next_batch":900000}`
		}},
		{"another homeserver", func(f *fakes.Synapse) string {
			return `{"homeserver":"http://old.example:8008","next_batch":2}`
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.fake.Put("pic", randomBytes(256), "application/octet-stream")
			e.quarantine("pic")
			e.fake.Put("pic2", randomBytes(256), "application/octet-stream")
			e.quarantine("pic2")
			e.poller.Close()
			os.WriteFile(CheckpointPath(e.path), []byte(tc.cp(e.fake)), 0o600)
			p := e.newPoller()
			e.use(p, e.settings())
			testkit.Eventually(t, "both learned from the start", func() bool { return p.Stats().Learned == 2 })
		})
	}
	e := newEnv(t)
	e.poller.Close()
	os.WriteFile(CheckpointPath(e.path), []byte("{not json"), 0o600)
	if _, err := New(Config{Path: e.path}); err == nil || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("a damaged checkpoint: %v", err)
	}
}

// Released settings are not used again: no poll runs until the next Use,
// which polls at once; Close ends the loop.
func TestReleaseAndUseAgain(t *testing.T) {
	e := newEnv(t)
	release := e.use(e.poller, e.settings())
	testkit.Eventually(t, "a first poll", func() bool { return len(e.feedCalls()) >= 1 })
	release()
	n := len(e.feedCalls())
	time.Sleep(100 * time.Millisecond)
	if got := len(e.feedCalls()); got != n {
		t.Fatalf("%d polls after the release", got-n)
	}
	s := e.settings()
	s.Every = time.Hour
	e.fake.Put("pic", randomBytes(256), "application/octet-stream")
	e.quarantine("pic")
	e.use(e.poller, s)
	testkit.Eventually(t, "a new Use polls at once", func() bool { return e.poller.Stats().Learned == 1 })
	done := make(chan struct{})
	go func() { e.poller.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := e.poller.Use(e.settings()); err == nil {
		t.Fatal("Use after Close")
	}
}

// A round stopped mid-page (a reload, a stop) keeps what it learned and
// reads the page again: nothing is lost, nothing is added twice.
func TestStopMidPage(t *testing.T) {
	e := newEnv(t)
	for _, id := range []string{"one", "two", "three"} {
		e.fake.Put(id, randomBytes(256), "application/octet-stream")
		e.quarantine(id)
	}
	s := e.settings()
	blocked := make(chan struct{})
	var release func()
	s.Scanner = scannerFunc(func(ctx context.Context, f *os.File, size int64, ct string) (mediaproxy.FileScan, error) {
		if e.scans.Add(1) == 2 {
			close(blocked)
			<-ctx.Done()
			return mediaproxy.FileScan{}, ctx.Err()
		}
		return e.proxy.ScanFile(ctx, f, size, ct)
	})
	release = e.use(e.poller, s)
	<-blocked
	release()
	if st := e.poller.Stats(); st.Learned != 1 || st.Checkpoint != 0 || st.FetchRetries != 0 {
		t.Fatalf("after the stop: %+v", st)
	}
	e.use(e.poller, e.settings())
	testkit.Eventually(t, "the rest learned", func() bool { return e.poller.Stats().Learned == 3 })
	if e.downloads("one") != 1 {
		t.Fatal("a learned media was fetched again")
	}
}

type scannerFunc func(ctx context.Context, f *os.File, size int64, ct string) (mediaproxy.FileScan, error)

func (s scannerFunc) ScanFile(ctx context.Context, f *os.File, size int64, ct string) (mediaproxy.FileScan, error) {
	return s(ctx, f, size, ct)
}

// Only the moderators' quarantines are learned: media quarantined by
// synapse_admin's own user (mediaguard's own quarantines, from a bank it
// has) is not, nor media a stale record names that is no longer
// quarantined; media with the same bytes as media learned is not
// fetched again.
func TestLearnsOnlyTheModeratorsCurrentQuarantines(t *testing.T) {
	e := newEnv(t)
	e.fake.Put("own", randomBytes(256), "application/octet-stream")
	e.fake.Put("stale", randomBytes(256), "application/octet-stream")
	same := randomBytes(256)
	e.fake.Put("first", same, "application/octet-stream")
	e.adminAs(e.fake.AdminToken, "POST", "/_synapse/admin/v1/media/quarantine/hs.example/own")
	e.fake.AppendQuarantineChange("hs.example", "stale", true)
	e.quarantine("first")
	e.use(e.poller, e.settings())
	e.applied(e.poller, "the feed applied", func(st Stats) bool { return st.Learned == 1 })
	// A copy stored later, in a record the feed backfilled: its SHA-256
	// (from the media info) is learned already.
	e.fake.Put("copy", same, "application/octet-stream")
	e.fake.QuarantineAs("@moderator:hs.example", "hs.example", "copy")
	e.applied(e.poller, "the copy learned", func(st Stats) bool { return st.Learned == 2 })
	st := e.poller.Stats()
	if st.Own != 1 || st.NotQuarantined != 1 || st.Reused != 1 || e.downloads("own") != 0 || e.downloads("stale") != 0 || e.downloads("copy") != 0 {
		t.Fatalf("stats %+v; downloads own %d stale %d copy %d", st, e.downloads("own"), e.downloads("stale"), e.downloads("copy"))
	}
	if e.poller.bank.Has("quarantined mxc://hs.example/own") || e.poller.bank.Has("quarantined mxc://hs.example/stale") {
		t.Fatal("own or stale quarantine learned")
	}
}

// One writer per learned bank: a second poller of the same file (another
// process, say a blue/green deploy on one host) is refused until the first
// closes, rather than both rewriting each other's entries away.
func TestOneWriterPerBank(t *testing.T) {
	path := filepath.Join(t.TempDir(), "learned.bank")
	first, err := New(Config{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Config{Path: path}); err == nil || !strings.Contains(err.Error(), "another process is learning into") {
		t.Fatalf("a second writer: %v", err)
	}
	first.Close()
	again, err := New(Config{Path: path})
	if err != nil {
		t.Fatalf("after the first closed: %v", err)
	}
	again.Close()
}
