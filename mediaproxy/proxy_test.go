package mediaproxy

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/sched"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/matcher"
)

// testRunner is the one hashing Runner of the tests' proxies: a Runner's
// threads and worker processes last as long as the test binary, so the
// tests share one as a server shares one across reloads.
var testRunner = sched.NewRunner(nil)

func testPhoto(seed, w, h int) *image.NRGBA { return testimg.Photo(seed, w, h) }

func jpegBytes(img image.Image, q int) []byte { return testimg.JPEG(img, q) }

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func pdqOf(t *testing.T, b []byte) pdq.Hash {
	t.Helper()
	res, _, err := pdq.HashBytes(b, pdq.DecodeOptions{}, pdq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return res.Hash
}

type recorder struct {
	mu sync.Mutex
	ds []Decision
}

func (r *recorder) Observe(d *Decision) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ds = append(r.ds, *d)
}

func (r *recorder) last() Decision {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.ds) == 0 {
		return Decision{}
	}
	return r.ds[len(r.ds)-1]
}

type env struct {
	up    *fakeSynapse
	front *httptest.Server
	proxy *Proxy
	obs   *recorder
	tmp   string
	bank  string
	local *matcher.Local
}

// newEnv puts a Proxy (with a real local bank holding bankLines) between a
// test client and the fake Synapse, through httputil's reverse proxy as
// Caddy's reverse_proxy would be.
func newEnv(t testing.TB, bankLines []string, tune func(*Config)) *env {
	t.Helper()
	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	if err := os.WriteFile(bank, []byte(strings.Join(bankLines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	local, err := matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "TEST", Path: bank}}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	up := newFakeSynapse(t)
	u, _ := url.Parse(up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ErrorLog = nil
	obs := &recorder{}
	// OnResponse is set as the Caddy adapter sets it, so every test's
	// media request goes through the writer that notes its status.
	cfg := Config{Matcher: local, Observer: obs, TempDir: dir, MemoryBuffer: 64 << 10, MaxUploadSize: 8 << 20, Runner: testRunner,
		OnResponse: func(string, int, error) {}}
	if tune != nil {
		tune(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := p.ServeHTTP(w, r, func(w http.ResponseWriter, r *http.Request) error { rp.ServeHTTP(w, r); return nil }); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
		}
	}))
	t.Cleanup(front.Close)
	return &env{up: up, front: front, proxy: p, obs: obs, tmp: p.SpoolDir(), bank: bank, local: local}
}

