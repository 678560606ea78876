package hmaapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/apigate"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/matcher"
)

const testKey = "hma-k3y/odd+chars"

// TestAuth: every route but the health checks needs the key, which HMA
// clients send as a bearer token (policyserv: "Authorization: Bearer
// {key}", content/hma.go in https://github.com/matrix-org/policyserv).
// Refusals on /m/lookup are no verdict, so they come as a list
// (writeNoVerdict); elsewhere as HMA's {"message"}. The key never shows.
func TestAuth(t *testing.T) {
	log, logs := testkit.ObserveLogs()
	e := newEnv(t, envOpt{cfg: Config{APIKey: testKey, Logger: log}})
	photo, ct := form(t, fileField("photo", bankedPNG))
	lookup := "/m/lookup?signal_type=pdq&signal=" + e.pdq.String()
	for _, tc := range []struct {
		name, method, target string
		body                 []byte
		hdr                  []string
		status               int
		list                 bool
	}{
		{"hash, no key", "POST", "/h/hash", photo, []string{"Content-Type", ct}, 401, false},
		{"hash, wrong key", "POST", "/h/hash", photo, []string{"Content-Type", ct, "Authorization", "Bearer nope"}, 401, false},
		{"hash, bearer", "POST", "/h/hash", photo, []string{"Content-Type", ct, "Authorization", "Bearer " + testKey}, 200, false},
		{"lookup, no key", "GET", lookup, nil, nil, 401, true},
		{"lookup, wrong key", "GET", lookup, nil, []string{"Authorization", "Bearer nope"}, 401, true},
		{"lookup, bearer", "GET", lookup, nil, []string{"Authorization", "Bearer " + testKey}, 200, false},
		{"lookup, basic password", "GET", lookup, nil, []string{"Authorization", "Basic " + basic("x", testKey)}, 200, false},
		{"banks, no key", "GET", "/c/banks", nil, nil, 401, false},
		{"banks, bearer", "GET", "/c/banks", nil, []string{"Authorization", "Bearer " + testKey}, 200, false},
		{"index status, no key", "GET", "/m/index/status", nil, nil, 401, false},
		{"livez is open", "GET", "/livez", nil, nil, 200, false},
		{"readyz is open", "GET", "/readyz", nil, nil, 200, false},
		{"status is open", "GET", "/status", nil, nil, 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(e.h, tc.method, tc.target, tc.body, tc.hdr...)
			if w.Code != tc.status {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if tc.status == 401 {
				if w.Header().Get("WWW-Authenticate") != apigate.Challenge {
					t.Errorf("WWW-Authenticate %q", w.Header().Get("WWW-Authenticate"))
				}
				if got := strings.HasPrefix(w.Body.String(), "["); got != tc.list {
					t.Errorf("list %v: %s", got, w.Body)
				}
			}
		})
	}
	for _, s := range []string{testKey, "nope"} {
		if strings.Contains(testkit.LogText(logs), s) {
			t.Errorf("%q in the log", s)
		}
	}
}

