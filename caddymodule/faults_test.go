package caddymodule

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// newFakeHMA starts the shared fake HMA (internal/fakes.HMA, which says
// what each answer follows) holding nothing, so a healthy fake says "no
// match"; setMode below makes it fail the ways a real deployment does.
func newFakeHMA(t *testing.T) *fakes.HMA { return fakes.NewHMA(t) }

// hmaModes are the faults setMode plays: "500" (an HTML error page),
// "malformed" (cut-off JSON), "wrong-shape" (JSON of another endpoint's
// shape) and "slow" (3 s before answering); "" heals.
var hmaModes = map[string]func(f *fakes.HMA){
	"": func(f *fakes.HMA) { f.SetRaw(nil); f.SetDelay(0) },
	"500": func(f *fakes.HMA) {
		f.SetRaw(&fakes.Raw{Status: 500, ContentType: "text/html", Body: "<h1>Internal Server Error</h1>"})
	},
	"malformed": func(f *fakes.HMA) {
		f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: `{"NCMEC":[{"bank_content_id":1,`})
	},
	"wrong-shape": func(f *fakes.HMA) {
		f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: `{"matches":[{"bank_content_id":1,"distance":"0"}]}`})
	},
	"slow": func(f *fakes.HMA) { f.SetDelay(3 * time.Second) },
}

// fakeUploadRepo answers POST /_matrix/media/v3/upload like a media
// repository (the shared fake Synapse: 200 {"content_uri": "mxc://…"}) and
// counts what reached it.
func fakeUploadRepo(t *testing.T) (*httptest.Server, *atomic.Int64) {
	f := fakes.NewSynapse(t)
	return f.Server, &f.Uploads
}