// relist replaces the bank's content and reloads it now.
func (e *env) relist(t *testing.T, lines ...string) {
	t.Helper()
	// A new size and mtime, so the reload cannot mistake it for the old file.
	if err := os.WriteFile(e.bank, []byte(strings.Join(lines, "\n")+"\n# relisted\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	os.Chtimes(e.bank, future, future)
	if err := e.local.Reload(); err != nil {
		t.Fatal(err)
	}
}

func (e *env) do(t *testing.T, method, path, ct string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, _ := http.NewRequest(method, e.front.URL+path, rd)
	if ct != "" {
		req.Header.Set("Content-Type", ct)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (e *env) upload(t *testing.T, ct string, body []byte) (*http.Response, string) {
	resp, b := e.do(t, "POST", "/_matrix/media/v3/upload?filename=x", ct, body)
	var out struct {
		ContentURI string `json:"content_uri"`
		Errcode    string `json:"errcode"`
	}
	json.Unmarshal(b, &out)
	if resp.StatusCode == 200 {
		return resp, strings.TrimPrefix(out.ContentURI, "mxc://")
	}
	return resp, out.Errcode
}

func (e *env) noTempFiles(t *testing.T) {
	t.Helper()
	ents, _ := os.ReadDir(e.tmp)
	if len(ents) != 0 {
		t.Fatalf("%d spool files left behind", len(ents))
	}
}

func TestCleanUploadForwardedIdentical(t *testing.T) {
	var spooled, peak atomic.Int64
	e := newEnv(t, []string{"sha256 " + strings.Repeat("ab", 32)}, func(c *Config) {
		c.MemoryBuffer = 1024
		c.OnSpool = func(d int64) {
			if v := spooled.Add(d); v > peak.Load() {
				peak.Store(v)
			}
		}
	})
	img := encodePNG(testPhoto(1, 300, 200)) // > 1 KiB: spills to disk
	resp, id := e.upload(t, "image/png", img)
	if resp.StatusCode != 200 {
		t.Fatalf("clean upload: %d", resp.StatusCode)
	}
	e.noTempFiles(t)
	if peak.Load() != int64(len(img)) || spooled.Load() != 0 {
		t.Fatalf("spool accounting: peak %d (want %d), now %d (want 0)", peak.Load(), len(img), spooled.Load())
	}
	if d := e.obs.last(); d.Outcome != Clean || d.PDQ == nil || d.MediaKey.String() != id {
		t.Fatalf("decision %+v", d)
	}
	stored, _ := e.up.Get(strings.Split(id, "/")[1])
	if !bytes.Equal(stored.Data, img) {
		t.Fatal("upstream stored different bytes")
	}
	for _, p := range []string{"/_matrix/media/v3/download/" + id, "/_matrix/client/v1/media/download/" + id + "/x.png", "/_matrix/media/r0/download/" + id} {
		resp, body := e.do(t, "GET", p, "", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, img) {
			t.Fatalf("%s: %d, %d bytes", p, resp.StatusCode, len(body))
		}
		if d := e.obs.last(); d.Outcome != KnownClean {
			t.Fatalf("%s: expected a known-clean decision from the upload, got %s", p, d.Outcome)
		}
	}
}

func TestListedUploadRefusedNothingForwarded(t *testing.T) {
	img := jpegBytes(testPhoto(2, 320, 240), 90)
	e := newEnv(t, []string{"sha256 " + sha256Hex(img) + " test-label"}, nil)
	resp, code := e.upload(t, "image/jpeg", img)
	if resp.StatusCode != 403 || code != "M_FORBIDDEN" {
		t.Fatalf("got %d %s", resp.StatusCode, code)
	}
	if resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatal("refusal lacks CORS headers")
	}
	if n := e.up.Uploads.Load(); n != 0 {
		t.Fatalf("%d bodies reached the homeserver", n)
	}
	if d := e.obs.last(); d.Outcome != Blocked || d.Verdict.HashType != matcher.SHA256 || d.Verdict.Bank != "TEST" {
		t.Fatalf("decision %+v", d.Verdict)
	}
}

func TestReencodedCopyRefusedViaPDQ(t *testing.T) {
	orig := testPhoto(3, 400, 300)
	h := pdqOf(t, jpegBytes(orig, 95))
	e := newEnv(t, []string{"pdq " + h.String()}, nil)
	small := testimg.Resize(orig, 360, 270)
	resp, _ := e.upload(t, "image/jpeg", jpegBytes(small, 70))
	if resp.StatusCode != 403 {
		t.Fatalf("re-encoded copy: %d", resp.StatusCode)
	}
	if d := e.obs.last(); d.Verdict.HashType != matcher.PDQ || d.Verdict.Distance > 31 {
		t.Fatalf("verdict %+v", d.Verdict)
	}
}

func TestAsyncUploadPUT(t *testing.T) {
	img := encodePNG(testPhoto(4, 64, 64))
	e := newEnv(t, []string{"md5 " + md5Hex(img)}, nil)
	resp, body := e.do(t, "POST", "/_matrix/media/v1/create", "", nil)
	var c struct {
		ContentURI string `json:"content_uri"`
	}
	json.Unmarshal(body, &c)
	id := strings.TrimPrefix(c.ContentURI, "mxc://")
	if resp.StatusCode != 200 || id == "" {
		t.Fatalf("create passes through: %d %s", resp.StatusCode, body)
	}
	resp, _ = e.do(t, "PUT", "/_matrix/media/v3/upload/"+id, "image/png", img)
	if resp.StatusCode != 403 || e.up.Uploads.Load() != 0 {
		t.Fatalf("listed PUT: %d, %d forwarded", resp.StatusCode, e.up.Uploads.Load())
	}
	// Nothing was stored under the ID (and it is not remembered as blocked:
	// a PUT's ID is the client's claim until the homeserver checks it).
	for _, p := range []string{"/_matrix/media/v3/download/" + id, "/_matrix/client/v1/media/thumbnail/" + id + "?width=32&height=32"} {
		if resp, _ := e.do(t, "GET", p, "", nil); resp.StatusCode != 404 {
			t.Fatalf("%s after a blocked PUT: %d", p, resp.StatusCode)
		}
	}
	clean := encodePNG(testPhoto(5, 64, 64))
	resp, body = e.do(t, "POST", "/_matrix/media/v1/create", "", nil)
	json.Unmarshal(body, &c)
	id = strings.TrimPrefix(c.ContentURI, "mxc://")
	if resp, _ := e.do(t, "PUT", "/_matrix/media/v3/upload/"+id, "image/png", clean); resp.StatusCode != 200 {
		t.Fatalf("clean PUT: %d", resp.StatusCode)
	}
	if resp, _ := e.do(t, "PUT", "/_matrix/media/v3/upload/"+id, "image/png", clean); resp.StatusCode != 409 {
		t.Fatalf("second PUT must reach Synapse's 409: %d", resp.StatusCode)
	}
}

func md5Hex(b []byte) string {
	d := hashing.DigestBytes(b)
	return d.MD5Hex()
}

// TestUnknownDownloadsDecidedBeforeFirstByte covers media the proxy never
// saw uploaded (federation, or uploaded before mediaguard was installed).
func TestUnknownDownloadsDecidedBeforeFirstByte(t *testing.T) {
	listed := encodePNG(testPhoto(6, 256, 256))
	e := newEnv(t, []string{"pdq " + pdqOf(t, listed).String()}, nil)
	e.up.Put("bad", listed, "image/png")
	e.up.Put("good", encodePNG(testPhoto(7, 256, 256)), "image/png")

	// The thumbnail is different bytes; PDQ still catches it.
	resp, body := e.do(t, "GET", "/_matrix/media/v3/thumbnail/hs.example/bad?width=128&height=128&method=scale", "", nil)
	if resp.StatusCode != 404 || !strings.Contains(string(body), "M_NOT_FOUND") {
		t.Fatalf("thumbnail of listed image: %d (%s)", resp.StatusCode, e.obs.last().Outcome)
	}
	if resp.Header.Get("ETag") != "" || resp.Header.Get("Content-Type") != "application/json" || resp.ContentLength != int64(len(body)) {
		t.Fatalf("upstream headers leaked into the refusal: %v", resp.Header)
	}
	// Now the whole media ID is known bad, original included.
	if resp, _ := e.do(t, "GET", "/_matrix/client/v1/media/download/hs.example/bad", "", nil); resp.StatusCode != 404 || e.obs.last().Outcome != KnownBlocked {
		t.Fatalf("original after a blocked thumbnail: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	resp, body = e.do(t, "GET", "/_matrix/client/v1/media/download/hs.example/good", "", nil)
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == "" || int(resp.ContentLength) != len(body) {
		t.Fatalf("clean download: %d, headers %v", resp.StatusCode, resp.Header)
	}
	if e.obs.last().Outcome != Clean {
		t.Fatalf("outcome %s", e.obs.last().Outcome)
	}
}

func TestFederationMultipart(t *testing.T) {
	listed := encodePNG(testPhoto(8, 128, 128))
	e := newEnv(t, []string{"sha1 " + hashing.DigestBytes(listed).SHA1Hex()}, func(c *Config) { c.ServerName = "hs.example" })
	e.up.Put("fbad", listed, "image/png")
	good := encodePNG(testPhoto(9, 128, 128))
	e.up.Put("fgood", good, "image/png")
	if resp, _ := e.do(t, "GET", "/_matrix/federation/v1/media/download/fbad", "", nil); resp.StatusCode != 404 {
		t.Fatalf("listed federation media: %d", resp.StatusCode)
	}
	resp, body := e.do(t, "GET", "/_matrix/federation/v1/media/download/fgood", "", nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, good) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/mixed") {
		t.Fatalf("clean federation media: %d", resp.StatusCode)
	}
	// The federation verdict is shared with the client families.
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/fbad", "", nil); resp.StatusCode != 404 || e.obs.last().Outcome != KnownBlocked {
		t.Fatalf("legacy download of federation-blocked media: %d", resp.StatusCode)
	}
	e.up.Redirect.Store(true)
	e.up.Put("fredirect", listed, "image/png")
	if resp, _ := e.do(t, "GET", "/_matrix/federation/v1/media/download/fredirect", "", nil); resp.StatusCode != 200 || e.obs.last().Outcome != Unscannable {
		t.Fatalf("redirect part: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
}

func TestPassThroughHeadRange304(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
	img := encodePNG(testPhoto(10, 100, 100))
	_, id := e.upload(t, "image/png", img)
	path := "/_matrix/media/v3/download/" + id
	if resp, body := e.do(t, "HEAD", path, "", nil); resp.StatusCode != 200 || len(body) != 0 {
		t.Fatalf("HEAD: %d", resp.StatusCode)
	}
	resp, body := e.do(t, "GET", path, "", nil, "Range", "bytes=0-9")
	if resp.StatusCode != 206 || len(body) != 10 {
		t.Fatalf("Range on known media: %d %d", resp.StatusCode, len(body))
	}
	etag := resp.Header.Get("ETag")
	if resp, _ := e.do(t, "GET", path, "", nil, "If-None-Match", etag); resp.StatusCode != 304 {
		t.Fatalf("conditional: %d", resp.StatusCode)
	}
	// For unknown media a Range is dropped so the whole body is judged.
	e.up.Put("unk", img, "image/png")
	if resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/unk", "", nil, "Range", "bytes=0-9"); resp.StatusCode != 200 || len(body) != len(img) {
		t.Fatalf("Range on unknown media: %d %d", resp.StatusCode, len(body))
	}
	// Non-media paths are untouched: the homeserver's own answer.
	if resp, body := e.do(t, "GET", "/_matrix/client/versions", "", nil); resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"versions"`)) {
		t.Fatalf("non-media: %d %s", resp.StatusCode, body)
	}
	if resp, _ := e.do(t, "GET", "/_matrix/client/v3/no-such-endpoint", "", nil); resp.StatusCode != 404 {
		t.Fatalf("non-media 404: %d", resp.StatusCode)
	}
}

func TestLateMatchOnStreamedDownloadAborts(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	// Larger than anything that could be uploaded: only then does a
	// download stream before it is judged.
	e := newEnv(t, []string{"sha256 " + sha256Hex(big)}, func(c *Config) { c.MaxDownloadBuffer, c.MaxUploadSize = 128<<10, 256<<10 })
	e.up.Put("huge", big, "video/mp4")
	req, _ := http.NewRequest("GET", e.front.URL+"/_matrix/media/v3/download/hs.example/huge", nil)
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		got, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		if rerr == nil && bytes.Equal(got, big) {
			t.Fatal("a listed file was served complete")
		}
		if len(got) > len(big)-streamTail {
			t.Fatalf("client got %d of %d bytes; the tail must be held back", len(got), len(big))
		}
	}
	if d := e.obs.last(); d.Outcome != LateBlocked {
		t.Fatalf("outcome %s", d.Outcome)
	}
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/huge", "", nil); resp.StatusCode != 404 {
		t.Fatalf("after a late match: %d", resp.StatusCode)
	}
	// A large clean download streams complete.
	clean := bytes.Repeat([]byte("clean!"), 300_000)
	e.up.Put("bigclean", clean, "video/mp4")
	if resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/bigclean", "", nil); resp.StatusCode != 200 || !bytes.Equal(body, clean) {
		t.Fatalf("large clean download: %d %d", resp.StatusCode, len(body))
	}
}

func TestUploadLimitsAndBadInput(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, func(c *Config) { c.MaxUploadSize = 1 << 20 })
	tooBig := make([]byte, 1<<20+1)
	if resp, code := e.upload(t, "application/octet-stream", tooBig); resp.StatusCode != 413 || code != "M_TOO_LARGE" {
		t.Fatalf("declared too large: %d %s", resp.StatusCode, code)
	}
	// Chunked (no Content-Length): spooled, capped, and forwarded with one.
	req, _ := http.NewRequest("POST", e.front.URL+"/_matrix/media/v3/upload", io.MultiReader(bytes.NewReader(tooBig)))
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 413 {
		t.Fatalf("chunked too large: %v %v", err, resp)
	}
	resp.Body.Close()
	small := []byte("small chunked body")
	req, _ = http.NewRequest("POST", e.front.URL+"/_matrix/media/v3/upload", io.MultiReader(bytes.NewReader(small)))
	req.ContentLength = -1
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("chunked upload must reach the homeserver with a Content-Length: %v %v", err, resp)
	}
	resp.Body.Close()
	// An encrypted attachment is forwarded but recorded as unscannable.
	if resp, _ := e.upload(t, "application/octet-stream", bytes.Repeat([]byte{0x9c, 0x41}, 5000)); resp.StatusCode != 200 || e.obs.last().Outcome != Unscannable {
		t.Fatalf("encrypted: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	for path, want := range map[string]int{
		"/_matrix/media/v3/download/hs.example/..":                          404,
		"/_matrix/media/v3/download/hs.example/a%2Fb":                       404,
		"/_matrix/media/v3/download/hs.example/" + strings.Repeat("a", 300): 404,
	} {
		if resp, _ := e.do(t, "GET", path, "", nil); resp.StatusCode != want {
			t.Errorf("%s: %d want %d", path, resp.StatusCode, want)
		}
	}
	if resp, _ := e.do(t, "PUT", "/_matrix/media/v3/upload/hs.example/a%2F..", "image/png", []byte("x")); resp.StatusCode != 400 {
		t.Errorf("bad PUT path: %d", resp.StatusCode)
	}
	e.noTempFiles(t)
	_ = fmt.Sprint()
}

// ?access_token= is moved into the Authorization header before anything
// downstream (reverse_proxy, the homeserver) can log the URL.
func TestQueryTokenMovedToHeader(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
	for _, tc := range []struct {
		name, target, auth       string
		wantQuery, wantAuth, uri string
	}{
		{"query only", "/_matrix/client/v3/sync?since=s1&access_token=syt_secret", "",
			"since=s1", "Bearer syt_secret", "/_matrix/client/v3/sync?since=s1"},
		{"media download", "/_matrix/media/v3/download/hs.example/abc?access_token=syt_secret&allow_redirect=true", "",
			"allow_redirect=true", "Bearer syt_secret", "/_matrix/media/v3/download/hs.example/abc?allow_redirect=true"},
		{"both: left for the homeserver to refuse", "/_matrix/client/v3/sync?access_token=a", "Bearer b",
			"access_token=a", "Bearer b", "/_matrix/client/v3/sync?access_token=a"},
		{"none", "/_matrix/client/v3/sync?x=1", "", "x=1", "", "/_matrix/client/v3/sync?x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", tc.target, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			var got *http.Request
			e.proxy.ServeHTTP(httptest.NewRecorder(), req, func(w http.ResponseWriter, r *http.Request) error {
				got = r
				w.WriteHeader(404)
				return nil
			})
			if got == nil {
				t.Fatal("not passed on")
			}
			if got.URL.RawQuery != tc.wantQuery || got.Header.Get("Authorization") != tc.wantAuth || got.RequestURI != tc.uri {
				t.Fatalf("query %q auth %q uri %q", got.URL.RawQuery, got.Header.Get("Authorization"), got.RequestURI)
			}
		})
	}
}

// An encrypted attachment is judged once: its next download is decided from
// memory, not buffered and hashed again (nor audited again).
func TestUnscannableRemembered(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
	opaque := bytes.Repeat([]byte{0x9c, 0x41, 0x07}, 20000)
	e.up.Put("enc", opaque, "application/octet-stream")
	for i, want := range []Outcome{Unscannable, KnownClean} {
		resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/enc", "", nil)
		if resp.StatusCode != 200 || !bytes.Equal(body, opaque) || e.obs.last().Outcome != want {
			t.Fatalf("download %d: %d, %d bytes, outcome %s; want %s", i, resp.StatusCode, len(body), e.obs.last().Outcome, want)
		}
	}
	resp, uri := e.upload(t, "application/octet-stream", bytes.Repeat([]byte{0x17, 0xe3}, 5000))
	if resp.StatusCode != 200 || e.obs.last().Outcome != Unscannable {
		t.Fatalf("encrypted upload: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	if e.do(t, "GET", "/_matrix/media/v3/download/"+uri, "", nil); e.obs.last().Outcome != KnownClean {
		t.Fatalf("download of an uploaded encrypted attachment: %s", e.obs.last().Outcome)
	}
}

// A forwarded upload's decision carries the homeserver's answer, so an
// upload it never accepted is not taken for one stored.
func TestUploadDecisionCarriesUpstreamStatus(t *testing.T) {
	local, err := matcher.NewLocal(matcher.LocalConfig{ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	obs := &recorder{}
	p, err := New(Config{Matcher: local, Observer: obs, TempDir: t.TempDir(), Hashing: HashingInline})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		next Next
		want int
	}{
		{"stored", func(w http.ResponseWriter, _ *http.Request) error {
			_, err := io.WriteString(w, `{"content_uri":"mxc://hs.example/abc"}`)
			return err
		}, 200},
		{"refused by the homeserver", func(w http.ResponseWriter, _ *http.Request) error {
			w.WriteHeader(http.StatusInternalServerError)
			return nil
		}, 500},
		{"homeserver unreachable", func(http.ResponseWriter, *http.Request) error {
			return errors.New("dial tcp: connection refused")
		}, 0},
	} {
		r := httptest.NewRequest("POST", "/_matrix/media/v3/upload", strings.NewReader("some bytes"))
		p.ServeHTTP(httptest.NewRecorder(), r, tc.next)
		if d := obs.last(); !d.Upload || d.UpstreamStatus != tc.want {
			t.Errorf("%s: upstream status %d, want %d", tc.name, d.UpstreamStatus, tc.want)
		}
	}
}
