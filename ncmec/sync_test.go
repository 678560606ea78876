package ncmec

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/matcher"
)

// t0 is when the fake's entries begin; each test's clock starts an hour
// later.
var t0 = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

func hexOf(b []byte) string { return fmt.Sprintf("%x", b) }

func md5Of(s string) string  { h := md5.Sum([]byte(s)); return hexOf(h[:]) }
func sha1Of(s string) string { h := sha1.Sum([]byte(s)); return hexOf(h[:]) }

// pdqOf is a made-up but valid (non-zero) PDQ hash.
func pdqOf(s string) string { return md5Of(s+"a") + md5Of(s+"b") }

func image(id string, at time.Duration, class string) fakes.NCMECEntry {
	return fakes.NCMECEntry{Kind: "image", Member: 42, ID: id, Timestamp: t0.Add(at), Classification: class,
		MD5: md5Of(id), SHA1: sha1Of(id), PDQ: pdqOf(id)}
}

func video(id string, at time.Duration) fakes.NCMECEntry {
	return fakes.NCMECEntry{Kind: "video", Member: 42, ID: id, Timestamp: t0.Add(at), Classification: "B1", MD5: md5Of("v" + id), SHA1: sha1Of("v" + id)}
}

func tomb(kind, id string, at time.Duration) fakes.NCMECEntry {
	return fakes.NCMECEntry{Kind: kind, Member: 42, ID: id, Timestamp: t0.Add(at)}
}

// env is one test's fake NCMEC, bank directory and clock.
type env struct {
	t     *testing.T
	fake  *fakes.NCMEC
	dir   string
	path  string
	now   atomic.Pointer[time.Time]
	wrote atomic.Int64
}

func newEnv(t *testing.T, entries ...fakes.NCMECEntry) *env {
	e := &env{t: t, fake: fakes.NewNCMEC(t, "esp-user", "s3cret-pass", entries...), dir: t.TempDir()}
	e.path = filepath.Join(e.dir, "ncmec.bank")
	e.setNow(t0.Add(time.Hour))
	return e
}

func (e *env) setNow(t time.Time) { e.now.Store(&t) }

func (e *env) cfg() Config {
	return Config{
		Name: "NCMEC", Path: e.path, BaseURL: e.fake.BaseURL(), Username: "esp-user", Password: "s3cret-pass",
		Start: t0.Add(-24 * time.Hour), RetryWait: time.Millisecond, Attempts: 3,
		Now:       func() time.Time { return *e.now.Load() },
		OnWritten: func() { e.wrote.Add(1) },
	}
}

func (e *env) sync(cfg Config) Result {
	e.t.Helper()
	res, err := Sync(context.Background(), cfg)
	if err != nil {
		e.t.Fatalf("sync: %v", err)
	}
	return res
}

// bank loads the bank file as the matcher does.
func (e *env) bank() *matcher.Bank {
	e.t.Helper()
	b, err := matcher.LoadBank("NCMEC", e.path)
	if err != nil {
		e.t.Fatalf("loading the synced bank: %v", err)
	}
	if b.ProblemCount() > 0 {
		e.t.Fatalf("the synced bank has problems: %v", b.Problems())
	}
	return b
}

// local is a matcher over the bank file.
func (e *env) local() *matcher.Local {
	e.t.Helper()
	l, err := matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "NCMEC", Path: e.path}}, ReloadInterval: -1})
	if err != nil {
		e.t.Fatal(err)
	}
	return l
}

