package mediaproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/matcher"
)

// downMatcher is a backend that cannot answer, as the Guard reports one
// under the fail-closed policy (or fail-open: unscanned).
type downMatcher struct{ failOpen bool }

func (m downMatcher) Match(ctx context.Context, q matcher.Query) (matcher.Verdict, error) {
	if m.failOpen {
		return matcher.Verdict{Unscanned: true, Notes: []string{"hma: unavailable"}}, nil
	}
	return matcher.Verdict{}, fmt.Errorf("%w: connection refused", matcher.ErrUnavailable)
}

func envWithMatcher(t *testing.T, m matcher.Matcher) *env {
	t.Helper()
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
	p, err := New(Config{Runner: testRunner, Matcher: m, Observer: e.obs, TempDir: e.tmp, MemoryBuffer: 1024})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(e.up.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	e.front.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.ServeHTTP(w, r, func(w http.ResponseWriter, r *http.Request) error { rp.ServeHTTP(w, r); return nil })
	})
	e.proxy, e.tmp = p, p.SpoolDir()
	return e
}

func TestMatcherDownFailClosed(t *testing.T) {
	e := envWithMatcher(t, downMatcher{})
	img := encodePNG(testPhoto(11, 200, 150))
	resp, code := e.upload(t, "image/png", img)
	if resp.StatusCode != 503 || code != "M_UNKNOWN" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fail closed upload: %d %s", resp.StatusCode, code)
	}
	if e.up.Uploads.Load() != 0 {
		t.Fatal("a refused upload reached the homeserver")
	}
	if d := e.obs.last(); d.Outcome != Refused || !errors.Is(d.Err, matcher.ErrUnavailable) {
		t.Fatalf("decision %s %v", d.Outcome, d.Err)
	}
	e.up.Put("dl", img, "image/png")
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/dl", "", nil); resp.StatusCode != 503 {
		t.Fatalf("fail closed download: %d", resp.StatusCode)
	}
	e.noTempFiles(t)
}

func TestMatcherDownFailOpen(t *testing.T) {
	e := envWithMatcher(t, downMatcher{failOpen: true})
	resp, _ := e.upload(t, "image/png", encodePNG(testPhoto(12, 200, 150)))
	if resp.StatusCode != 200 || e.obs.last().Outcome != Unscanned {
		t.Fatalf("fail open: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	// Unscanned media is not remembered as clean: it is judged again.
	id := e.obs.last().MediaKey
	if id.IsZero() {
		t.Fatal("the upload's media ID was not learned from the answer")
	}
	if _, ok := e.proxy.Memory().Get(id.Original()); ok {
		t.Fatal("an unscanned upload was remembered as clean")
	}
}

// TestTruncatedUploadNotForwarded: a client that declares more than it
// sends and hangs up must not get half a body to the homeserver.
func TestTruncatedUploadNotForwarded(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n%s", strings.Repeat("x", 70000))
	conn.(*net.TCPConn).CloseWrite()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatalf("truncated upload answered 200")
		}
	}
	conn.Close()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		if ents, _ := os.ReadDir(e.tmp); len(ents) == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.noTempFiles(t)
	if e.up.Uploads.Load() != 0 {
		t.Fatal("half a body reached the homeserver")
	}
}

