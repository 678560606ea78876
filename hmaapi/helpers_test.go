package hmaapi

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/sched"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// testRunner is the hashing Runner of every test proxy: its threads and
// worker processes last as long as the test binary, as a server keeps one
// across reloads.
var testRunner = sched.NewRunner(nil)

// The banked picture: a photo whose PDQ (computed by the proxy's own
// hashing) is in both test banks, like the transcript's content 1 and 3.
var (
	bankedPic     = testimg.Photo(17, 320, 240)
	bankedPNG     = testimg.PNG(bankedPic)
	cleanPNG      = testimg.PNG(testimg.Photo(18, 320, 240))
	bankedVideo   = append([]byte("\x00\x00\x00\x18ftypmp42"), bytes.Repeat([]byte("video frame "), 500)...)
	bankedFileMD5 = md5hex([]byte("a listed file"))
	bankedSHA1    = sha1hex([]byte("a listed file"))
	bankedSHA256  = sha256hex([]byte("a listed file"))
)

func md5hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }
func sha1hex(b []byte) string   { s := sha1.Sum(b); return hex.EncodeToString(s[:]) }
func sha256hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// flip returns h with its first n bits inverted: a hash at distance n.
func flip(h pdq.Hash, n int) pdq.Hash {
	for k := range n {
		h[k/64] ^= 1 << (k % 64)
	}
	return h
}

// env is a handler over real banks, a real Guard and a real proxy's
// hashing.
type env struct {
	h      *Handler
	local  *matcher.Local
	guard  *matcher.Guard
	proxy  *mediaproxy.Proxy
	spool  string
	pdq    pdq.Hash // the banked picture's stored-form PDQ
	remote *fakeRemote
}

type envOpt struct {
	cfg    Config
	remote *fakeRemote
	policy matcher.FailPolicy
	// disabled adds a disabled bank.
	disabled bool
	// report names the banks in report mode.
	report []string
}

// newEnv builds TEST_BANK (the picture's PDQ, the video's MD5, a file's
// MD5, SHA-1 and SHA-256) and OTHER_BANK (the picture's PDQ again).
func newEnv(t testing.TB, o envOpt) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{remote: o.remote}
	// The PDQ the bank holds is the proxy's own hash of the picture, as
	// `mediaguard hash` prints it.
	probe := newProxy(t, dir, nil)
	e.pdq = scanPDQ(t, probe, bankedPNG)
	write := func(name string, lines ...string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	banks := []matcher.BankConfig{
		{Name: "TEST_BANK", Path: write("test.bank", "pdq "+e.pdq.String()+" picture", "video_md5 "+md5hex(bankedVideo),
			"md5 "+bankedFileMD5, "sha1 "+bankedSHA1, "sha256 "+bankedSHA256)},
		{Name: "OTHER_BANK", Path: write("other.bank", "pdq "+e.pdq.String())},
	}
	if o.disabled {
		banks = append(banks, matcher.BankConfig{Name: "OFF_BANK", Path: write("off.bank", "md5 "+bankedFileMD5), Disabled: true})
	}
	for i := range banks {
		for _, r := range o.report {
			if banks[i].Name == r {
				banks[i].Mode = matcher.ModeReport
			}
		}
	}
	var err error
	e.local, err = matcher.NewLocal(matcher.LocalConfig{Banks: banks, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.local.Close() })
	gc := matcher.GuardConfig{Local: e.local, FailPolicy: o.policy, Breaker: matcher.BreakerConfig{ConsecutiveFailures: 1000}}
	if o.remote != nil {
		gc.Remotes = []matcher.Remote{{Name: "hma:remote", Matcher: o.remote}}
	}
	e.guard, err = matcher.NewGuard(gc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.guard.Close() })
	e.proxy = newProxy(t, dir, e.guard)
	e.spool = e.proxy.SpoolDir()
	cfg := o.cfg
	cfg.Matcher, cfg.Proxy, cfg.Remote = e.guard, e.proxy, e.guard
	if cfg.Local == nil {
		cfg.Local = e.local
	}
	e.h, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// newProxy is a proxy as the service builds one: 8 MB uploads, 64 KiB in
// memory per body, its spool under dir.
func newProxy(t testing.TB, dir string, m matcher.Matcher) *mediaproxy.Proxy {
	t.Helper()
	if m == nil {
		m = nothing{}
	}
	p, err := mediaproxy.New(mediaproxy.Config{Matcher: m, TempDir: dir, MemoryBuffer: 64 << 10, MaxUploadSize: 8 << 20, Runner: testRunner})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type nothing struct{}

func (nothing) Match(context.Context, matcher.Query) (matcher.Verdict, error) {
	return matcher.Verdict{}, nil
}

// scanPDQ is the stored-form PDQ the proxy computes for b.
func scanPDQ(t testing.TB, p *mediaproxy.Proxy, b []byte) pdq.Hash {
	t.Helper()
	sb, err := p.SpoolBody(bytes.NewReader(b), 0, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	fs, err := sb.Scan(context.Background(), "")
	if err != nil || fs.Query.Has&matcher.HasPDQ == 0 {
		t.Fatalf("no PDQ: %v %+v", err, fs)
	}
	return fs.Query.PDQ
}

// part is one multipart part: a file when filename is not nil.
type part struct {
	field    string
	filename *string
	ctype    string
	body     []byte
}

func str(s string) *string { return &s }

// fileField is a file part as policyserv writes it
// (multipart.Writer.CreateFormFile(field, "x")).
func fileField(field string, body []byte) part {
	return part{field: field, filename: str("x"), ctype: "application/octet-stream", body: body}
}

// form encodes parts as multipart/form-data and returns the body and its
// Content-Type.
func form(t testing.TB, parts ...part) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	for _, p := range parts {
		hd := textproto.MIMEHeader{}
		cd := fmt.Sprintf(`form-data; name=%q`, p.field)
		if p.filename != nil {
			cd += fmt.Sprintf(`; filename=%q`, *p.filename)
		}
		hd.Set("Content-Disposition", cd)
		if p.ctype != "" {
			hd.Set("Content-Type", p.ctype)
		}
		pw, err := w.CreatePart(hd)
		if err != nil {
			t.Fatal(err)
		}
		pw.Write(p.body)
	}
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

// do serves one request through h and returns the recorder.
func do(h http.Handler, method, target string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, r)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// fakeRemote is a remote backend whose answer a test sets: a fake named
// as such (a real HMA cannot run here); matcher.Guard puts it behind its
// cache, breaker and fail policy as it does HMA.
type fakeRemote struct {
	mu    sync.Mutex
	v     matcher.Verdict
	err   error
	calls int
}

func (f *fakeRemote) set(v matcher.Verdict, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.v, f.err = v, err
}

func (f *fakeRemote) Match(ctx context.Context, q matcher.Query) (matcher.Verdict, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.v, f.err
}

// spoolLeft lists what is left in the spool directory.
func spoolLeft(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// parsePDQ parses an answered hash.
func parsePDQ(s string) (pdq.Hash, error) { return pdq.ParseHex(s) }