// has reports whether hex digest h of type typ matches, and its label.
func has(t *testing.T, l *matcher.Local, typ matcher.HashType, h string) (bool, string) {
	t.Helper()
	var q matcher.Query
	switch typ {
	case matcher.MD5, matcher.VideoMD5:
		q.Has = matcher.HasMD5
		hex.Decode(q.MD5[:], []byte(h))
	case matcher.SHA1:
		q.Has = matcher.HasSHA1
		hex.Decode(q.SHA1[:], []byte(h))
	case matcher.PDQ:
		q.Has, q.PDQQuality = matcher.HasPDQ, 100
		var err error
		if q.PDQ, err = pdq.ParseHex(h); err != nil {
			t.Fatal(err)
		}
	}
	v, err := l.Match(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range v.Evidence {
		if ev.HashType == typ && (typ == matcher.PDQ && ev.Distance == 0 || ev.Hash == h) {
			return true, ev.Label
		}
	}
	return false, ""
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A first sync takes every entry, keeping image MD5 and SHA-1 beside PDQ
// and video MD5, each labelled with NCMEC's id and classification; the
// file is the matcher's and private to its owner.
func TestSyncKeepsEveryHashType(t *testing.T) {
	e := newEnv(t, image("1001", 10*time.Minute, "A1"), video("2001", 20*time.Minute))
	res := e.sync(e.cfg())
	want := Counts{MD5: 1, SHA1: 1, PDQ: 1, VideoMD5: 1}
	if res.Counts != want || res.Entries != 2 || !res.Written || res.Through != t0.Add(time.Hour-endMargin) {
		t.Fatalf("result %+v", res)
	}
	if c := e.bank().Counts(); c != (matcher.Counts{MD5: 1, SHA1: 1, PDQ: 1, VideoMD5: 1}) {
		t.Fatalf("the loaded bank counts %+v", c)
	}
	l := e.local()
	defer l.Close()
	for _, c := range []struct {
		typ   matcher.HashType
		hash  string
		label string
	}{
		{matcher.MD5, md5Of("1001"), "ncmec:1001 A1"},
		{matcher.SHA1, sha1Of("1001"), "ncmec:1001 A1"},
		{matcher.PDQ, pdqOf("1001"), "ncmec:1001 A1"},
		{matcher.VideoMD5, md5Of("v2001"), "ncmec:2001 B1"},
	} {
		if ok, label := has(t, l, c.typ, c.hash); !ok || label != c.label {
			t.Errorf("%s %s: matched %v with label %q, want %q", c.typ, c.hash, ok, label, c.label)
		}
	}
	fi, err := os.Stat(e.path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("bank file mode %v (%v), want 0600", fi.Mode(), err)
	}
	ck, ok, err := LoadCheckpoint(e.path)
	if err != nil || !ok || !ck.Through.Equal(res.Through) || ck.BaseURL != e.fake.BaseURL() || ck.Counts != want {
		t.Fatalf("checkpoint %+v %v %v", ck, ok, err)
	}
	if e.wrote.Load() != 1 {
		t.Errorf("OnWritten called %d times, want once", e.wrote.Load())
	}
}

// A later sync asks only for the window since the checkpoint, and adds to
// the bank what it brings.
func TestSyncIncremental(t *testing.T) {
	e := newEnv(t, image("1", 10*time.Minute, "A1"), image("2", 20*time.Minute, "A2"))
	first := e.sync(e.cfg())
	e.fake.Add(image("3", 90*time.Minute, "B1"), video("4", 100*time.Minute))
	e.setNow(t0.Add(2 * time.Hour))
	before := len(e.fake.Requests())
	second := e.sync(e.cfg())
	reqs := e.fake.Requests()[before:]
	if len(reqs) != 1 {
		t.Fatalf("second sync made %d requests: %v", len(reqs), reqs)
	}
	q, _ := url.ParseQuery(strings.SplitN(reqs[0], "?", 2)[1])
	if q.Get("from") != first.Through.Format(timeFormat) || q.Get("to") != t0.Add(2*time.Hour-endMargin).Format(timeFormat) {
		t.Fatalf("second window %s..%s, want from the checkpoint %s", q.Get("from"), q.Get("to"), first.Through.Format(timeFormat))
	}
	if second.Entries != 4 || second.Changes != 2 || second.Counts != (Counts{MD5: 3, SHA1: 3, PDQ: 3, VideoMD5: 1}) {
		t.Fatalf("second sync %+v", second)
	}
	// Nothing new: the checkpoint moves, the bank file stays as it was.
	e.setNow(t0.Add(3 * time.Hour))
	fi1, _ := os.Stat(e.path)
	third := e.sync(e.cfg())
	fi2, _ := os.Stat(e.path)
	if third.Written || !os.SameFile(fi1, fi2) || third.Entries != 4 || !third.Through.Equal(t0.Add(3*time.Hour-endMargin)) {
		t.Fatalf("an empty window rewrote the bank or lost its counts: %+v", third)
	}
	// A restart resumes there too, and still knows the file it left.
	e.setNow(t0.Add(4 * time.Hour))
	e.fake.Add(tomb("deletedImage", "1", 210*time.Minute))
	fourth := e.sync(e.cfg())
	if fourth.Entries != 3 || fourth.Counts.MD5 != 2 {
		t.Fatalf("fourth sync %+v", fourth)
	}
}

// Paging: a window longer than a page is followed link by link, each link
// used with the window's own from and to.
func TestSyncFollowsPaging(t *testing.T) {
	var entries []fakes.NCMECEntry
	for i := range 7 {
		entries = append(entries, image(fmt.Sprint(100+i), time.Duration(i)*time.Minute, "A1"))
	}
	e := newEnv(t, entries...)
	e.fake.PageSize = 2
	res := e.sync(e.cfg())
	if res.Pages != 4 || res.Entries != 7 || res.Counts.PDQ != 7 || e.bank().Counts().MD5 != 7 {
		t.Fatalf("result %+v", res)
	}
	reqs := e.fake.Requests()
	for i, r := range reqs[1:] {
		if !strings.Contains(r, fmt.Sprintf("start=%d", 3+2*i)) {
			t.Errorf("page %d requested as %s", i+2, r)
		}
	}
}

// Tombstones remove images and videos, whichever order the pages give
// them in: an entry's latest version wins, and a tombstone of an image
// leaves a video of the same id alone.
func TestSyncTombstones(t *testing.T) {
	e := newEnv(t,
		image("1", 1*time.Minute, "A1"), image("2", 2*time.Minute, "A1"), video("2", 3*time.Minute), video("3", 4*time.Minute),
		// Deleted in the same window as they were added.
		tomb("deletedImage", "1", 5*time.Minute),
		tomb("deletedVideo", "3", 6*time.Minute),
	)
	e.fake.PageSize = 2 // tombstones and entries land on different pages
	res := e.sync(e.cfg())
	if res.Entries != 2 || res.Counts != (Counts{MD5: 1, SHA1: 1, PDQ: 1, VideoMD5: 1}) {
		t.Fatalf("after the first window: %+v", res)
	}
	// Deleted in a later window: the lines come out of the file.
	e.fake.Add(tomb("deletedImage", "2", 70*time.Minute), tomb("deletedImage", "never-seen", 71*time.Minute))
	e.setNow(t0.Add(2 * time.Hour))
	res = e.sync(e.cfg())
	if res.Entries != 1 || res.Counts != (Counts{VideoMD5: 1}) {
		t.Fatalf("after the second window: %+v", res)
	}
	l := e.local()
	defer l.Close()
	for _, c := range []struct {
		typ  matcher.HashType
		hash string
		want bool
	}{
		{matcher.MD5, md5Of("1"), false}, {matcher.PDQ, pdqOf("1"), false},
		{matcher.MD5, md5Of("2"), false}, {matcher.SHA1, sha1Of("2"), false}, {matcher.PDQ, pdqOf("2"), false},
		{matcher.VideoMD5, md5Of("v2"), true}, {matcher.VideoMD5, md5Of("v3"), false},
	} {
		if ok, _ := has(t, l, c.typ, c.hash); ok != c.want {
			t.Errorf("%s %s matches: %v, want %v", c.typ, c.hash, ok, c.want)
		}
	}
	// A re-added entry (a later version) comes back.
	e.fake.Add(image("2", 130*time.Minute, "B2"))
	e.setNow(t0.Add(3 * time.Hour))
	if res = e.sync(e.cfg()); res.Counts.MD5 != 1 || !strings.Contains(readFile(t, e.path), "ncmec:2 B2 # member 42") {
		t.Fatalf("re-added entry: %+v\n%s", res, readFile(t, e.path))
	}
}

// snapshot is a bank file's and its checkpoint's bytes and identity.
type snapshot struct {
	bank, ck string
	fi       os.FileInfo
}

func (e *env) snapshot() snapshot {
	fi, err := os.Stat(e.path)
	if err != nil {
		e.t.Fatal(err)
	}
	return snapshot{readFile(e.t, e.path), readFile(e.t, CheckpointPath(e.path)), fi}
}

func (e *env) unchanged(what string, s snapshot) {
	e.t.Helper()
	now := e.snapshot()
	if now.bank != s.bank || now.ck != s.ck || !os.SameFile(now.fi, s.fi) {
		e.t.Fatalf("%s changed the bank or the checkpoint", what)
	}
	ents, _ := os.ReadDir(e.dir)
	for _, d := range ents {
		if strings.HasSuffix(d.Name(), ".tmp") {
			e.t.Fatalf("%s left a temporary file behind: %s", what, d.Name())
		}
	}
}

// A failure anywhere in a window (an error page, a connection cut, garbage
// instead of XML, a cancel) leaves the last good bank and checkpoint as
// they were; once NCMEC answers again the next sync takes the whole
// window.
func TestSyncFailureMidWindowKeepsLastGood(t *testing.T) {
	faults := []struct {
		name  string
		fault *fakes.NCMECFault
		want  string
	}{
		{"500 on every attempt", &fakes.NCMECFault{AfterPages: 1, Status: 500}, "HTTP 500 (gave up after 3 attempts)"},
		{"connection cut on every attempt", &fakes.NCMECFault{AfterPages: 1, Cut: true}, "unexpected EOF"},
		{"garbage", &fakes.NCMECFault{AfterPages: 1, Garbage: "<html><body>Maintenance</body></html>"}, "root element is <html>, not an NCMEC <queryResult>"},
		{"XML cut short", &fakes.NCMECFault{AfterPages: 1, Garbage: `<?xml version="1.0"?><queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2"><images><image><id>9`}, "XML syntax"},
	}
	for _, fc := range faults {
		t.Run(fc.name, func(t *testing.T) {
			e := newEnv(t, image("1", time.Minute, "A1"))
			e.sync(e.cfg())
			good := e.snapshot()
			for i := range 6 {
				e.fake.Add(image(fmt.Sprint(10+i), 70*time.Minute+time.Duration(i)*time.Second, "A1"))
			}
			e.fake.PageSize = 2
			e.fake.SetFault(fc.fault)
			e.setNow(t0.Add(2 * time.Hour))
			wrote := e.wrote.Load()
			_, err := Sync(context.Background(), e.cfg())
			if err == nil || !strings.Contains(err.Error(), fc.want) {
				t.Fatalf("error %v, want one saying %q", err, fc.want)
			}
			e.unchanged("a failed window", good)
			if e.wrote.Load() != wrote {
				t.Fatal("OnWritten called for a failed window")
			}
			e.fake.SetFault(nil)
			if res := e.sync(e.cfg()); res.Entries != 7 || res.Counts.MD5 != 7 {
				t.Fatalf("after healing: %+v", res)
			}
		})
	}
}

// Garbage is not retried (it will not get better); a 503 and a cut
// connection are, and a sync they interrupt only briefly succeeds.
func TestSyncRetries(t *testing.T) {
	e := newEnv(t, image("1", time.Minute, "A1"), image("2", 2*time.Minute, "A1"))
	e.fake.PageSize = 1
	e.fake.SetFault(&fakes.NCMECFault{AfterPages: 1, Status: 503, Times: 2})
	if res := e.sync(e.cfg()); res.Entries != 2 {
		t.Fatalf("result %+v", res)
	}
	if n := e.fake.EntryPages.Load(); n != 4 {
		t.Errorf("%d pages requested, want 2 and 2 retries", n)
	}
	e.fake.SetFault(&fakes.NCMECFault{Cut: true, Times: 1})
	e.fake.Add(image("3", 70*time.Minute, "A1"))
	e.setNow(t0.Add(2 * time.Hour))
	if res := e.sync(e.cfg()); res.Entries != 3 {
		t.Fatalf("after a cut connection: %+v", res)
	}
	before := e.fake.EntryPages.Load()
	e.fake.SetFault(&fakes.NCMECFault{Garbage: "not xml at all"})
	e.setNow(t0.Add(3 * time.Hour))
	if _, err := Sync(context.Background(), e.cfg()); err == nil || !strings.Contains(err.Error(), "not an NCMEC <queryResult>") {
		t.Fatalf("garbage: %v", err)
	}
	if n := e.fake.EntryPages.Load() - before; n != 1 {
		t.Errorf("garbage requested %d times, want once", n)
	}
}

// Cancelling a sync mid-window (a config reload, a stop) leaves nothing
// half done.
func TestSyncCancelMidWindow(t *testing.T) {
	e := newEnv(t, image("1", time.Minute, "A1"))
	e.sync(e.cfg())
	good := e.snapshot()
	for i := range 4 {
		e.fake.Add(image(fmt.Sprint(10+i), 70*time.Minute, "A1"))
	}
	e.fake.PageSize = 1
	e.setNow(t0.Add(2 * time.Hour))
	ctx, cancel := context.WithCancel(context.Background())
	cfg := e.cfg()
	var client http.Client
	client.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.Contains(r.URL.RawQuery, "start=3") {
			cancel()
			<-r.Context().Done()
			return nil, r.Context().Err()
		}
		return http.DefaultTransport.RoundTrip(r)
	})
	cfg.HTTPClient = &client
	if _, err := Sync(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	e.unchanged("a cancelled window", good)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A paging link to another host is refused: the credentials never leave
// for it. Nor is a link to another endpoint, or with another window,
// followed.
func TestSyncRefusesHostileNext(t *testing.T) {
	var stolen atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stolen.Add(1)
		http.Error(w, "gotcha", 500)
	}))
	defer evil.Close()
	for _, prefix := range []string{evil.URL, "//" + strings.TrimPrefix(evil.URL, "http://"), "https://" + strings.TrimPrefix(evil.URL, "http://")} {
		e := newEnv(t, image("1", time.Minute, "A1"), image("2", 2*time.Minute, "A1"))
		e.fake.PageSize = 1
		e.fake.SetNextPrefix(prefix)
		_, err := Sync(context.Background(), e.cfg())
		var le *LinkError
		if !errors.As(err, &le) || !strings.Contains(err.Error(), "credentials are only sent there") {
			t.Fatalf("prefix %s: error %v, want a refused link", prefix, err)
		}
		if _, err := os.Stat(CheckpointPath(e.path)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a checkpoint was written")
		}
	}
	if stolen.Load() != 0 {
		t.Fatalf("the other host was contacted %d times", stolen.Load())
	}
	// The same host, written out in full, is fine.
	e := newEnv(t, image("1", time.Minute, "A1"), image("2", 2*time.Minute, "A1"))
	e.fake.PageSize = 1
	e.fake.SetNextPrefix(e.fake.BaseURL())
	if res := e.sync(e.cfg()); res.Entries != 2 {
		t.Fatalf("absolute same-host links: %+v", res)
	}
}