// TestUpstreamErrorsBecomeMatrixErrors: Caddy's reverse_proxy returns dial
// and timeout errors instead of writing; the client must get Matrix JSON,
// with nothing from the failed attempt.
func TestUpstreamErrorsBecomeMatrixErrors(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
	failing := func(w http.ResponseWriter, r *http.Request) error {
		w.Header().Set("X-Upstream", "partial")
		return errors.New("dial tcp 127.0.0.1:8008: connect: connection refused")
	}
	for _, tc := range []struct{ method, path, ct string }{
		{"POST", "/_matrix/media/v3/upload", "image/png"},
		{"GET", "/_matrix/client/v1/media/download/hs.example/abc", ""},
	} {
		var body *strings.Reader
		if tc.method == "POST" {
			body = strings.NewReader(string(encodePNG(testPhoto(13, 50, 50))))
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest(tc.method, tc.path, body)
		req.Header.Set("Content-Type", tc.ct)
		rec := httptest.NewRecorder()
		if err := e.proxy.ServeHTTP(rec, req, failing); err != nil {
			t.Fatalf("%s: error returned instead of answered: %v", tc.path, err)
		}
		if rec.Code != 502 || !strings.Contains(rec.Body.String(), `"errcode":"M_UNKNOWN"`) || rec.Header().Get("X-Upstream") != "" {
			t.Fatalf("%s: %d %s %v", tc.path, rec.Code, rec.Body, rec.Header())
		}
	}
	e.noTempFiles(t)
}

// TestCompressedUpstreamNotABypass: an upstream that gzips would make the
// bytes hash as something else; the proxy asks for identity and refuses an
// encoded answer it cannot judge.
func TestCompressedUpstreamNotABypass(t *testing.T) {
	listed := encodePNG(testPhoto(21, 120, 90))
	e := newEnv(t, []string{"sha256 " + sha256Hex(listed)}, nil)
	var sawAE string
	gz := func(w http.ResponseWriter, r *http.Request) error {
		sawAE = r.Header.Get("Accept-Encoding")
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Type", "image/png")
		w.Write([]byte("\x1f\x8b pretend gzip of the listed file"))
		return nil
	}
	req := httptest.NewRequest("GET", "/_matrix/client/v1/media/download/hs.example/gz", nil)
	req.Header.Set("Accept-Encoding", "gzip, br")
	rec := httptest.NewRecorder()
	e.proxy.ServeHTTP(rec, req, gz)
	if sawAE != "identity" {
		t.Fatalf("upstream asked with Accept-Encoding %q", sawAE)
	}
	if rec.Code != 502 || rec.Header().Get("Content-Encoding") != "" {
		t.Fatalf("encoded answer passed: %d %v", rec.Code, rec.Header())
	}
}

// TestAbortedStreamReleasesLanes: a client that goes away mid-stream makes
// reverse_proxy panic with http.ErrAbortHandler; the hashing goroutines
// must still end.
func TestAbortedStreamReleasesLanes(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, func(c *Config) { c.MaxDownloadBuffer = 64 << 10 })
	before := runtime.NumGoroutine()
	for range 5 {
		func() {
			defer func() { recover() }()
			abort := func(w http.ResponseWriter, r *http.Request) error {
				w.Header().Set("Content-Type", "video/mp4")
				w.Write(make([]byte, 1<<20)) // streams: lanes start
				panic(http.ErrAbortHandler)
			}
			e.proxy.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/_matrix/media/v3/download/hs.example/big", nil), abort)
		}()
	}
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("hashing goroutines leaked: %d before, %d after", before, n)
	}
}

// TestBufferBudget: with the shared memory budget spent, an unknown
// download is spooled to disk and still judged whole before its first byte
// (PDQ included), and the budget and the disk are given back afterwards.
func TestBufferBudget(t *testing.T) {
	big := make([]byte, 200<<10)
	listedImg := encodePNG(testPhoto(51, 300, 200))
	var onDisk, peak atomic.Int64
	e := newEnv(t, []string{"sha256 " + sha256Hex(big), "pdq " + pdqOf(t, listedImg).String()}, func(c *Config) {
		c.MaxBufferedTotal = 100 << 10
		c.OnSpool = func(d int64) {
			if v := onDisk.Add(d); v > peak.Load() {
				peak.Store(v)
			}
		}
	})
	e.up.Put("big", big, "video/mp4")
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/big", "", nil); resp.StatusCode != 404 || e.obs.last().Outcome != Blocked {
		t.Fatalf("listed, over budget: %d %s; want 404 blocked before the first byte", resp.StatusCode, e.obs.last().Outcome)
	}
	// A re-encoded copy is caught by PDQ from disk too.
	e.up.Put("copy", jpegBytes(halve(decodePNG(t, listedImg)), 80), "image/jpeg")
	clean := bytes.Repeat([]byte("clean bytes "), 20000)
	e.up.Put("clean", clean, "video/mp4")
	// Hold the whole budget so every download spills.
	if !e.proxy.reserve(100 << 10) {
		t.Fatal("budget not free")
	}
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/copy", "", nil); resp.StatusCode != 404 || e.obs.last().Verdict.HashType != "pdq" {
		t.Fatalf("re-encoded copy from disk: %d %+v", resp.StatusCode, e.obs.last().Verdict)
	}
	if resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/clean", "", nil); resp.StatusCode != 200 || !bytes.Equal(body, clean) || resp.Header.Get("Content-Length") != fmt.Sprint(len(clean)) {
		t.Fatalf("clean from disk: %d, %d bytes", resp.StatusCode, len(body))
	}
	e.proxy.buffered.Add(-100 << 10)
	if n := e.proxy.Buffered(); n != 0 {
		t.Fatalf("budget not returned: %d bytes still reserved", n)
	}
	// The handler removes its spool file after the last byte went out,
	// which the client may see first.
	testkit.Eventually(t, "the spool files removed", func() bool { return onDisk.Load() == 0 })
	if peak.Load() == 0 {
		t.Fatalf("disk accounting: peak %d, now %d", peak.Load(), onDisk.Load())
	}
	e.noTempFiles(t)
}

