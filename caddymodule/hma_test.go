package caddymodule

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// policyserv replays the Matrix.org policy server's HMA client call for
// call (content/hma.go in https://github.com/matrix-org/policyserv,
// HMAScanner: hash, match, lookup), which cannot be a test dependency
// (it is not on the Go module proxy):
//
//  1. POST {base}/h/hash, "Authorization: Bearer {key}", a
//     multipart/form-data body with one file field named photo or video
//     and filename "x"; any status but 200 is an error; the body decodes
//     as a JSON object of signal type → hash.
//  2. For every key of it, concurrently, GET
//     {base}/m/lookup?signal_type={type}&signal={hash} (query-escaped)
//     with the same header; the body decodes into a JSON object whatever
//     the status, and every top-level key is a matched bank. Any error
//     fails the whole scan.
//  3. A matched bank among the enabled ones makes the media prohibited;
//     an error makes the media filter count it as prohibited too (its
//     filter/filter_media_scanning.go since commit 9406500 on main; the
//     v1.7.0 release still counts an error as clean and caches that).
type policyserv struct {
	base, key string
	enabled   []string
}

// scan returns whether policyserv would prohibit the media, and the banks
// the lookups named (nil on error).
func (p policyserv) scan(field string, content []byte) (prohibited bool, banks []string, err error) {
	banks, err = p.matchedBanks(field, content)
	if err != nil {
		return true, nil, err // the media filter fails closed
	}
	for _, b := range banks {
		for _, e := range p.enabled {
			if b == e {
				return true, banks, nil
			}
		}
	}
	return false, banks, nil
}

func (p policyserv) matchedBanks(field string, content []byte) ([]string, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile(field, "x")
	if err != nil {
		return nil, err
	}
	fw.Write(content)
	mw.Close()
	u, _ := url.JoinPath(p.base, "/h/hash")
	req, _ := http.NewRequest(http.MethodPost, u, &buf)
	req.Header.Set("Authorization", "Bearer "+p.key)
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("unexpected status code for hashing %d", resp.StatusCode)
	}
	hashes := map[string]string{}
	if err := json.NewDecoder(resp.Body).Decode(&hashes); err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		banks []string
		errs  []error
	)
	for typ, signal := range hashes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, err := p.lookup(typ, signal)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			banks = append(banks, b...)
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return banks, nil
}