func TestNextLink(t *testing.T) {
	base, _ := url.Parse("https://report.cybertip.org/hashsharing")
	c := &client{base: base}
	from, to := t0, t0.Add(time.Hour)
	ok := "from=2024-05-01T12%3A00%3A00.000Z&to=2024-05-01T13%3A00%3A00.000Z&start=1001&size=1000&max=3000"
	tests := []struct{ link, want, err string }{
		{"/v2/entries?" + ok, "https://report.cybertip.org/hashsharing/v2/entries?from=2024-05-01T12%3A00%3A00.000Z&max=3000&size=1000&start=1001&to=2024-05-01T13%3A00%3A00.000Z", ""},
		{"/hashsharing/v2/entries?" + ok, "https://report.cybertip.org/hashsharing/v2/entries?", ""},
		{"https://report.cybertip.org/hashsharing/v2/entries?" + ok, "https://report.cybertip.org/hashsharing/v2/entries?", ""},
		{"/v2/entries?start=1001", "from=2024-05-01T12%3A00%3A00Z", ""},
		{"http://report.cybertip.org/hashsharing/v2/entries?" + ok, "", "credentials are only sent there"},
		{"https://evil.example/hashsharing/v2/entries?" + ok, "", "credentials are only sent there"},
		{"https://report.cybertip.org@evil.example/v2/entries", "", "credentials are only sent there"},
		{"https://report.cybertip.org:8443/hashsharing/v2/entries", "", "credentials are only sent there"},
		{"//evil.example/v2/entries", "", "credentials are only sent there"},
		{"/v2/status", "", "is not /hashsharing/v2/entries"},
		{"/v2/entries/../../admin", "", "is not"},
		{"v2/entries?" + ok, "", "not a path under the base URL"},
		{"/v2/entries?from=2024-05-01T11%3A00%3A00Z&start=2", "", "not the window's"},
		{"/v2/entries?to=yesterday", "", "not the window's"},
		{"%zz", "", "not a URL"},
	}
	for _, tc := range tests {
		u, err := c.next(tc.link, from, to)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: error %v, want %q", tc.link, err, tc.err)
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.link, err)
		case tc.err == "" && !strings.Contains(u.String(), tc.want):
			t.Errorf("%q resolved to %s, want it to contain %s", tc.link, u, tc.want)
		}
	}
}