// TestMatcherFaultsThroughCaddy drives uploads through a real Caddy while
// the HMA backend is down, slow, failing with 500s, answering malformed JSON
// and answering JSON of the wrong shape. Under fail-open every upload is
// forwarded and recorded unscanned; under fail-closed every one is refused
// with 503 and nothing reaches the homeserver. After each fault the backend
// heals and the breaker closes again. The failures are counted by kind in
// the metrics, and the log has one failure line and one line per breaker
// transition for each fault, however many requests there were.
func TestMatcherFaultsThroughCaddy(t *testing.T) {
	hma := newFakeHMA(t)
	repo, forwarded := fakeUploadRepo(t)
	dir := t.TempDir()
	logPath := filepath.Join(dir, "caddy.log")
	port := testkit.FreePort(t)
	front := fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/upload", port)
	tester := caddytest.NewTester(t)
	load := func(policy string) {
		tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	metrics
	log {
		output file %s
		format json
	}
	mediaguard {
		hma %s {
			timeout 5s
		}
		on_matcher_error %s
		breaker {
			consecutive_failures 3
			open_timeout 300ms
			call_timeout 200ms
		}
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
`, logPath, hma.URL, policy, port, strings.TrimPrefix(repo.URL, "http://")), "caddyfile")
	}
	seed := 1
	upload := func() int {
		seed++ // a new image each time: no verdict cache hit hides a fault
		body := testimg.PNG(testimg.Photo(seed, 96, 64))
		resp, err := http.Post(front, "image/png", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	type fault struct {
		name  string
		start func() (heal func())
	}
	setMode := func(m string) func() func() {
		return func() func() { hmaModes[m](hma); return func() { hmaModes[""](hma) } }
	}
	faults := []fault{
		{"down", func() func() { return hma.Down(t) }},
		{"slow", setMode("slow")},
		{"500s", setMode("500")},
		{"malformed JSON", setMode("malformed")},
		{"wrong-shaped JSON", setMode("wrong-shape")},
	}
	const perFault = 12
	for _, policy := range []string{"open", "closed"} {
		load(policy)
		for _, fc := range faults {
			before := forwarded.Load()
			heal := fc.start()
			for i := range perFault {
				got := upload()
				want := 200
				if policy == "closed" {
					want = 503
				}
				if got != want {
					t.Fatalf("%s, fail-%s: upload %d answered %d; want %d", fc.name, policy, i, got, want)
				}
			}
			wantForwarded := before + perFault
			if policy == "closed" {
				wantForwarded = before
			}
			if forwarded.Load() != wantForwarded {
				t.Fatalf("%s, fail-%s: %d uploads reached the homeserver; want %d", fc.name, policy, forwarded.Load()-before, wantForwarded-before)
			}
			heal()
			time.Sleep(350 * time.Millisecond) // past open_timeout: the next call probes
			if got := upload(); got != 200 {
				t.Fatalf("%s, fail-%s: after healing the upload answered %d", fc.name, policy, got)
			}
		}
	}

	m := scrapeMetrics(t, "http://localhost:2999/metrics")
	host := "hma:" + strings.TrimPrefix(hma.URL, "http://")
	series := func(kind, labels string) float64 {
		return m[`caddy_mediaguard_`+kind+`{backend="`+host+`"`+labels+`}`]
	}
	// Each fault opens the breaker after three failures and it closes
	// once healed. On a slow machine a fault can outlast open_timeout: the
	// breaker then probes (half-open), fails and opens again, so the
	// counts are related to the transitions rather than fixed.
	opens := series("breaker_transitions_total", `,to="open"`)
	halfOpens := series("breaker_transitions_total", `,to="half-open"`)
	closes := series("breaker_transitions_total", `,to="closed"`)
	reopened := opens - 2*5 // failed probes
	if opens < 2*5 || closes != 2*5 || halfOpens != opens || series("breaker_state", "") != 0 {
		t.Errorf("transitions: %v open, %v half-open, %v closed, state %v; want ≥10 open, as many half-open, 10 closed, closed at the end",
			opens, halfOpens, closes, series("breaker_state", ""))
	}
	// The failure counters belong to the running config, the fail-closed
	// one (a reload starts them again, as Prometheus counters may): three
	// failures per fault of that kind, plus any failed probes.
	timeouts, malformed := series("backend_failures_total", `,kind="timeout"`), series("backend_failures_total", `,kind="malformed"`)
	errs, rejected := series("backend_failures_total", `,kind="error"`), series("backend_failures_total", `,kind="breaker_open"`)
	if timeouts < 3 || malformed < 2*3 || errs < 2*3 || timeouts+malformed+errs > 5*3+reopened || rejected == 0 {
		t.Errorf("failures: %v timeout, %v malformed, %v error, %v breaker_open", timeouts, malformed, errs, rejected)
	}
	for _, c := range []struct {
		series string
		want   float64
	}{
		{`caddy_mediaguard_requests_total{direction="upload",verdict="unscanned"}`, 5 * perFault},
		{`caddy_mediaguard_requests_total{direction="upload",verdict="refused"}`, 5 * perFault},
	} {
		if got := m[c.series]; got != c.want {
			t.Errorf("%s = %v; want %v", c.series, got, c.want)
		}
	}

	lines := logLines(t, logPath, "mediaguard")
	count := func(msg string) float64 {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l.Msg, msg) {
				n++
			}
		}
		return float64(n)
	}
	// One line when a closed or half-open breaker first sees a failure,
	// one per transition: never one per request.
	for _, c := range []struct {
		msg  string
		want float64
	}{
		{"remote backend failed", opens},
		{"remote backend circuit breaker changed: not consulting it", opens},
		{"remote backend circuit breaker changed", opens + halfOpens + closes},
		{"media not scanned", 0},
	} {
		if got := count(c.msg); got != c.want {
			t.Errorf("%v log lines %q; want %v", got, c.msg, c.want)
		}
	}
	if failing := float64(2 * 5 * perFault); opens >= failing/2 {
		t.Errorf("%v breaker openings for %v failing requests: the breaker did not hold", opens, failing)
	}
	if t.Failed() {
		for k, v := range m {
			if strings.Contains(k, "mediaguard") {
				t.Log(k, v)
			}
		}
		for _, l := range lines {
			t.Log(l.Level, l.Logger, l.Msg)
		}
	}
}

type logLine struct {
	Level, Logger, Msg string
}

// logLines reads Caddy's JSON log, keeping lines whose logger starts with
// prefix.
func logLines(t *testing.T, path, prefix string) []logLine {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logLine
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l logLine
		if json.Unmarshal(sc.Bytes(), &l) == nil && strings.HasPrefix(l.Logger, prefix) {
			out = append(out, l)
		}
	}
	return out
}

// scrapeMetrics reads a Prometheus text exposition into series → value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		var v float64
		if _, err := fmt.Sscan(line[i+1:], &v); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// A bank file replaced with garbage while serving: the last good version
// keeps blocking, the failure is logged naming the file and shown in the
// metrics, and a good file is picked up again.
func TestBankGarbageWhileServing(t *testing.T) {
	repo, _ := fakeUploadRepo(t)
	dir := t.TempDir()
	listed := testimg.PNG(testimg.Photo(61, 80, 60))
	bank := filepath.Join(dir, "live.bank")
	good := "sha256 " + sha256Hex(listed) + " listed\n"
	os.WriteFile(bank, []byte(good), 0o600)
	logPath := filepath.Join(dir, "caddy.log")
	port := testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	metrics
	log {
		output file %s
		format json
	}
	mediaguard {
		bank LIVE %s
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
`, logPath, bank, port, strings.TrimPrefix(repo.URL, "http://")), "caddyfile")
	upload := func() int {
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/upload", port), "image/png", bytes.NewReader(listed))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	metric := func(series string) float64 {
		return scrapeMetrics(t, "http://localhost:2999/metrics")[series]
	}
	if upload() != 403 || metric(`caddy_mediaguard_bank_entries{bank="LIVE",type="sha256"}`) != 1 {
		t.Fatal("the listed upload is not blocked to begin with")
	}
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7 + i/13)
	}
	for _, junk := range [][]byte{garbage, []byte("<?xml version=\"1.0\"?><not-closed"), []byte("sha256 nothex\nmd5 12\n")} {
		os.WriteFile(bank, junk, 0o600)
		deadline := time.Now().Add(5 * time.Second)
		for metric(`caddy_mediaguard_bank_load_failing{bank="LIVE"}`) != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("garbage %.20q: the failure never showed in the metrics", junk)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if st := upload(); st != 403 {
			t.Fatalf("garbage %.20q: the listed upload answered %d; the last good bank must stay in use", junk, st)
		}
		if n := metric(`caddy_mediaguard_bank_entries{bank="LIVE",type="sha256"}`); n != 1 {
			t.Fatalf("entries in use: %v", n)
		}
		os.WriteFile(bank, []byte(good), 0o600)
		for metric(`caddy_mediaguard_bank_load_failing{bank="LIVE"}`) != 0 {
			if time.Now().After(deadline) {
				t.Fatal("a good file again did not clear the failure")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	n := 0
	for _, l := range logLines(t, logPath, "mediaguard") {
		if strings.HasPrefix(l.Msg, "bank reload failed") && l.Level == "error" {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d 'bank reload failed' error lines; want one per garbage file", n)
	}
}