func (p policyserv) lookup(typ, signal string) ([]string, error) {
	u, _ := url.JoinPath(p.base, "/m/lookup")
	req, _ := http.NewRequest(http.MethodGet, u+fmt.Sprintf("?signal_type=%s&signal=%s", url.QueryEscape(typ), url.QueryEscape(signal)), nil)
	req.Header.Set("Authorization", "Bearer "+p.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// No status check: policyserv decodes whatever comes.
	answer := map[string]any{}
	if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil {
		return nil, err
	}
	var banks []string
	for b := range answer {
		banks = append(banks, b)
	}
	return banks, nil
}

// TestPolicyservThroughCaddy runs policyserv's exact call sequence against
// a real Caddy serving mediaguard_hma: a listed picture (its exact bytes,
// and a resized, re-encoded copy) is a hit, a clean one is not, a listed
// video is a hit through video_md5, a picture only a remote HMA lists
// (the shared fake, internal/fakes.HMA) is a hit in its bank, and with
// that HMA down under on_matcher_error closed the clean picture is
// prohibited (policyserv's scan fails). A wrong key fails the scan.
func TestPolicyservThroughCaddy(t *testing.T) {
	const key = "policyserv-key-7f3a"
	t.Setenv("MEDIAGUARD_TEST_HMA_KEY", key)
	dir := t.TempDir()
	listed := testimg.Photo(71, 480, 360)
	listedPNG := testimg.PNG(listed)
	ref, _, err := pdq.HashBytes(listedPNG, pdq.DecodeOptions{}, pdq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	video := append([]byte("\x00\x00\x00\x18ftypisom"), bytes.Repeat([]byte("frames"), 4000)...)
	videoMD5 := md5.Sum(video)
	remoteOnly := testimg.Photo(72, 400, 300)
	remoteRef, _, _ := pdq.HashBytes(testimg.PNG(remoteOnly), pdq.DecodeOptions{}, pdq.Options{})
	listedFile := []byte("%PDF-1.4\n% a listed document\n%%EOF\n")
	listedFileSHA := sha256.Sum256(listedFile)
	bank := filepath.Join(dir, "csam.bank")
	os.WriteFile(bank, []byte("pdq "+ref.Hash.String()+" listed picture\nvideo_md5 "+hex.EncodeToString(videoMD5[:])+
		"\nsha256 "+hex.EncodeToString(listedFileSHA[:])+"\n"), 0o600)
	hma := fakes.NewHMA(t, fakes.HMAContent{Bank: "NCMEC", ID: 4242, SignalType: "pdq", Signal: remoteRef.Hash.String()},
		fakes.HMAContent{Bank: "NCMEC", ID: 4243, SignalType: "pdq", Signal: strings.Repeat("0f", 32)})
	spool := filepath.Join(dir, "spool")
	os.Mkdir(spool, 0o700)
	port := testkit.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	metrics
	mediaguard {
		bank CSAM %s
		hma %s {
			banks NCMEC
		}
		on_matcher_error closed
		temp_dir %s
		memory_buffer 64KB
		breaker {
			open_timeout 300ms
			call_timeout 500ms
		}
	}
}
%s {
	bind 127.0.0.1
	mediaguard_hma {
		api_key {env.MEDIAGUARD_TEST_HMA_KEY}
	}
}
`, bank, hma.URL, spool, base), "caddyfile")

	ps := policyserv{base: base, key: key, enabled: []string{"CSAM", "NCMEC"}}
	// The exact bytes hash bit for bit to the reference PDQ the bank holds.
	banks, err := ps.matchedBanks("photo", listedPNG)
	if err != nil || fmt.Sprint(banks) != "[CSAM]" {
		t.Fatalf("exact bytes: %v %v", banks, err)
	}
	if resp, body := hmaGet(t, base+"/readyz", nil); resp.StatusCode != 200 || string(body) != "READY" {
		t.Errorf("/readyz without a key: %d %q", resp.StatusCode, body)
	}
	if resp, _ := hmaGet(t, base+"/c/banks", nil); resp.StatusCode != 401 {
		t.Errorf("/c/banks without a key: %d", resp.StatusCode)
	}
	if resp, body := hmaGet(t, base+"/c/banks", http.Header{"Authorization": {"Bearer " + key}}); resp.StatusCode != 200 ||
		string(body) != `[{"matching_enabled_ratio":1.0,"name":"CSAM"},{"matching_enabled_ratio":1.0,"name":"NCMEC"}]`+"\n" {
		t.Errorf("/c/banks: %d %s", resp.StatusCode, body)
	}
	hashOf := func(b []byte) string {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("photo", "x")
		fw.Write(b)
		mw.Close()
		req, _ := http.NewRequest(http.MethodPost, base+"/h/hash", &buf)
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]string
		json.NewDecoder(resp.Body).Decode(&m)
		return m["pdq"]
	}
	if got := hashOf(listedPNG); got != ref.Hash.String() {
		t.Errorf("/h/hash %s, reference PDQ %s", got, ref.Hash)
	}

	for _, tc := range []struct {
		name       string
		field      string
		content    []byte
		prohibited bool
		banks      string
	}{
		{"listed picture, exact bytes", "photo", listedPNG, true, "[CSAM]"},
		{"listed picture, resized and re-encoded", "photo", testimg.JPEG(testimg.Resize(listed, 320, 240), 75), true, "[CSAM]"},
		{"listed picture, re-encoded at low quality", "photo", testimg.JPEG(listed, 40), true, "[CSAM]"},
		{"clean picture", "photo", testimg.JPEG(testimg.Photo(73, 480, 360), 85), false, "[]"},
		// Matched by its video_md5 and by the file's md5, which /h/hash
		// always answers too: policyserv names the bank once per signal.
		{"listed video", "video", video, true, "[CSAM CSAM]"},
		{"clean video", "video", append(bytes.Clone(video), 'x'), false, "[]"},
		{"picture only the remote HMA lists", "photo", testimg.JPEG(remoteOnly, 90), true, "[NCMEC]"},
		// policyserv sends a PDF as a photo: judged by its exact digests,
		// never an error it would count as prohibited.
		{"listed document sent as a photo", "photo", listedFile, true, "[CSAM]"},
		{"clean document sent as a photo", "photo", []byte("%PDF-1.4\n% minutes of the meeting\n%%EOF\n"), false, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prohibited, banks, err := ps.scan(tc.field, tc.content)
			if err != nil || prohibited != tc.prohibited || fmt.Sprint(nonNil(banks)) != tc.banks {
				t.Errorf("prohibited %v, banks %v, err %v; want %v %s", prohibited, banks, err, tc.prohibited, tc.banks)
			}
		})
	}

	// A policyserv that enables only the remote bank still sees its match.
	if p, _, _ := (policyserv{base: base, key: key, enabled: []string{"NCMEC"}}).scan("photo", testimg.JPEG(remoteOnly, 90)); !p {
		t.Error("NCMEC-only policyserv missed the remote match")
	}
	if p, _, err := (policyserv{base: base, key: "wrong", enabled: []string{"CSAM"}}).scan("photo", listedPNG); !p || err == nil {
		t.Errorf("wrong key: prohibited %v, err %v (want the scan to fail)", p, err)
	}

	// The remote HMA goes down; fail-closed: no lookup gives a verdict,
	// so policyserv's scan fails and the media counts as prohibited.
	up := hma.Down(t)
	clean := testimg.JPEG(testimg.Photo(74, 480, 360), 85)
	if p, banks, err := ps.scan("photo", clean); !p || err == nil {
		t.Errorf("HMA down, fail closed: prohibited %v, banks %v, err %v", p, banks, err)
	}
	// A local match is still answered.
	if p, banks, err := ps.scan("photo", listedPNG); !p || err != nil || fmt.Sprint(banks) != "[CSAM]" {
		t.Errorf("HMA down, listed picture: %v %v %v", p, banks, err)
	}
	up()

	m := scrapeMetrics(t, "http://localhost:2999/metrics")
	for series, least := range map[string]float64{
		`caddy_mediaguard_hma_requests_total{outcome="match",route="lookup"}`:        6,
		`caddy_mediaguard_hma_requests_total{outcome="no_match",route="lookup"}`:     5,
		`caddy_mediaguard_hma_requests_total{outcome="ok",route="hash"}`:             10,
		`caddy_mediaguard_hma_requests_total{outcome="unauthorized",route="hash"}`:   1,
		`caddy_mediaguard_hma_requests_total{outcome="unavailable",route="lookup"}`:  1,
		`caddy_mediaguard_hma_duration_seconds_count{route="hash"}`:                  10,
		`caddy_mediaguard_hma_requests_total{outcome="rate_limited",route="lookup"}`: 0,
	} {
		if v, ok := m[series]; !ok || v < least {
			t.Errorf("%s = %v (present %v), want at least %v", series, v, ok, least)
		}
	}
	ents, _ := os.ReadDir(spool)
	for _, e := range ents {
		if sub, _ := os.ReadDir(filepath.Join(spool, e.Name())); len(sub) != 0 {
			t.Errorf("spool files left in %s: %d", e.Name(), len(sub))
		}
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// hmaGet GETs u with hdr.
func hmaGet(t *testing.T, u string, hdr http.Header) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, u, nil)
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// TestHMACaddyfile: mediaguard_hma's options, each error naming its
// directive, and an api_key placeholder that resolves empty stopping the
// start with an error naming it (an unset variable must not quietly open
// the surface to everyone).
func TestHMACaddyfile(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"mediaguard_hma extra", "wrong argument count"},
		{"mediaguard_hma {\n nope\n }", `mediaguard_hma: unknown option "nope"`},
		{"mediaguard_hma {\n max_body_size lots\n }", "max_body_size"},
		{"mediaguard_hma {\n rate_limit -1\n }", "rate_limit"},
		{"mediaguard_hma {\n rate_limit 5 0\n }", "rate_burst"},
		{"mediaguard_hma {\n rate_burst x\n }", "rate_burst"},
		{"mediaguard_hma {\n api_key\n }", "wrong argument count"},
	} {
		src := ":5100 {\n" + tc.in + "\n}\n"
		_, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
	const unset = "MEDIAGUARD_TEST_SURELY_UNSET_HMA"
	os.Unsetenv(unset)
	bank := filepath.Join(t.TempDir(), "b.bank")
	os.WriteFile(bank, []byte("md5 "+strings.Repeat("0", 32)+"\n"), 0o600)
	src := fmt.Sprintf("{\n admin off\n mediaguard {\n bank T %s\n }\n}\nhttp://127.0.0.1:0 {\n bind 127.0.0.1\n mediaguard_hma {\n api_key {env.%s}\n }\n}\n", bank, unset)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	var c caddy.Config
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Validate(&c); err == nil || !strings.Contains(err.Error(), "mediaguard_hma: api_key") || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty api_key: %v", err)
	}
}

// TestHMAReadmeExample: the README's mediaguard_hma Caddyfile adapts, and
// its site listens on loopback only.
func TestHMAReadmeExample(t *testing.T) {
	raw, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(raw), "### Standing in for HMA: `mediaguard_hma`")
	if !ok {
		t.Fatal("README has no mediaguard_hma section")
	}
	_, rest, _ = strings.Cut(rest, "```caddyfile\n")
	src, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("no Caddyfile in the mediaguard_hma section")
	}
	out, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src), nil)
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, src)
	}
	if !bytes.Contains(out, []byte(`"handler":"mediaguard_hma"`)) || !bytes.Contains(out, []byte(`"listen":["127.0.0.1:5100"]`)) {
		t.Errorf("adapted config does not serve mediaguard_hma on 127.0.0.1:5100 only: %s", out)
	}
}