// 401 and 403 name the user, never the password, and are not retried.
func TestSyncAuthErrors(t *testing.T) {
	e := newEnv(t, image("1", time.Minute, "A1"))
	cfg := e.cfg()
	cfg.Password = "wrong-password"
	_, err := Sync(context.Background(), cfg)
	var ae *AuthError
	if !errors.As(err, &ae) || ae.Status != 401 || !strings.Contains(err.Error(), `user "esp-user"`) {
		t.Fatalf("error %v, want a 401 naming the user", err)
	}
	if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("the error shows a password: %v", err)
	}
	if n := e.fake.Unauthorized.Load(); n != 1 {
		t.Errorf("%d refused requests, want 1 (no retry)", n)
	}
	if _, err := Check(context.Background(), cfg); !errors.As(err, &ae) {
		t.Fatalf("Check: %v", err)
	}
	st, err := Check(context.Background(), e.cfg())
	if err != nil || st.MemberID != "1" || st.MemberName != "Sir Testington" || st.Username != "esp-user" {
		t.Fatalf("status %+v, %v", st, err)
	}
	if !strings.Contains((&AuthError{Username: "u", Status: 403}).Error(), "403") {
		t.Error("403 message")
	}
}

// A restart (a new Sync with nothing in memory) resumes at the
// checkpoint. A crash after the bank was renamed into place but before
// its checkpoint was replays that window harmlessly; a bank restored from
// an older backup resumes from its own header.
func TestSyncRestartResumes(t *testing.T) {
	e := newEnv(t, image("1", time.Minute, "A1"))
	e.sync(e.cfg())
	oldBank := readFile(t, e.path)
	oldCk := readFile(t, CheckpointPath(e.path))
	e.fake.Add(image("2", 70*time.Minute, "A1"), tomb("deletedImage", "1", 80*time.Minute))
	e.setNow(t0.Add(2 * time.Hour))
	e.sync(e.cfg())
	// The crash: the new bank in place, the old checkpoint.
	os.WriteFile(CheckpointPath(e.path), []byte(oldCk), 0o600)
	before := len(e.fake.Requests())
	res := e.sync(e.cfg())
	reqs := e.fake.Requests()[before:]
	if len(reqs) != 1 || !strings.Contains(reqs[0], "from=2024-05-01T12%3A59%3A55Z") || res.Entries != 1 || res.Counts.MD5 != 1 {
		t.Fatalf("replay after a crash: %+v %v", res, reqs)
	}
	// The restored backup: the old bank, the new checkpoint.
	os.WriteFile(e.path, []byte(oldBank), 0o600)
	before = len(e.fake.Requests())
	res = e.sync(e.cfg())
	reqs = e.fake.Requests()[before:]
	if len(reqs) != 1 || !strings.Contains(reqs[0], "from=2024-05-01T12%3A59%3A55Z") || res.Entries != 1 || !strings.Contains(readFile(t, e.path), "ncmec:2 A1") ||
		strings.Contains(readFile(t, e.path), "ncmec:1 ") {
		t.Fatalf("restored backup: %+v %v\n%s", res, reqs, readFile(t, e.path))
	}
}