func decodePNG(t *testing.T, b []byte) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// fullDisk is a spool file that accepts limit bytes and then fails as a
// full disk does (ENOSPC); it wraps a real temp file so cleanup is real.
type fullDisk struct {
	*os.File
	limit int
}

func (f *fullDisk) Write(p []byte) (int, error) {
	if len(p) > f.limit {
		n, _ := f.File.Write(p[:f.limit])
		f.limit = 0
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	f.limit -= len(p)
	return f.File.Write(p)
}

// The disk fills up, or the spool directory vanishes (a tmp cleaner, a
// full /tmp), while an upload is being spooled: it is refused with 503 and
// a log line that says why, nothing is forwarded, nothing is left behind.
func TestSpoolDiskFaults(t *testing.T) {
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, e *env)
		log    string
	}{
		{"disk full", func(t *testing.T, e *env) {
			orig := createSpoolFile
			createSpoolFile = func(dir string) (spoolFile, error) {
				f, err := os.CreateTemp(dir, spoolPrefix+"*")
				if err != nil {
					return nil, err
				}
				return &fullDisk{File: f, limit: 300 << 10}, nil
			}
			t.Cleanup(func() { createSpoolFile = orig })
		}, "no space left on device"},
		{"spool directory gone", func(t *testing.T, e *env) {
			if err := os.Remove(e.tmp); err != nil {
				t.Fatal(err)
			}
		}, "no such file or directory"},
		{"spool directory not writable", func(t *testing.T, e *env) {
			// chmod does not stop root, so put a file where the
			// directory was: creating in it fails for every user.
			os.Remove(e.tmp)
			if err := os.WriteFile(e.tmp, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core, logs := observer.New(zap.InfoLevel)
			e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, func(c *Config) { c.Logger = zap.New(core) })
			tc.break_(t, e)
			body := make([]byte, 1<<20) // over the memory buffer: spills to disk
			resp, code := e.upload(t, "application/octet-stream", body)
			if resp.StatusCode != 503 || code != "M_UNKNOWN" {
				t.Fatalf("upload answered %d %s; want 503 M_UNKNOWN", resp.StatusCode, code)
			}
			if e.up.Uploads.Load() != 0 {
				t.Fatal("a truncated upload reached the homeserver")
			}
			got := logs.FilterMessageSnippet("cannot spool upload to disk").All()
			if len(got) != 1 || !strings.Contains(fmt.Sprint(got[0].ContextMap()["error"]), tc.log) {
				t.Fatalf("log lines %+v; want one saying %q", got, tc.log)
			}
			if fi, err := os.Stat(e.tmp); err == nil && fi.IsDir() {
				e.noTempFiles(t)
			}
			// Small uploads stay in memory and still work.
			if resp, _ := e.upload(t, "application/octet-stream", []byte("small")); resp.StatusCode != 200 {
				t.Fatalf("in-memory upload answered %d", resp.StatusCode)
			}
			if tc.name == "spool directory gone" {
				// The directory is made again: the next large upload works.
				if resp, _ := e.upload(t, "application/octet-stream", body); resp.StatusCode != 200 {
					t.Fatalf("after the spool directory was recreated: %d", resp.StatusCode)
				}
				e.noTempFiles(t)
			}
		})
	}
}