func basic(user, pw string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, pw)
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// TestRateLimit: the limit applies before the key, to every route, with
// Retry-After; on /m/lookup the 429 is no verdict (a list).
func TestRateLimit(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	e := newEnv(t, envOpt{cfg: Config{APIKey: testKey, RateLimit: 1, RateBurst: 2, Now: func() time.Time { return now }}})
	var codes []int
	for range 3 {
		codes = append(codes, do(e.h, "GET", "/c/banks", nil, "Authorization", "Bearer guess").Code)
	}
	if fmt.Sprint(codes) != "[401 401 429]" {
		t.Errorf("codes %v", codes)
	}
	w := do(e.h, "GET", "/m/lookup?signal_type=pdq&signal="+e.pdq.String(), nil, "Authorization", "Bearer "+testKey)
	if w.Code != 429 || w.Header().Get("Retry-After") != "1" || !strings.HasPrefix(w.Body.String(), `[{"message":`) {
		t.Errorf("%d %q %s", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	if _, err := policyservLookup(w.Body.Bytes()); err == nil {
		t.Error("policyserv would read a 429 as an answer")
	}
	now = now.Add(time.Second)
	if w := do(e.h, "GET", "/livez", nil); w.Code != 200 {
		t.Errorf("after a second: %d", w.Code)
	}
}

// TestPathsAndMethods: unknown paths are 404 in HMA's error shape; a
// known path with another method is Flask's 405 with Allow.
func TestPathsAndMethods(t *testing.T) {
	e := newEnv(t, envOpt{})
	for _, tc := range []struct {
		method, target string
		status         int
		allow          string
	}{
		{"GET", "/", 404, ""},
		{"GET", "/m/lookup/", 404, ""},
		{"GET", "/m/raw_lookup?signal_type=pdq&signal=" + e.pdq.String(), 404, ""},
		{"POST", "/m/lookup", 405, "GET, HEAD"},
		{"DELETE", "/c/banks", 405, "GET, HEAD"},
		{"POST", "/livez", 405, "GET, HEAD"},
		{"PATCH", "/h/hash", 405, "GET, HEAD, POST"},
		{"HEAD", "/c/banks", 200, ""},
	} {
		w := do(e.h, tc.method, tc.target, nil)
		if w.Code != tc.status || w.Header().Get("Allow") != tc.allow {
			t.Errorf("%s %s: %d Allow %q: %s", tc.method, tc.target, w.Code, w.Header().Get("Allow"), w.Body)
		}
		if tc.status == 404 {
			var m errorBody
			if json.Unmarshal(w.Body.Bytes(), &m) != nil || m.Message == "" {
				t.Errorf("404 body %s", w.Body)
			}
		}
	}
}

// TestBanks: GET /c/banks as HMA's curation blueprint answers it, byte for
// byte (keys sorted, the ratio a Python float: HMA 1.1.7 answers
// [{"matching_enabled_ratio":1.0,"name":"TEST_BANK"},...]); a disabled
// bank matches nothing (0.0), and the banks remote backends are
// restricted to follow.
func TestBanks(t *testing.T) {
	e := newEnv(t, envOpt{disabled: true})
	w := do(e.h, "GET", "/c/banks", nil)
	want := `[{"matching_enabled_ratio":1.0,"name":"TEST_BANK"},{"matching_enabled_ratio":1.0,"name":"OTHER_BANK"},{"matching_enabled_ratio":0.0,"name":"OFF_BANK"}]` + "\n"
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("%d %s", w.Code, w.Body)
	}
	h, err := New(Config{Matcher: e.guard, Remote: remoteBanks{"hma:a": {"NCMEC", "TEST_BANK"}, "hma:b": {"ZZ"}}})
	if err != nil {
		t.Fatal(err)
	}
	w = do(h, "GET", "/c/banks", nil)
	if want := `[{"matching_enabled_ratio":1.0,"name":"NCMEC"},{"matching_enabled_ratio":1.0,"name":"TEST_BANK"},{"matching_enabled_ratio":1.0,"name":"ZZ"}]` + "\n"; w.Body.String() != want {
		t.Errorf("remote banks: %s", w.Body)
	}
	if w := do(mustNew(t, Config{Matcher: e.guard}), "GET", "/c/banks", nil); w.Body.String() != "[]\n" {
		t.Errorf("no banks: %s (HMA answers [] for none)", w.Body)
	}
}

type remoteBanks map[string][]string

func (r remoteBanks) RemoteBanks() map[string][]string { return r }

// mustNew is New that fails the test on error.
func mustNew(t testing.TB, cfg Config) *Handler {
	t.Helper()
	h, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestIndexStatus: GET /m/index/status as HMA's index_status shapes it
// ({"pdq":{"built_to":T,"present":true,"size":N},"video_md5":{…}}, keys
// sorted), for HMA's two signal types by default, one with ?signal_type=,
// and HMA's "No such signal type" for an unknown one.
func TestIndexStatus(t *testing.T) {
	loaded := time.Unix(1795745735, 0)
	fl := fakeLocal{
		{Name: "A", Enabled: true, LoadedAt: loaded, Counts: matcher.Counts{PDQ: 3, MD5: 2}},
		{Name: "B", Enabled: true, LoadedAt: loaded.Add(-time.Hour), Counts: matcher.Counts{PDQ: 2}},
		{Name: "OFF", Enabled: false, Counts: matcher.Counts{PDQ: 100}},
	}
	h := mustNew(t, Config{Matcher: nothing{}, Local: fl})
	for q, want := range map[string]string{
		"":                  `{"pdq":{"built_to":1795745735,"present":true,"size":5},"video_md5":{"built_to":-1,"present":true,"size":0}}`,
		"?signal_type=pdq":  `{"pdq":{"built_to":1795745735,"present":true,"size":5}}`,
		"?signal_type=md5":  `{"md5":{"built_to":1795745735,"present":true,"size":2}}`,
		"?signal_type=tmk":  `{"message":"No such signal type 'tmk'"}`,
		"?signal_type=":     `{"message":"No such signal type ''"}`,
		"?other=parameters": `{"pdq":{"built_to":1795745735,"present":true,"size":5},"video_md5":{"built_to":-1,"present":true,"size":0}}`,
	} {
		w := do(h, "GET", "/m/index/status"+q, nil)
		if w.Body.String() != want+"\n" {
			t.Errorf("%q: %d %s\nwant %s", q, w.Code, w.Body, want)
		}
	}
}

type fakeLocal []matcher.BankStatus

func (f fakeLocal) Status() []matcher.BankStatus { return f }

// TestHealth: HMA's health routes (src/OpenMediaMatch/app.py in
// https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner):
// /livez "OK" always, since a liveness probe failing during a long load
// would restart the process in a loop; /readyz "READY" and /status
// "I-AM-ALIVE" once the banks are loaded, "INDEX-NOT-LOADED" with 503
// before, when lookups answer 503 "index not yet ready" (matching.py's
// query_index); plain words, as Flask sends a returned string.
func TestHealth(t *testing.T) {
	notLoaded := fakeLocal{{Name: "A", Enabled: true}, {Name: "OFF"}}
	loaded := fakeLocal{{Name: "A", Enabled: true, LoadedAt: time.Now()}, {Name: "OFF"}}
	for _, tc := range []struct {
		local  fakeLocal
		path   string
		status int
		body   string
	}{
		{notLoaded, "/livez", 200, "OK"},
		{notLoaded, "/readyz", 503, "INDEX-NOT-LOADED"},
		{notLoaded, "/status", 503, "INDEX-NOT-LOADED"},
		{notLoaded, "/m/lookup?signal_type=pdq&signal=" + strings.Repeat("0", 64), 503, `[{"message":"index not yet ready"}]` + "\n"},
		{loaded, "/livez", 200, "OK"},
		{loaded, "/readyz", 200, "READY"},
		{loaded, "/status", 200, "I-AM-ALIVE"},
		{loaded, "/m/lookup?signal_type=pdq&signal=" + strings.Repeat("0", 64), 200, "{}\n"},
	} {
		h := mustNew(t, Config{Matcher: nothing{}, Local: tc.local})
		w := do(h, "GET", tc.path, nil)
		if w.Code != tc.status || w.Body.String() != tc.body {
			t.Errorf("%s: %d %q, want %d %q", tc.path, w.Code, w.Body, tc.status, tc.body)
		}
		if !strings.HasPrefix(tc.path, "/m/") && w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", tc.path, w.Header().Get("Content-Type"))
		}
	}
}

// TestContentID: derived ids are stable (a golden value: a change breaks
// every client that stored one), differ per bank and type, stay within
// 53 bits; HMA's own ids pass through; bank keys are bank names.
func TestContentID(t *testing.T) {
	const h = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
	id := ContentID("TEST_BANK", matcher.PDQ, h)
	if id != goldenContentID {
		t.Errorf("ContentID changed: %d", id)
	}
	if ContentID("TEST_BANK", matcher.PDQ, strings.ToUpper(h)) != id {
		t.Error("case changes the id")
	}
	for _, other := range []int64{ContentID("OTHER_BANK", matcher.PDQ, h), ContentID("TEST_BANK", matcher.SHA256, h)} {
		if other == id {
			t.Error("two entries share an id")
		}
	}
	if id <= 0 || id >= 1<<53 {
		t.Errorf("id %d outside 1..2^53", id)
	}
	e := matcher.Evidence{Bank: "NCMEC", HashType: matcher.PDQ, Hash: h, Label: "hma content 17", Source: "hma:NCMEC"}
	if got := contentIDOf(&e); got != 17 {
		t.Errorf("HMA id: %d", got)
	}
	e.Label = "local label"
	if got := contentIDOf(&e); got != ContentID("NCMEC", matcher.PDQ, h) {
		t.Errorf("no HMA id: %d", got)
	}
	for in, want := range map[[2]string]string{
		{"TEST_BANK", ""}:                   "TEST_BANK",
		{"lookup.example.org", "service:x"}: "LOOKUP_EXAMPLE_ORG",
		{"", "service:mg-2"}:                "SERVICE_MG_2",
		{"2nd list", ""}:                    "_2ND_LIST",
	} {
		e := matcher.Evidence{Bank: in[0], Source: in[1]}
		if got := bankKey(&e); got != want || !matcher.ValidBankName(got) {
			t.Errorf("bankKey(%q, %q) = %q, want %q", in[0], in[1], got, want)
		}
	}
}

// TestOnAnswer: every request is reported once, with its route and
// outcome.
func TestOnAnswer(t *testing.T) {
	var got []string
	e := newEnv(t, envOpt{cfg: Config{APIKey: testKey, OnAnswer: func(a Answer) { got = append(got, a.Route+"/"+a.Outcome+"/"+a.Auth) }}})
	auth := []string{"Authorization", "Bearer " + testKey}
	do(e.h, "GET", "/m/lookup?signal_type=pdq&signal="+e.pdq.String(), nil, auth...)
	do(e.h, "GET", "/m/lookup?signal_type=pdq&signal="+flip(e.pdq, 40).String(), nil, auth...)
	do(e.h, "GET", "/m/lookup?signal_type=pdq&signal=", nil, auth...)
	body, ct := form(t, fileField("photo", bankedPNG))
	do(e.h, "POST", "/h/hash", body, append([]string{"Content-Type", ct}, auth...)...)
	do(e.h, "GET", "/c/banks", nil)
	do(e.h, "GET", "/readyz", nil)
	do(e.h, "GET", "/nope", nil)
	want := "[lookup/match/ok lookup/no_match/ok lookup/bad_request/ok hash/ok/ok banks/unauthorized/missing health/ok/unchecked other/bad_request/unchecked]"
	if fmt.Sprint(got) != want {
		t.Errorf("answers %v\nwant %s", got, want)
	}
}

// TestNewRejects: configurations that cannot work are refused.
func TestNewRejects(t *testing.T) {
	q := 101
	for _, cfg := range []Config{
		{},
		{Matcher: nothing{}, APIKey: " padded"},
		{Matcher: nothing{}, MaxBodyBytes: -1},
		{Matcher: nothing{}, RateLimit: -1},
		{Matcher: nothing{}, RateBurst: -1},
		{Matcher: nothing{}, MinPDQQuality: &q},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("accepted %+v", cfg)
		}
	}
}

// goldenContentID is ContentID("TEST_BANK", "pdq", h) for the hash above,
// computed independently: in Python, int.from_bytes(hashlib.sha256(
// b"mediaguard bank content\0TEST_BANK\0pdq\0" + h).digest()[:8], "big") >> 11.
const goldenContentID = 6328096124373034