// A bank synced from one API is synced anew from another; a file the sync
// did not write is never overwritten; a configured start is where a first
// sync begins.
func TestSyncBankIdentity(t *testing.T) {
	e := newEnv(t, image("1", time.Minute, "A1"))
	e.sync(e.cfg())
	other := fakes.NewNCMEC(t, "esp-user", "s3cret-pass", image("9", time.Minute, "B1"))
	cfg := e.cfg()
	cfg.BaseURL = other.BaseURL()
	res := e.sync(cfg)
	if text := readFile(t, e.path); res.Entries != 1 || !strings.Contains(text, "ncmec:9 B1") || strings.Contains(text, "ncmec:1 ") {
		t.Fatalf("after a base URL change: %+v\n%s", res, text)
	}
	if _, err := os.Stat(e.path + resyncSuffix); !os.IsNotExist(err) {
		t.Fatalf("the resync's side file is left: %v", err)
	}

	// A resync that fails part-way leaves the bank in use whole: the
	// list in force never shrinks to the first windows of the new sync.
	// (Found by review: the first commit of a resync replaced the bank.)
	var many []fakes.NCMECEntry
	for i := range 8 {
		many = append(many, image(fmt.Sprint(31+i), time.Duration(1+i)*time.Minute, "A1"))
	}
	third := fakes.NewNCMEC(t, "esp-user", "s3cret-pass", many...)
	third.PageSize = 1
	// 13 pages: the empty windows of the day before, then the first
	// window holding an entry; the next page fails.
	third.SetFault(&fakes.NCMECFault{AfterPages: 13, Status: 500})
	cfg.BaseURL = third.BaseURL()
	cfg.MaxWindowEntries = 2 // windows of one entry, committed one by one
	before := readFile(t, e.path)
	wrote := e.wrote.Load()
	if res, err := Sync(context.Background(), cfg); err == nil || res.Read == 0 {
		// The fault must come after a window with entries was read:
		// only then could a resync have replaced the bank.
		t.Fatalf("the resync read %d entries, err %v: the fault must come after a window with entries", res.Read, err)
	}
	if readFile(t, e.path) != before || e.wrote.Load() != wrote {
		t.Fatal("a failed resync changed the bank in use")
	}
	third.SetFault(nil)
	if res := e.sync(cfg); res.Entries != 8 {
		t.Fatalf("the resync after healing: %+v", res)
	}
	if text := readFile(t, e.path); !strings.Contains(text, "ncmec:31 ") || !strings.Contains(text, "ncmec:38 ") || strings.Contains(text, "ncmec:9 ") {
		t.Fatalf("the resynced bank:\n%s", text)
	}
	if ck, ok, err := LoadCheckpoint(e.path); err != nil || !ok || ck.BaseURL != third.BaseURL() {
		t.Fatalf("checkpoint after the resync: %+v %v %v", ck, ok, err)
	}

	mine := filepath.Join(t.TempDir(), "hand.bank")
	os.WriteFile(mine, []byte("md5 "+md5Of("x")+" mine\n"), 0o600)
	cfg.Path = mine
	if _, err := Sync(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "refusing to overwrite") {
		t.Fatalf("a hand-written bank: %v", err)
	}
	if readFile(t, mine) != "md5 "+md5Of("x")+" mine\n" {
		t.Fatal("the hand-written bank was changed")
	}

	e2 := newEnv(t, image("early", -time.Hour, "A1"), image("late", time.Minute, "A1"))
	cfg = e2.cfg()
	cfg.Start = t0
	if res := e2.sync(cfg); res.Entries != 1 || !strings.Contains(e2.fake.Requests()[0], "from=2024-05-01T12%3A00%3A00Z") {
		t.Fatalf("configured start: %+v %v", res, e2.fake.Requests())
	}
}