// The spool directory is private: 0700 and ours, files 0600; a directory of
// that name planted by another user, or a symlink, is refused; loose
// permissions on our own are tightened; crash leftovers are swept.
func TestPrivateSpoolDir(t *testing.T) {
	base := t.TempDir()
	dir, err := PrivateSpoolDir(base)
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("spool dir mode %v", fi.Mode().Perm())
	}
	f, err := createSpoolFile(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(f.Name())
	f.Close()
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("spool file mode %v", fi.Mode().Perm())
	}
	old := time.Now().Add(-2 * time.Hour)
	os.Chtimes(f.Name(), old, old)
	fresh, _ := createSpoolFile(dir)
	fresh.Close()
	os.Chmod(dir, 0o755)
	if _, err := PrivateSpoolDir(base); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("loose permissions kept: %v", fi.Mode().Perm())
	}
	if _, err := os.Stat(f.Name()); !os.IsNotExist(err) {
		t.Fatal("a stale spool file survived the sweep")
	}
	if _, err := os.Stat(fresh.Name()); err != nil {
		t.Fatal("a live spool file was swept")
	}

	// A symlink planted where the directory goes.
	other := t.TempDir()
	link := filepath.Join(other, filepath.Base(dir))
	os.Symlink(t.TempDir(), link)
	if _, err := PrivateSpoolDir(other); err == nil || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("symlink accepted: %v", err)
	}
	// A directory owned by someone else (only root can make one).
	if os.Getuid() != 0 {
		t.Log("not root: the foreign-owner case is not exercised")
		return
	}
	third := t.TempDir()
	planted := filepath.Join(third, filepath.Base(dir))
	os.Mkdir(planted, 0o777)
	os.Chown(planted, 65534, 65534)
	if _, err := PrivateSpoolDir(third); err == nil || !strings.Contains(err.Error(), "belongs to uid 65534") {
		t.Fatalf("foreign directory accepted: %v", err)
	}
}

// rawUpload opens a connection to the proxy and sends an upload's headers
// declaring length bytes, then body; the caller decides what happens next.
func rawUpload(t *testing.T, e *env, length int, body []byte) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.front.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /_matrix/media/v3/upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", length)
	conn.Write(body)
	return conn
}

func readStatus(t *testing.T, conn net.Conn, within time.Duration) int {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no answer within %s: %v", within, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// A slow-loris uploader: one that stops sending is cut off after the idle
// timeout (408, nothing forwarded, nothing left on disk); one that trickles
// is served, but the memory all stalled uploads hold stays within the
// shared budget (beyond it they spool to disk), and other uploads are not
// held up.
func TestSlowUploads(t *testing.T) {
	const budget = 200 << 10
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, func(c *Config) {
		c.UploadIdleTimeout = 300 * time.Millisecond
		c.MaxBufferedTotal = budget
		c.MemoryBuffer = 64 << 10
	})
	before := runtime.NumGoroutine()

	// Stalled: declares 50 KB, sends 10 KB, then nothing.
	conn := rawUpload(t, e, 50_000, make([]byte, 10_000))
	start := time.Now()
	if st := readStatus(t, conn, 3*time.Second); st != http.StatusRequestTimeout {
		t.Fatalf("stalled upload answered %d; want 408", st)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stalled upload cut after %s; want about 300ms", d)
	}

	// Twenty stalled uploads at once, each declaring 60 KB: at most the
	// budget is held in memory, the rest spool to disk.
	var conns []net.Conn
	for range 20 {
		conns = append(conns, rawUpload(t, e, 60_000, make([]byte, 30_000)))
	}
	testkit.Eventually(t, "stalled uploads spooled", func() bool {
		ents, _ := os.ReadDir(e.tmp)
		return len(ents) >= 20-budget/60_000
	})
	if b := e.proxy.Buffered(); b > budget {
		t.Fatalf("stalled uploads hold %d bytes in memory; budget %d", b, budget)
	}
	// Meanwhile a normal upload goes through at once.
	if resp, _ := e.upload(t, "image/png", encodePNG(testPhoto(31, 64, 64))); resp.StatusCode != 200 {
		t.Fatalf("upload beside stalled ones: %d", resp.StatusCode)
	}
	for _, c := range conns {
		if st := readStatus(t, c, 3*time.Second); st != http.StatusRequestTimeout {
			t.Fatalf("stalled upload answered %d", st)
		}
	}

	// Trickling: 20 bytes every 100 ms (under the idle timeout) for 1 s
	// is slow but alive: it is served, byte for byte.
	body := bytes.Repeat([]byte("0123456789abcdefghij"), 10)
	conn = rawUpload(t, e, len(body), nil)
	for i := 0; i < len(body); i += 20 {
		time.Sleep(100 * time.Millisecond)
		conn.Write(body[i : i+20])
	}
	if st := readStatus(t, conn, 3*time.Second); st != 200 {
		t.Fatalf("trickled upload answered %d", st)
	}
	if d := e.obs.last(); d.Digests.SHA256Hex() != sha256Hex(body) {
		t.Fatal("the trickled upload was not hashed whole")
	}
	if n := e.up.Uploads.Load(); n != 2 {
		t.Fatalf("%d uploads reached the homeserver; want the 2 complete ones", n)
	}
	testkit.Eventually(t, "budget returned", func() bool { return e.proxy.Buffered() == 0 })
	e.noTempFiles(t)
	for _, c := range conns {
		c.Close()
	}
	conn.Close()
	http.DefaultClient.CloseIdleConnections()
	testkit.Eventually(t, "goroutines back", func() bool { return runtime.NumGoroutine() <= before+2 })
}

