package caddymodule

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// redactLog is the logging filter Caddyfile.example ships: query-string
// credentials are deleted from every logged request URI.
const redactLog = `format filter {
			wrap json
			request>uri query {
				delete access_token
				delete api_key
			}
		}`

// TestNoSecretsInLogs runs a real Caddy configured as Caddyfile.example is
// (access logs on, the redaction filter, debug level) through uploads,
// downloads, blocks, pass-through, an unreachable homeserver and the lookup
// API with right and wrong keys, every credential sent in the URL and in
// headers. Then it greps everything an operator or attacker could see:
// Caddy's logs, the access log, the metrics, and every response body. None
// may hold an access token, an API key, media bytes, or any bank hash
// beyond the ones that matched.
func TestNoSecretsInLogs(t *testing.T) {
	const (
		token1  = "syt_YWxpY2U_querytokenAAAA_0xyz"
		token2  = "syt_Ym9i_headertokenBBBB_1abc"
		apiKey  = "lookup-key-CCCC-2def"
		wrong   = "wrong-key-DDDD-3ghi"
		marker  = "MEDIABYTES-EEEE-4jkl"
		listedN = 1000 // the repo serves zeros; this size is banked
	)
	repo := newFaultyRepo(t)
	dir := t.TempDir()
	// A bank of 200 hashes: the two that will match, and 198 that must
	// never be seen anywhere.
	listedUpload := append([]byte(marker), testimg.PNG(testimg.Photo(77, 64, 64))...)
	matched := []string{sha256Hex(make([]byte, listedN)), sha256Hex(listedUpload)}
	var bank strings.Builder
	var unseen []string
	rng := rand.New(rand.NewPCG(1, 2))
	for _, h := range matched {
		fmt.Fprintf(&bank, "sha256 %s\n", h)
	}
	for range 198 {
		var b [32]byte
		for i := range b {
			b[i] = byte(rng.UintN(256))
		}
		h := hex.EncodeToString(b[:])
		unseen = append(unseen, h)
		fmt.Fprintf(&bank, "sha256 %s\n", h)
	}
	bankPath := filepath.Join(dir, "secret.bank")
	os.WriteFile(bankPath, []byte(bank.String()), 0o600)
	logPath, accessPath := filepath.Join(dir, "caddy.log"), filepath.Join(dir, "access.log")
	port, downPort, lookupPort := testkit.FreePort(t), testkit.FreePort(t), testkit.FreePort(t)
	// As the README says: secrets come from the environment, so the
	// config (which Caddy logs at debug level) holds only the placeholder.
	t.Setenv("MEDIAGUARD_TEST_LOOKUP_KEY", apiKey)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	metrics
	log {
		output file %[1]s
		level DEBUG
		%[2]s
	}
	mediaguard {
		bank SECRET %[3]s
		log_clean_scans
		audit_log %[4]s
	}
}
http://127.0.0.1:%[5]d {
	log {
		output file %[6]s
		%[2]s
	}
	mediaguard
	reverse_proxy %[7]s
}
http://127.0.0.1:%[8]d {
	log {
		output file %[6]s
		%[2]s
	}
	mediaguard
	reverse_proxy 127.0.0.1:%[9]d
}
http://127.0.0.1:%[10]d {
	log {
		output file %[6]s
		%[2]s
	}
	mediaguard_lookup {
		api_key {env.%[11]s}
	}
}
`, logPath, redactLog, bankPath, filepath.Join(dir, "audit.log"), port, accessPath, strings.TrimPrefix(repo.URL, "http://"),
		downPort, testkit.FreePort(t), lookupPort, "MEDIAGUARD_TEST_LOOKUP_KEY"), "caddyfile")

	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	down := fmt.Sprintf("http://127.0.0.1:%d", downPort)
	lookup := fmt.Sprintf("http://127.0.0.1:%d/", lookupPort)
	var bodies bytes.Buffer
	send := func(method, url, auth string, body []byte, want int) {
		t.Helper()
		req, _ := http.NewRequest(method, url, bytes.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if body != nil {
			req.Header.Set("Content-Type", "image/png")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bodies.Write(b)
		bodies.WriteString(fmt.Sprint(resp.Header))
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s; want %d", method, url, resp.StatusCode, b, want)
		}
	}
	q := "?access_token=" + token1
	clean := append([]byte(marker), testimg.PNG(testimg.Photo(78, 64, 64))...)
	send("POST", base+"/_matrix/media/v3/upload"+q, "", clean, 200)
	send("POST", base+"/_matrix/media/v3/upload", "Bearer "+token2, clean, 200)
	send("POST", base+"/_matrix/media/v3/upload"+q, "", listedUpload, 403)
	send("POST", base+"/_matrix/media/v3/upload", "Bearer "+token2, listedUpload, 403)
	send("GET", base+"/_matrix/client/v1/media/download/hs.example/a2000"+q, "", nil, 200)
	send("GET", base+"/_matrix/client/v1/media/download/hs.example/a2000"+q, "", nil, 200) // known clean
	send("GET", fmt.Sprintf("%s/_matrix/client/v1/media/download/hs.example/a%d%s", base, listedN, q), "", nil, 404)
	send("GET", fmt.Sprintf("%s/_matrix/media/v3/download/hs.example/b%d", base, listedN), "Bearer "+token2, nil, 404)
	send("GET", base+"/_matrix/client/v3/sync"+q, "", nil, 200)
	send("GET", down+"/_matrix/client/v1/media/download/hs.example/a2000"+q, "", nil, 502)
	send("GET", down+"/_matrix/client/v3/sync"+q, "", nil, 502)
	send("POST", down+"/_matrix/media/v3/upload"+q, "", clean, 502)
	lookupBody := []byte(`{"hashes":{"sha256":"` + matched[1] + `"}}`)
	send("POST", lookup+"?api_key="+apiKey, "", lookupBody, 200)
	send("POST", lookup, "Bearer "+apiKey, lookupBody, 200)
	send("POST", lookup+"?api_key="+wrong, "", lookupBody, 401)
	send("POST", lookup, "Bearer "+wrong, lookupBody, 401)

	time.Sleep(200 * time.Millisecond) // let the loggers flush
	var seen bytes.Buffer
	for _, p := range []string{logPath, accessPath} {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			t.Fatalf("log %s: %v (%d bytes)", p, err, len(b))
		}
		seen.Write(b)
	}
	if !bytes.Contains(seen.Bytes(), []byte(`"uri":"/_matrix/client/v1/media/download/hs.example/a2000"`)) {
		t.Fatal("the access log does not show the redacted request: is the filter or the test wrong?")
	}
	metrics := scrapeMetrics(t, "http://localhost:2999/metrics")
	for k := range metrics {
		seen.WriteString(k + "\n")
	}
	seen.Write(bodies.Bytes())
	for _, secret := range []string{token1, token2, apiKey, wrong, marker} {
		if i := bytes.Index(seen.Bytes(), []byte(secret)); i >= 0 {
			lo := max(0, i-300)
			t.Errorf("%q leaked: …%s…", secret, seen.Bytes()[lo:min(seen.Len(), i+100)])
		}
	}
	for _, h := range unseen {
		if bytes.Contains(seen.Bytes(), []byte(h)) || bytes.Contains(seen.Bytes(), []byte(h[:16])) {
			t.Errorf("bank hash %s… that matched nothing appears", h[:16])
		}
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// Caddyfile.example (what `make run` serves) adapts without errors or
// warnings.
func TestCaddyfileExampleAdapts(t *testing.T) {
	src, err := os.ReadFile("../Caddyfile.example")
	if err != nil {
		t.Fatal(err)
	}
	_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(src, map[string]any{"filename": "Caddyfile.example"})
	if err != nil || len(warnings) != 0 {
		t.Fatalf("Caddyfile.example: %v %v", err, warnings)
	}
	// The lookup API answers whether a hash is listed: a site address
	// names no interface, so without bind it listens on every one.
	a, steps := adaptExample(t, "../Caddyfile.example", nil)
	lookup := serving(a, steps, "mediaguard_lookup")
	if len(lookup) == 0 {
		t.Fatal("Caddyfile.example serves no lookup API")
	}
	for _, l := range lookup {
		if !strings.HasPrefix(l, "127.0.0.1:") && !strings.HasPrefix(l, "tcp/127.0.0.1:") {
			t.Errorf("Caddyfile.example's lookup API listens on %q: bind it to 127.0.0.1", l)
		}
	}
}

// A secret configured as a placeholder that resolves empty stops the start
// with an error naming the option: an unset variable must not quietly
// serve the lookup API to everyone or post as nobody.
func TestEmptySecretStopsStart(t *testing.T) {
	const unset = "MEDIAGUARD_TEST_SURELY_UNSET"
	os.Unsetenv(unset)
	bank := filepath.Join(t.TempDir(), "b.bank")
	os.WriteFile(bank, []byte("md5 "+strings.Repeat("0", 32)+"\n"), 0o600)
	for _, tc := range []struct{ global, site, want string }{
		{"", "mediaguard_lookup {\n api_key {env." + unset + "}\n }", "mediaguard_lookup: api_key"},
		{"hma http://127.0.0.1:9 {\n api_key {env." + unset + "}\n }", "", "api_key {env." + unset + "}"},
		{"service http://127.0.0.1:9 {\n api_key {env." + unset + "}\n }", "", "service http://127.0.0.1:9 api_key"},
		{"notify matrix {\n homeserver http://127.0.0.1:9\n access_token {env." + unset + "}\n room !r:example.org\n }", "", "notify matrix access_token"},
		{"synapse_admin {\n homeserver http://127.0.0.1:9\n access_token {env." + unset + "}\n }", "", "synapse_admin access_token"},
	} {
		src := fmt.Sprintf("{\n admin off\n mediaguard {\n bank T %s\n %s\n }\n}\nhttp://127.0.0.1:0 {\n bind 127.0.0.1\n %s\n}\n", bank, tc.global, tc.site)
		cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
		if err != nil {
			t.Fatalf("adapt: %v\n%s", err, src)
		}
		var c caddy.Config
		if err := json.Unmarshal(cfg, &c); err != nil {
			t.Fatal(err)
		}
		err = caddy.Validate(&c)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "empty") {
			t.Errorf("%q: want an error naming %q, got %v", tc.want, tc.want, err)
		}
	}
}
