package lookupapi

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
)

// Digests of a "listed" and an "unlisted" file, and a banked PDQ hash.
var (
	listedMD5      = md5hex("listed")
	listedSHA1     = sha1hex("listed-sha1")
	listedSHA256   = sha256hex("listed-sha256")
	unlistedMD5    = md5hex("unlisted")
	unlistedSHA1   = sha1hex("unlisted")
	unlistedSHA256 = sha256hex("unlisted")
	bankedPDQ      = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
)

// placeholderPDQ is what the plugin sends in hashes.pdq.
const placeholderPDQ = "stubbed_pdq_placeholder_0123456789abcdef"

func md5hex(s string) string    { d := md5.Sum([]byte(s)); return hex.EncodeToString(d[:]) }
func sha1hex(s string) string   { d := sha1.Sum([]byte(s)); return hex.EncodeToString(d[:]) }
func sha256hex(s string) string { d := sha256.Sum256([]byte(s)); return hex.EncodeToString(d[:]) }

// flipPDQ returns the hex hash h with its first n bits inverted: a hash at
// distance n.
func flipPDQ(t testing.TB, h string, n int) string {
	t.Helper()
	p, err := pdq.ParseHex(h)
	if err != nil {
		t.Fatal(err)
	}
	for k := 0; k < n; k++ {
		p[k/64] ^= 1 << (k % 64)
	}
	return p.String()
}

// pluginBody is the request the plugin sends, with its placeholder PDQ.
func pluginBody(md5, sha1, sha256 string) string {
	return fmt.Sprintf(`{"hashes":{"md5":%q,"sha1":%q,"sha256":%q,"pdq":%q},`+
		`"eventId":"$ev1:example.org","roomId":"!room:example.org","userId":"@mallory:example.org",`+
		`"mediaType":"m.image","timestamp":1703123456789}`, md5, sha1, sha256, placeholderPDQ)
}

// newTestLocal builds a matcher.Local over a temporary bank file.
func newTestLocal(t testing.TB, lines ...string) *matcher.Local {
	t.Helper()
	path := filepath.Join(t.TempDir(), "bank.txt")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := matcher.NewLocal(matcher.LocalConfig{
		Banks:          []matcher.BankConfig{{Name: "TEST_BANK", Path: path}},
		ReloadInterval: -1,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// standardLocal holds the listed digests and bankedPDQ.
func standardLocal(t testing.TB) *matcher.Local {
	return newTestLocal(t,
		"md5 "+listedMD5+" case-1",
		"sha1 "+listedSHA1,
		"sha256 "+listedSHA256+" case-3",
		"pdq "+bankedPDQ+" photo-4",
	)
}

// fakeMatcher answers with fn and records the queries it was asked.
type fakeMatcher struct {
	fn    func(q matcher.Query) (matcher.Verdict, error)
	mu    sync.Mutex
	last  matcher.Query
	calls atomic.Int64
}

func (f *fakeMatcher) Match(ctx context.Context, q matcher.Query) (matcher.Verdict, error) {
	f.calls.Add(1)
	f.mu.Lock()
	f.last = q
	f.mu.Unlock()
	if f.fn == nil {
		return matcher.Verdict{}, nil
	}
	return f.fn(q)
}

func (f *fakeMatcher) lastQuery() matcher.Query {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newHandler(t testing.TB, cfg Config) *Handler {
	t.Helper()
	if cfg.Matcher == nil {
		cfg.Matcher = &fakeMatcher{}
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// reqOpt adjusts a test request.
type reqOpt func(*http.Request)

func withHeader(k, v string) reqOpt { return func(r *http.Request) { r.Header.Set(k, v) } }
func fromAddr(a string) reqOpt      { return func(r *http.Request) { r.RemoteAddr = a } }

// pluginHeaders are the headers the plugin sends.
func pluginHeaders(r *http.Request) {
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("User-Agent", "Mjolnir-HMA-Plugin/1.0")
}

func serve(h http.Handler, method, target, body string, opts ...reqOpt) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r := httptest.NewRequest(method, target, rd)
	for _, o := range opts {
		o(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// decodeObject decodes a JSON object answer, failing on anything else.
func decodeObject(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("answer is not a JSON object: %v: %q", err, b)
	}
	return m
}

// keysOf returns the sorted keys of m, comma-joined.
func keysOf(m map[string]any) string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return strings.Join(ks, ",")
}

// checkCommonHeaders asserts what every answer carries.
func checkCommonHeaders(t testing.TB, w *httptest.ResponseRecorder) {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q", cc)
	}
}

// bankLackingMatcher is a remote whose backend lacks some configured banks.
type bankLackingMatcher struct {
	fakeMatcher
	missing []string
}

func (b *bankLackingMatcher) MissingBanks() []string { return b.missing }