// A Content-Length smaller than what the client sends: HTTP ends the body
// at the declared length, and what is forwarded is exactly what was
// hashed; the rest is the next "request" on the connection, which fails
// on its own.
func TestContentLengthSmallerThanBody(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, nil)
	body := bytes.Repeat([]byte("A"), 20_000)
	conn := rawUpload(t, e, 5_000, body)
	if st := readStatus(t, conn, 3*time.Second); st != 200 {
		t.Fatalf("answered %d", st)
	}
	stored, ok := e.up.Get(mustLastKey(t, e).ID)
	if !ok || len(stored.Data) != 5_000 || sha256Hex(stored.Data) != e.obs.last().Digests.SHA256Hex() {
		t.Fatalf("stored %d bytes (ok %v); want the 5000 declared and hashed", len(stored.Data), ok)
	}
}

func mustLastKey(t *testing.T, e *env) MediaKey {
	t.Helper()
	k := e.obs.last().MediaKey
	if k.IsZero() {
		t.Fatal("no media key learned")
	}
	return k
}

// Decoding and PDQ run in at most MaxConcurrentHashing slots: a body waits
// for one (and is not forwarded meanwhile), and a client that leaves while
// waiting frees its place without anything reaching the homeserver.
func TestHashingSlots(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, func(c *Config) { c.MaxConcurrentHashing = 1 })
	busy := func() { // both lanes, the small-image lane's included
		for range 2 {
			if !e.proxy.acquireHashSlot(context.Background(), false) {
				t.Fatal("no lane")
			}
		}
	}
	free := func() {
		for range 2 {
			e.proxy.releaseHashSlot(false)
		}
	}
	busy()
	img := encodePNG(testPhoto(41, 120, 90))
	done := make(chan int)
	go func() {
		resp, err := http.Post(e.front.URL+"/_matrix/media/v3/upload", "image/png", bytes.NewReader(img))
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	testkit.Eventually(t, "the upload waiting for a slot", func() bool { return e.proxy.HashWaiting() == 1 })
	if b, n := e.proxy.HashSlots(); b != 2 || n != 2 {
		t.Fatalf("HashSlots %d of %d; want both busy", b, n)
	}
	if e.up.Uploads.Load() != 0 {
		t.Fatal("forwarded before it was hashed")
	}
	// An encrypted attachment is no image: its header says so, and it
	// does not queue behind the decoding.
	if resp, _ := e.upload(t, "application/octet-stream", bytes.Repeat([]byte{0x5e, 0xa1}, 4000)); resp.StatusCode != 200 || e.obs.last().Outcome != Unscannable {
		t.Fatalf("encrypted upload beside a busy slot: %d %s", resp.StatusCode, e.obs.last().Outcome)
	}
	free()
	if st := <-done; st != 200 || e.obs.last().PDQ == nil {
		t.Fatalf("after the slot freed: %d, PDQ %v", st, e.obs.last().PDQ)
	}

	busy()
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		req, _ := http.NewRequestWithContext(ctx, "POST", e.front.URL+"/_matrix/media/v3/upload", bytes.NewReader(img))
		req.Header.Set("Content-Type", "image/png")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
		close(done)
	}()
	testkit.Eventually(t, "the second upload waiting", func() bool { return e.proxy.HashWaiting() == 1 })
	cancel()
	<-done
	testkit.Eventually(t, "the waiter gone", func() bool { return e.proxy.HashWaiting() == 0 })
	free()
	if n := e.up.Uploads.Load(); n != 2 {
		t.Fatalf("%d uploads reached the homeserver; want the encrypted one and the first image", n)
	}
	e.noTempFiles(t)
}

