package caddymodule

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/matcher"
)

// adaptApp adapts a Caddyfile and returns its mediaguard app as the JSON
// decodes it.
func adaptApp(t *testing.T, src string) (App, error) {
	t.Helper()
	raw, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src), nil)
	if err != nil {
		return App{}, err
	}
	var cfg struct {
		Apps struct {
			Mediaguard json.RawMessage `json:"mediaguard"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	var a App
	if err := a.UnmarshalJSON(cfg.Apps.Mediaguard); err != nil {
		t.Fatalf("the adapted JSON does not decode: %v\n%s", err, cfg.Apps.Mediaguard)
	}
	return a, nil
}

// The arachnid block maps onto the app's JSON and from there onto the
// matcher's config; mistakes name the option.
func TestArachnidCaddyfile(t *testing.T) {
	t.Setenv("MG_TEST_ARACHNID_PASSWORD", "pw")
	a, err := adaptApp(t, `{
	mediaguard {
		arachnid {
			username mg-user
			password {env.MG_TEST_ARACHNID_PASSWORD}
			base_url https://shield.example/
			timeout 3s
			batch_window 4ms
		}
	}
}
:8080 {
	mediaguard
	reverse_proxy 127.0.0.1:8008
}`)
	if err != nil {
		t.Fatal(err)
	}
	want := ArachnidBackend{Username: "mg-user", Password: "{env.MG_TEST_ARACHNID_PASSWORD}", BaseURL: "https://shield.example/", Timeout: caddy.Duration(3 * time.Second), BatchWindow: caddy.Duration(4 * time.Millisecond)}
	if a.Arachnid == nil || *a.Arachnid != want {
		t.Fatalf("arachnid %+v; want %+v", a.Arachnid, want)
	}
	sc, err := a.plainConfig(caddy.NewReplacer())
	if err != nil {
		t.Fatal(err)
	}
	if ac := sc.Arachnid; ac == nil || ac.Username != "mg-user" || ac.Password != "pw" || ac.URL != "https://shield.example/" || ac.Timeout != 3*time.Second || ac.BatchWindow != 4*time.Millisecond {
		t.Fatalf("matcher config %+v", sc.Arachnid)
	}
	// batch_window off and the default base URL.
	a, err = adaptApp(t, "{\n mediaguard {\n arachnid {\n username u\n password p\n batch_window off\n }\n }\n}\n")
	if err != nil || a.Arachnid.BatchWindow >= 0 || a.Arachnid.BaseURL != "" {
		t.Fatalf("batch_window off: %+v, %v", a.Arachnid, err)
	}

	for _, tc := range []struct{ block, want string }{
		{"arachnid {\n username u\n }", "username and password are required"},
		{"arachnid {\n password p\n }", "username and password are required"},
		{"arachnid {\n username u\n password p\n colour blue\n }", `unknown option "colour"`},
		{"arachnid {\n username u\n password p\n batch_window 1h\n }", "batch_window"},
		{"arachnid {\n username u\n password p\n timeout soon\n }", "timeout"},
		{"arachnid {\n username u\n password p\n username v w\n }", "extra argument"},
		{"arachnid https://shield.example {\n username u\n password p\n }", "not an argument"},
		{"arachnid {\n username u\n password p\n }\n arachnid {\n username u\n password p\n }", "only once"},
	} {
		_, err := adaptApp(t, "{\n mediaguard {\n "+tc.block+"\n }\n}\n")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v; want it to mention %q", tc.block, err, tc.want)
		}
	}
}

// An Arachnid username or password that resolves empty stops the start
// with an error naming it, as every secret does.
func TestArachnidEmptySecretStopsStart(t *testing.T) {
	const unset = "MEDIAGUARD_TEST_SURELY_UNSET"
	os.Unsetenv(unset)
	for _, tc := range []struct{ block, want string }{
		{"username u\n password {env." + unset + "}", "arachnid password {env." + unset + "} resolves to an empty value"},
		{"username {env." + unset + "}\n password p", "arachnid username {env." + unset + "} resolves to an empty value"},
	} {
		src := fmt.Sprintf("{\n admin off\n mediaguard {\n arachnid {\n %s\n }\n }\n}\nhttp://127.0.0.1:0 {\n bind 127.0.0.1\n mediaguard\n respond 204\n}\n", tc.block)
		raw, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
		if err != nil {
			t.Fatalf("adapt: %v\n%s", err, src)
		}
		var c caddy.Config
		if err := json.Unmarshal(raw, &c); err != nil {
			t.Fatal(err)
		}
		if err := caddy.Validate(&c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("want an error containing %q, got %v", tc.want, err)
		}
	}
}

// TestArachnidBlocksUpload: a picture Arachnid Shield (the fake) reports
// as CSAM is refused on upload through a real Caddy, recorded under bank
// ARACHNID_CSAM; a clean one is forwarded; and all the service was ever
// sent are PDQ hashes of the pictures, never their bytes or exact digests.
func TestArachnidBlocksUpload(t *testing.T) {
	listed := testimg.JPEG(testimg.Photo(61, 320, 240), 90)
	clean := testimg.JPEG(testimg.Photo(62, 320, 240), 90)
	rep, cleanRep := reportOf(t, listed), reportOf(t, clean)
	shield := fakes.NewArachnid(t, "mg-user", "arachnid-pw", fakes.ArachnidItem{PDQ: rep.PDQ, Classification: "csam", SHA256Hex: strings.Repeat("ab", 32)})
	hs := fakes.NewSynapse(t)
	t.Setenv("MG_TEST_ARACHNID_PASSWORD", "arachnid-pw")
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	port := testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		arachnid {
			username mg-user
			password {env.MG_TEST_ARACHNID_PASSWORD}
			base_url %s
		}
		on_matcher_error closed
		audit_log %s
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard
	reverse_proxy %s
}
`, shield.URL, auditPath, port, strings.TrimPrefix(hs.URL, "http://")), "caddyfile")

	upload := func(body []byte) int {
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/upload?filename=x.jpg", port), bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer user-token")
		req.Header.Set("Content-Type", "image/jpeg")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := upload(listed); got != 403 {
		t.Fatalf("listed upload: %d; want 403", got)
	}
	if got := upload(clean); got != 200 {
		t.Fatalf("clean upload: %d; want 200", got)
	}
	if n := hs.Uploads.Load(); n != 1 {
		t.Fatalf("%d uploads reached the homeserver; want only the clean one", n)
	}

	var rec *audit.Record
	audit.Read(auditPath, time.Time{}, func(r audit.Record) error {
		if r.Kind == audit.KindBlock {
			rec = &r
		}
		return nil
	})
	if rec == nil || !strings.Contains(string(rec.Verdict), `"bank":"`+matcher.ArachnidBankCSAM+`"`) || !strings.Contains(string(rec.Verdict), `"source":"arachnid:`+strings.TrimPrefix(shield.URL, "http://")+`"`) {
		t.Fatalf("audit record %+v", rec)
	}

	// What left: one PDQ lookup per upload, the stored picture's hash
	// first (then its forms and pdq_search variants), and none of the
	// pictures' digests or bytes.
	var sentAll bytes.Buffer
	for _, r := range shield.Requests() {
		if r.Method != "POST" || r.Path != "/v1/pdq/" {
			t.Fatalf("request %s %s: only POST /v1/pdq/ may be called", r.Method, r.Path)
		}
		sentAll.Write(r.Body)
		r.Header.Write(&sentAll)
	}
	sent := shield.SentHashes()
	if len(sent) != 2 {
		t.Fatalf("%d lookups; want one per upload", len(sent))
	}
	for i, want := range []string{rep.PDQ, cleanRep.PDQ} {
		b, _ := hex.DecodeString(want)
		if len(sent[i]) == 0 || sent[i][0] != base64.StdEncoding.EncodeToString(b) {
			t.Fatalf("lookup %d sent %v; want the stored picture's PDQ first", i, sent[i])
		}
	}
	for _, r := range []struct{ name, hexDigest string }{{"md5", rep.MD5}, {"sha1", rep.SHA1}, {"sha256", rep.SHA256}, {"md5", cleanRep.MD5}, {"sha1", cleanRep.SHA1}, {"sha256", cleanRep.SHA256}} {
		b, _ := hex.DecodeString(r.hexDigest)
		for _, form := range []string{r.hexDigest, strings.ToUpper(r.hexDigest), base64.StdEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b)} {
			if bytes.Contains(sentAll.Bytes(), []byte(form)) {
				t.Fatalf("the %s digest left for Arachnid Shield", r.name)
			}
		}
	}
	if bytes.Contains(sentAll.Bytes(), listed[100:164]) || bytes.Contains(sentAll.Bytes(), clean[100:164]) {
		t.Fatal("media bytes left for Arachnid Shield")
	}
}