// A window whose first page estimates more than MaxWindowEntries is cut
// down and fetched again in smaller windows; consecutive windows are
// committed together, up to half that bound of changes.
func TestSyncShrinksLargeWindows(t *testing.T) {
	e := newEnv(t)
	g := fakes.NCMECGenerated{N: 300, From: t0, Step: 10 * time.Second, VideoEvery: 10}
	e.fake.Generate(g)
	e.fake.PageSize = 20
	cfg := e.cfg()
	cfg.MaxWindowEntries = 50
	res := e.sync(cfg)
	if res.Entries != 300 || res.Counts.VideoMD5 != 30 || res.Counts.PDQ != 270 || res.Windows < 6 || res.Commits < 6 || res.Commits >= res.Windows {
		t.Fatalf("result %+v", res)
	}
	if b := e.bank(); b.Counts().MD5 != 270 || b.Counts().SHA1 != 270 {
		t.Fatalf("bank counts %+v", b.Counts())
	}
	// A window is read past its first page only when that page
	// estimated it within bounds.
	for _, r := range e.fake.Requests() {
		q, _ := url.ParseQuery(strings.SplitN(r, "?", 2)[1])
		var n int
		if _, err := fmt.Sscan(q.Get("max"), &n); err == nil && n > cfg.MaxWindowEntries+1 {
			t.Errorf("a window of %d entries was read past its first page: %s", n, r)
		}
	}
}