// Huge images can hold every general hashing slot, never the one kept for
// ordinary pictures: a photo is judged while bombs wait their turn.
func TestSmallImagesOvertakeBombs(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, func(c *Config) { c.MaxConcurrentHashing = 1 })
	// A bomb is hashing: it holds the one big slot and a general slot.
	if !e.proxy.acquireHashSlot(context.Background(), true) {
		t.Fatal("no slot")
	}
	// Another big image waits for the big slot...
	bigDone := make(chan struct{})
	go func() {
		defer close(bigDone)
		if e.proxy.acquireHashSlot(context.Background(), true) {
			e.proxy.releaseHashSlot(true)
		}
	}()
	testkit.Eventually(t, "the second bomb waiting", func() bool { return e.proxy.HashWaiting() == 1 })
	// ...while a photo is judged at once.
	if resp, _ := e.upload(t, "image/png", encodePNG(testPhoto(42, 320, 240))); resp.StatusCode != 200 || e.obs.last().PDQ == nil {
		t.Fatalf("photo beside bombs: %d", resp.StatusCode)
	}
	e.proxy.releaseHashSlot(true)
	<-bigDone
}

// A body spooled to disk that then outgrows max_download_buffer is streamed
// from the file onwards: the client gets every byte, in order.
func TestSpooledDownloadOutgrowsLimit(t *testing.T) {
	e := newEnv(t, []string{"md5 " + strings.Repeat("0", 31) + "1"}, func(c *Config) {
		c.MaxBufferedTotal, c.MaxDownloadBuffer = 64<<10, 256<<10
	})
	body := make([]byte, 700<<10)
	for i := range body {
		body[i] = byte(i * 31 >> 7)
	}
	// Chunked, so the length is unknown until the end.
	e.up.Put("grow", body, "video/mp4")
	e.proxy.reserve(64 << 10)
	resp, got := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/grow", "", nil)
	e.proxy.buffered.Add(-64 << 10)
	if resp.StatusCode != 200 || !bytes.Equal(got, body) || e.obs.last().Outcome != Clean {
		t.Fatalf("%d, %d of %d bytes, equal %v, outcome %s", resp.StatusCode, len(got), len(body), bytes.Equal(got, body), e.obs.last().Outcome)
	}
	e.noTempFiles(t)
}

// With the memory budget spent and the disk refusing a spool file, an
// unknown download that must be judged whole is refused with 503 before a
// byte goes out: streaming it with exact hashes only would serve a padded
// listed picture. Nothing is remembered, so it is judged once disk is back.
func TestDownloadSpillFails(t *testing.T) {
	listed := bytes.Repeat([]byte("listed "), 30000)
	e := newEnv(t, []string{"sha256 " + sha256Hex(listed)}, func(c *Config) { c.MaxBufferedTotal = 64 << 10 })
	orig := createSpoolFile
	createSpoolFile = func(string) (spoolFile, error) { return nil, syscall.ENOSPC }
	clean := bytes.Repeat([]byte("clean "), 30000)
	e.up.Put("clean", clean, "video/mp4")
	e.up.Put("listed", listed, "video/mp4")
	e.proxy.reserve(64 << 10)
	defer e.proxy.buffered.Add(-64 << 10)
	for _, id := range []string{"clean", "listed"} {
		resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/"+id, "", nil)
		if resp.StatusCode != 503 || bytes.Contains(body, []byte(id+" "+id)) {
			t.Fatalf("%s without disk: %d, %d bytes", id, resp.StatusCode, len(body))
		}
	}
	createSpoolFile = orig
	if resp, body := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/clean", "", nil); resp.StatusCode != 200 || !bytes.Equal(body, clean) {
		t.Fatalf("clean with disk back: %d, %d of %d bytes", resp.StatusCode, len(body), len(clean))
	}
	if resp, _ := e.do(t, "GET", "/_matrix/media/v3/download/hs.example/listed", "", nil); resp.StatusCode != 404 {
		t.Fatalf("listed with disk back: %d", resp.StatusCode)
	}
}