// Two syncs of one bank never run at once.
func TestSyncBusy(t *testing.T) {
	e := newEnv(t, image("1", time.Minute, "A1"))
	unlock, err := tryLock(e.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Sync(context.Background(), e.cfg()); !errors.Is(err, ErrBusy) {
		t.Fatalf("error %v, want ErrBusy", err)
	}
	unlock()
	e.sync(e.cfg())
}

func TestConfigValidate(t *testing.T) {
	good := Config{Name: "N", Path: "/x", Environment: "industry", Username: "u", Password: "p"}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for name, mod := range map[string]func(*Config){
		"no env":       func(c *Config) { c.Environment = "" },
		"bad env":      func(c *Config) { c.Environment = "prod" },
		"bad base":     func(c *Config) { c.BaseURL = "ftp://x" },
		"creds in URL": func(c *Config) { c.BaseURL = "https://u:p@x/hashsharing" },
		"no password":  func(c *Config) { c.Password = "" },
		"colon user":   func(c *Config) { c.Username = "a:b" },
		"no path":      func(c *Config) { c.Path = "" },
	} {
		c := good
		mod(&c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		} else if strings.Contains(err.Error(), c.Password) && c.Password != "" && c.Password != "p" {
			t.Errorf("%s: error shows the password", name)
		}
	}
	for env, base := range Environments {
		c := good
		c.Environment = env
		if u, err := c.base(); err != nil || u.String() != base {
			t.Errorf("%s: %v %v", env, u, err)
		}
	}
}
