package lookupapi

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/apigate"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/matcher"
)

// TestLookupLocalBank runs the plugin's requests against a real bank file:
// listed digests block, unlisted ones allow, with exactly the keys the
// plugin reads.
func TestLookupLocalBank(t *testing.T) {
	h := newHandler(t, Config{Matcher: standardLocal(t)})
	tests := []struct {
		name, body string
		action     string
		keys       string // sorted keys of the answer
		hashType   string
		matched    string
		confidence float64
		distance   float64 // checked when keys has distance
		bank       string
	}{
		{
			name: "plugin request, listed md5", body: pluginBody(listedMD5, unlistedSHA1, unlistedSHA256),
			action: "block", keys: "action,bank,confidence,hashType,matchedHash,reason",
			hashType: "md5", matched: listedMD5, confidence: 1, bank: "TEST_BANK",
		},
		{
			name: "plugin request, listed sha1, uppercase hex", body: pluginBody(unlistedMD5, strings.ToUpper(listedSHA1), unlistedSHA256),
			action: "block", keys: "action,bank,confidence,hashType,matchedHash,reason",
			hashType: "sha1", matched: listedSHA1, confidence: 1, bank: "TEST_BANK",
		},
		{
			name: "plugin request, listed sha256", body: pluginBody(unlistedMD5, unlistedSHA1, listedSHA256),
			action: "block", keys: "action,bank,confidence,hashType,matchedHash,reason",
			hashType: "sha256", matched: listedSHA256, confidence: 1, bank: "TEST_BANK",
		},
		{
			name: "plugin request, nothing listed", body: pluginBody(unlistedMD5, unlistedSHA1, unlistedSHA256),
			action: "allow", keys: "action,confidence,hashType,matchedHash,reason",
		},
		{
			name: "real pdq at distance 4", body: `{"hashes":{"pdq":"` + flipPDQ(t, bankedPDQ, 4) + `"}}`,
			action: "block", keys: "action,bank,confidence,distance,hashType,matchedHash,reason",
			hashType: "pdq", matched: bankedPDQ, confidence: 1 - 4.0/64, distance: 4, bank: "TEST_BANK",
		},
		{
			name: "real pdq too far", body: `{"hashes":{"pdq":"` + flipPDQ(t, bankedPDQ, 40) + `"}}`,
			action: "allow", keys: "action,confidence,hashType,matchedHash,reason",
		},
		{
			name: "pdq of low quality is not matched", body: `{"hashes":{"pdq":"` + bankedPDQ + `"},"pdqQuality":10}`,
			action: "allow", keys: "action,confidence,hashType,matchedHash,reason",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := serve(h, http.MethodPost, "/_mediaguard/lookup", tc.body, pluginHeaders)
			if w.Code != http.StatusOK {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			checkCommonHeaders(t, w)
			m := decodeObject(t, w.Body.Bytes())
			if got := keysOf(m); got != tc.keys {
				t.Errorf("keys = %s, want %s", got, tc.keys)
			}
			if m["action"] != tc.action {
				t.Errorf("action = %v, want %s", m["action"], tc.action)
			}
			if r, _ := m["reason"].(string); r == "" {
				t.Error("empty reason")
			}
			if m["hashType"] != tc.hashType || m["matchedHash"] != tc.matched {
				t.Errorf("hashType %v matchedHash %v, want %s %s", m["hashType"], m["matchedHash"], tc.hashType, tc.matched)
			}
			if c := m["confidence"].(float64); math.Abs(c-tc.confidence) > 1e-9 {
				t.Errorf("confidence = %v, want %v", c, tc.confidence)
			}
			if tc.bank != "" && m["bank"] != tc.bank {
				t.Errorf("bank = %v, want %s", m["bank"], tc.bank)
			}
			if strings.Contains(tc.keys, "distance") && m["distance"] != tc.distance {
				t.Errorf("distance = %v, want %v", m["distance"], tc.distance)
			}
		})
	}
}

// TestLookupRequestShapes covers what the handler accepts and refuses
// before the matcher, with a fake matcher that records the query.
func TestLookupRequestShapes(t *testing.T) {
	const marker = "ZZ-BODY-MARKER-ZZ"
	tests := []struct {
		name   string
		body   string
		ctype  string
		status int
		code   string // errcode on errors
		msg    string // substring of the error message
		has    matcher.Has
		kind   matcher.MediaKind
	}{
		{name: "md5 only", body: `{"hashes":{"md5":"` + listedMD5 + `"}}`, status: 200, has: matcher.HasMD5},
		{name: "plugin body", body: pluginBody(listedMD5, listedSHA1, listedSHA256), status: 200,
			has: matcher.HasMD5 | matcher.HasSHA1 | matcher.HasSHA256, kind: matcher.KindImage},
		{name: "sticker is an image", body: `{"hashes":{"sha1":"` + listedSHA1 + `"},"mediaType":"m.sticker"}`, status: 200,
			has: matcher.HasSHA1, kind: matcher.KindImage},
		{name: "real pdq", body: `{"hashes":{"pdq":"` + bankedPDQ + `"}}`, status: 200, has: matcher.HasPDQ},
		{name: "unknown fields ignored", body: `{"hashes":{"md5":"` + listedMD5 + `","tlsh":"x"},"fileName":"a.png","extra":[1,2]}`,
			status: 200, has: matcher.HasMD5},
		{name: "informational fields of another type ignored",
			body:   `{"hashes":{"md5":"` + listedMD5 + `"},"timestamp":"2024-01-01T00:00:00Z","userId":42,"roomId":null,"eventId":{"a":1},"mediaType":true}`,
			status: 200, has: matcher.HasMD5},
		{name: "null digests are absent", body: `{"hashes":{"md5":null,"sha256":"` + listedSHA256 + `"}}`, status: 200, has: matcher.HasSHA256},
		{name: "text/plain content type still parsed as JSON", ctype: "text/plain", body: `{"hashes":{"md5":"` + listedMD5 + `"}}`,
			status: 200, has: matcher.HasMD5},
		{name: "no content type", ctype: "-", body: `{"hashes":{"md5":"` + listedMD5 + `"}}`, status: 200, has: matcher.HasMD5},
		{name: "surrounding whitespace", body: "\n {\"hashes\":{\"md5\":\"" + listedMD5 + "\"}} \r\n", status: 200, has: matcher.HasMD5},

		{name: "empty body", body: "", status: 400, code: "M_NOT_JSON", msg: "empty"},
		{name: "malformed JSON", body: `{"hashes":{"md5":` + marker, status: 400, code: "M_NOT_JSON", msg: "malformed JSON"},
		{name: "truncated JSON", body: `{"hashes":{"md5":"` + listedMD5 + `"`, status: 400, code: "M_NOT_JSON", msg: "malformed JSON"},
		{name: "trailing garbage", body: `{"hashes":{"md5":"` + listedMD5 + `"}} ` + marker, status: 400, code: "M_NOT_JSON", msg: "malformed JSON"},
		{name: "two objects", body: `{"hashes":{"md5":"` + listedMD5 + `"}}{}`, status: 400, code: "M_NOT_JSON"},
		{name: "not JSON", body: marker, status: 400, code: "M_NOT_JSON"},
		{name: "array", body: `[{"hashes":{}}]`, status: 400, code: "M_BAD_JSON", msg: "must be a JSON object, not a JSON array"},
		{name: "string", body: `"` + marker + `"`, status: 400, code: "M_BAD_JSON", msg: "JSON object"},
		{name: "null", body: `null`, status: 400, code: "M_BAD_JSON", msg: `no "hashes"`},
		{name: "empty object", body: `{}`, status: 400, code: "M_BAD_JSON", msg: `no "hashes"`},
		{name: "hashes misspelt", body: `{"hash":{"md5":"` + listedMD5 + `"}}`, status: 400, code: "M_BAD_JSON", msg: `no "hashes"`},
		{name: "hashes not an object", body: `{"hashes":"` + marker + `"}`, status: 400, code: "M_BAD_JSON", msg: "field hashes must be a JSON object, not a JSON string"},
		{name: "md5 a number", body: `{"hashes":{"md5":12345}}`, status: 400, code: "M_BAD_JSON", msg: "field hashes.md5 must be a JSON string, not a JSON number"},
		{name: "pdqQuality not an integer", body: `{"hashes":{"pdq":"` + bankedPDQ + `"},"pdqQuality":55.5}`, status: 400, code: "M_BAD_JSON", msg: "pdqQuality"},
		{name: "no hashes at all", body: `{"hashes":{},"eventId":"$e:x"}`, status: 400, code: "M_BAD_JSON", msg: "no usable hash"},
		{name: "only the pdq placeholder", body: `{"hashes":{"pdq":"` + placeholderPDQ + `"}}`, status: 400, code: "M_BAD_JSON", msg: "no usable hash"},
		{name: "md5 wrong length", body: `{"hashes":{"md5":"` + listedMD5[:30] + `"}}`, status: 400, code: "M_BAD_JSON", msg: "hashes.md5 must be 32 hex digits"},
		{name: "sha256 wrong length", body: `{"hashes":{"sha256":"` + listedSHA256 + `00"}}`, status: 400, code: "M_BAD_JSON", msg: "hashes.sha256 must be 64 hex digits"},
		{name: "sha1 not hex", body: `{"hashes":{"sha1":"` + strings.Repeat("zz", 20) + `"}}`, status: 400, code: "M_BAD_JSON", msg: "hashes.sha1 is not hex"},
		{name: "pdq not a hash", body: `{"hashes":{"pdq":"` + marker + `"}}`, status: 400, code: "M_BAD_JSON", msg: "hashes.pdq"},
		{name: "bad digest among good ones", body: `{"hashes":{"md5":"` + listedMD5 + `","sha1":"abc"}}`, status: 400, code: "M_BAD_JSON", msg: "hashes.sha1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fm := &fakeMatcher{}
			h := newHandler(t, Config{Matcher: fm})
			opts := []reqOpt{pluginHeaders}
			switch tc.ctype {
			case "":
			case "-":
				opts = append(opts, func(r *http.Request) { r.Header.Del("Content-Type") })
			default:
				opts = append(opts, withHeader("Content-Type", tc.ctype))
			}
			w := serve(h, http.MethodPost, "/", tc.body, opts...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			checkCommonHeaders(t, w)
			m := decodeObject(t, w.Body.Bytes())
			if strings.Contains(w.Body.String(), marker) {
				t.Errorf("answer echoes the body: %s", w.Body)
			}
			if tc.status != 200 {
				if m["errcode"] != tc.code || !strings.Contains(fmt.Sprint(m["error"]), tc.msg) {
					t.Errorf("error = %v %q, want %s containing %q", m["errcode"], m["error"], tc.code, tc.msg)
				}
				if n := fm.calls.Load(); n != 0 {
					t.Errorf("matcher consulted %d times for a bad request", n)
				}
				if s := h.Stats(); s.BadRequests != 1 || s.Requests != 1 {
					t.Errorf("stats %+v", s)
				}
				return
			}
			if m["action"] != "allow" {
				t.Errorf("action = %v", m["action"])
			}
			q := fm.lastQuery()
			if q.Has != tc.has || q.Kind != tc.kind {
				t.Errorf("query has %b kind %q, want %b %q", q.Has, q.Kind, tc.has, tc.kind)
			}
		})
	}
}

// TestOversize: a body over MaxBodyBytes is 413, whether its length is
// declared or it is streamed.
func TestOversize(t *testing.T) {
	const limit = 256
	body := `{"hashes":{"md5":"` + listedMD5 + `"},"userId":"` + strings.Repeat("a", limit) + `"}`
	fit := `{"hashes":{"md5":"` + listedMD5 + `"}}`
	tests := []struct {
		name     string
		body     string
		chunked  bool
		max      int64
		status   int
		matchers int64
	}{
		{"declared length", body, false, limit, 413, 0},
		{"streamed", body, true, limit, 413, 0},
		{"fits", fit, true, limit, 200, 1},
		{"exactly the limit", fit, false, int64(len(fit)), 200, 1},
		{"default limit", strings.Repeat(" ", DefaultMaxBodyBytes) + fit, false, 0, 413, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fm := &fakeMatcher{}
			h := newHandler(t, Config{Matcher: fm, MaxBodyBytes: tc.max})
			w := serve(h, http.MethodPost, "/", tc.body, func(r *http.Request) {
				if tc.chunked {
					r.ContentLength = -1
				}
			})
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			m := decodeObject(t, w.Body.Bytes())
			if tc.status == 413 && (m["errcode"] != "M_TOO_LARGE" || !strings.Contains(fmt.Sprint(m["error"]), "exceeds")) {
				t.Errorf("answer %v", m)
			}
			if fm.calls.Load() != tc.matchers {
				t.Errorf("matcher calls %d, want %d", fm.calls.Load(), tc.matchers)
			}
		})
	}
}

const testKey = "s3cret/key:with%odd+chars"

// TestAuth checks every way the key may come, and that it stays out of the
// answers and the log.
func TestAuth(t *testing.T) {
	body := `{"hashes":{"md5":"` + listedMD5 + `"}}`
	q := "?api_key=" + url.QueryEscape(testKey)
	tests := []struct {
		name   string
		noKey  bool // handler without APIKey
		method string
		target string
		opts   []reqOpt
		status int
		code   string
	}{
		{name: "no credential", status: 401, code: "M_MISSING_TOKEN"},
		{name: "bearer", opts: []reqOpt{withHeader("Authorization", "Bearer "+testKey)}, status: 200},
		{name: "bearer, lowercase scheme, extra spaces", opts: []reqOpt{withHeader("Authorization", "bearer   "+testKey+" ")}, status: 200},
		{name: "wrong bearer", opts: []reqOpt{withHeader("Authorization", "Bearer nope")}, status: 401, code: "M_UNKNOWN_TOKEN"},
		{name: "bearer that is a prefix of the key", opts: []reqOpt{withHeader("Authorization", "Bearer "+testKey[:5])}, status: 401, code: "M_UNKNOWN_TOKEN"},
		{name: "empty bearer", opts: []reqOpt{withHeader("Authorization", "Bearer")}, status: 401, code: "M_UNKNOWN_TOKEN"},
		{name: "basic, any user", opts: []reqOpt{func(r *http.Request) { r.SetBasicAuth("mjolnir", testKey) }}, status: 200},
		{name: "basic, empty user", opts: []reqOpt{func(r *http.Request) { r.SetBasicAuth("", testKey) }}, status: 200},
		{name: "basic, wrong password", opts: []reqOpt{func(r *http.Request) { r.SetBasicAuth("mjolnir", "nope") }}, status: 401, code: "M_UNKNOWN_TOKEN"},
		{name: "basic, key as the user name", opts: []reqOpt{func(r *http.Request) { r.SetBasicAuth(testKey, "") }}, status: 401, code: "M_UNKNOWN_TOKEN"},
		{name: "unknown scheme", opts: []reqOpt{withHeader("Authorization", "Token "+testKey)}, status: 401, code: "M_MISSING_TOKEN"},
		{name: "api_key query", target: "/lookup" + q, status: 200},
		{name: "api_key among other parameters", target: "/lookup?a=1&api_key=" + url.QueryEscape(testKey) + "&b=2", status: 200},
		{name: "wrong api_key", target: "/lookup?api_key=nope", status: 401, code: "M_UNKNOWN_TOKEN"},
		{name: "empty api_key", target: "/lookup?api_key=", status: 401, code: "M_UNKNOWN_TOKEN"},
		{name: "wrong bearer, right api_key", target: "/lookup" + q, opts: []reqOpt{withHeader("Authorization", "Bearer nope")}, status: 200},
		{name: "health needs the key", method: http.MethodGet, status: 401, code: "M_MISSING_TOKEN"},
		{name: "health with the key", method: http.MethodGet, target: "/lookup" + q, status: 200},
		{name: "no key configured: open", noKey: true, status: 200},
		{name: "no key configured: credentials ignored", noKey: true, opts: []reqOpt{withHeader("Authorization", "Bearer whatever")}, target: "/lookup?api_key=x", status: 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := testkit.ObserveLogs()
			cfg := Config{APIKey: testKey, Logger: log, Matcher: standardLocal(t)}
			if tc.noKey {
				cfg.APIKey = ""
			}
			h := newHandler(t, cfg)
			method, target, b := tc.method, tc.target, body
			if method == "" {
				method = http.MethodPost
			}
			if method != http.MethodPost {
				b = ""
			}
			if target == "" {
				target = "/lookup"
			}
			w := serve(h, method, target, b, append([]reqOpt{pluginHeaders}, tc.opts...)...)
			if w.Code != tc.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			checkCommonHeaders(t, w)
			m := decodeObject(t, w.Body.Bytes())
			if tc.status == 401 {
				if got := w.Header().Get("WWW-Authenticate"); got != `Bearer realm="mediaguard"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if m["errcode"] != tc.code {
					t.Errorf("errcode = %v, want %s", m["errcode"], tc.code)
				}
				if h.Stats().Unauthorized != 1 {
					t.Errorf("stats %+v", h.Stats())
				}
				if !strings.Contains(testkit.LogText(logs), "unauthorized") {
					t.Errorf("no log line for the refusal: %s", testkit.LogText(logs))
				}
			} else if method == http.MethodPost && m["action"] != "block" {
				t.Errorf("answer %v", m)
			}
			for _, secret := range []string{testKey, url.QueryEscape(testKey), "Bearer", "nope"} {
				if strings.Contains(testkit.LogText(logs), secret) || strings.Contains(w.Body.String(), secret) {
					t.Errorf("%q leaked: log %q answer %q", secret, testkit.LogText(logs), w.Body)
				}
			}
		})
	}
}

// TestAuthOverHTTP goes through a real client, which turns the credentials
// of a URL (https://user:KEY@host/...) into a Basic header as the plugin's
// HTTP library does, and keeps ?api_key= in the URL.
func TestAuthOverHTTP(t *testing.T) {
	h := newHandler(t, Config{APIKey: testKey, Matcher: standardLocal(t)})
	srv := httptest.NewServer(h)
	defer srv.Close()
	base, _ := url.Parse(srv.URL + "/_mediaguard/lookup")
	withUser := func(user, pass string) string {
		u := *base
		u.User = url.UserPassword(user, pass)
		return u.String()
	}
	tests := []struct {
		name, url string
		status    int
	}{
		{"user:KEY@ url", withUser("mjolnir", testKey), 200},
		{"user:WRONG@ url", withUser("mjolnir", "wrong"), 401},
		{"api_key query", base.String() + "?api_key=" + url.QueryEscape(testKey), 200},
		{"bare url", base.String(), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, tc.url, strings.NewReader(pluginBody(listedMD5, unlistedSHA1, unlistedSHA256)))
			if err != nil {
				t.Fatal(err)
			}
			pluginHeaders(req)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
		})
	}
}

// TestHealth covers GET and HEAD with and without a health function.
func TestHealth(t *testing.T) {
	local := standardLocal(t)
	remote := &fakeMatcher{}
	guard, err := matcher.NewGuard(matcher.GuardConfig{Local: local, Remotes: []matcher.Remote{{Name: "hma", Matcher: remote}}})
	if err != nil {
		t.Fatal(err)
	}
	defer guard.Close()
	// A remote that lacks a configured bank degrades the document.
	lacking, err := matcher.NewGuard(matcher.GuardConfig{Remotes: []matcher.Remote{{Name: "hma", Matcher: &bankLackingMatcher{missing: []string{"TYPO_BANK"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer lacking.Close()
	tests := []struct {
		name   string
		method string
		health func(context.Context) any
		want   []string // substrings of the body
	}{
		{name: "default", method: http.MethodGet, want: []string{`{"status":"ok"}`}},
		{name: "banks and breakers", method: http.MethodGet, health: NewHealth(local, guard),
			want: []string{`"status":"ok"`, `"name":"TEST_BANK"`, `"enabled":true`, `"md5":1`, `"pdq":1`, `"breakers":{"hma":"closed"}`}},
		{name: "missing remote bank", method: http.MethodGet, health: NewHealth(nil, lacking),
			want: []string{`"status":"degraded"`, `"missing_banks":{"hma":["TYPO_BANK"]}`}},
		{name: "custom document", method: http.MethodGet, health: func(context.Context) any { return map[string]int{"x": 1} }, want: []string{`{"x":1}`}},
		{name: "head", method: http.MethodHead, health: NewHealth(local, guard)},
		{name: "unencodable document", method: http.MethodGet, health: func(context.Context) any { return math.NaN() }, want: []string{`"errcode":"M_UNKNOWN"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(t, Config{Matcher: guard, Health: tc.health})
			w := serve(h, tc.method, "/", "")
			checkCommonHeaders(t, w)
			if tc.name == "unencodable document" {
				if w.Code != http.StatusInternalServerError || h.Stats().Errors != 1 {
					t.Errorf("status %d stats %+v", w.Code, h.Stats())
				}
			} else if w.Code != http.StatusOK || h.Stats().HealthChecks != 1 {
				t.Errorf("status %d stats %+v", w.Code, h.Stats())
			}
			for _, s := range tc.want {
				if !strings.Contains(w.Body.String(), s) {
					t.Errorf("body %s lacks %s", w.Body, s)
				}
			}
			if strings.Contains(w.Body.String(), "bank.txt") {
				t.Errorf("health document reveals the bank path: %s", w.Body)
			}
		})
	}
}

func TestMethodNotAllowed(t *testing.T) {
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch, http.MethodOptions, "PROPFIND"} {
		t.Run(m, func(t *testing.T) {
			fm := &fakeMatcher{}
			h := newHandler(t, Config{Matcher: fm, APIKey: testKey})
			w := serve(h, m, "/", `{"hashes":{"md5":"`+listedMD5+`"}}`)
			if w.Code != http.StatusMethodNotAllowed {
				t.Fatalf("status %d", w.Code)
			}
			if a := w.Header().Get("Allow"); a != "GET, HEAD, POST" {
				t.Errorf("Allow = %q", a)
			}
			checkCommonHeaders(t, w)
			if decodeObject(t, w.Body.Bytes())["errcode"] != "M_UNRECOGNIZED" || fm.calls.Load() != 0 {
				t.Errorf("answer %s, %d calls", w.Body, fm.calls.Load())
			}
		})
	}
}

// TestRateLimit drives the token bucket with a fake clock.
func TestRateLimit(t *testing.T) {
	body := `{"hashes":{"md5":"` + listedMD5 + `"}}`
	type step struct {
		advance time.Duration
		addr    string
		status  int
		retry   string // Retry-After on 429
	}
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []step
	}{
		{name: "burst then wait", rate: 1, burst: 2, steps: []step{
			{0, "192.0.2.1:1000", 200, ""},
			{0, "192.0.2.1:1001", 200, ""},
			{0, "192.0.2.1:1002", 429, "1"},
			{0, "192.0.2.2:1000", 200, ""}, // another client has its own bucket
			{500 * time.Millisecond, "192.0.2.1:1000", 429, "1"},
			{500 * time.Millisecond, "192.0.2.1:1000", 200, ""},
			{0, "192.0.2.1:1000", 429, "1"},
			{10 * time.Second, "192.0.2.1:1000", 200, ""}, // refills to the burst, no more
			{0, "192.0.2.1:1000", 200, ""},
			{0, "192.0.2.1:1000", 429, "1"},
		}},
		{name: "slow rate, retry after rounds up", rate: 0.1, burst: 1, steps: []step{
			{0, "192.0.2.1:1", 200, ""},
			{0, "192.0.2.1:1", 429, "10"},
			{7 * time.Second, "192.0.2.1:1", 429, "3"},
			{3 * time.Second, "192.0.2.1:1", 200, ""},
		}},
		{name: "burst defaults to the rate", rate: 3, steps: []step{
			{0, "192.0.2.1:1", 200, ""}, {0, "192.0.2.1:1", 200, ""}, {0, "192.0.2.1:1", 200, ""},
			{0, "192.0.2.1:1", 429, "1"},
		}},
		{name: "ipv6 grouped by /64", rate: 1, burst: 1, steps: []step{
			{0, "[2001:db8:1:2::1]:443", 200, ""},
			{0, "[2001:db8:1:2:ffff::9]:443", 429, "1"},
			{0, "[2001:db8:1:3::1]:443", 200, ""},
		}},
		{name: "ipv4-mapped ipv6 is ipv4", rate: 1, burst: 1, steps: []step{
			{0, "[::ffff:192.0.2.7]:1", 200, ""},
			{0, "192.0.2.7:2", 429, "1"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			log, logs := testkit.ObserveLogs()
			h := newHandler(t, Config{RateLimit: tc.rate, RateBurst: tc.burst, Now: clk.Now, Logger: log})
			limited := uint64(0)
			for i, s := range tc.steps {
				clk.advance(s.advance)
				w := serve(h, http.MethodPost, "/", body, fromAddr(s.addr))
				if w.Code != s.status {
					t.Fatalf("step %d: status %d, want %d: %s", i, w.Code, s.status, w.Body)
				}
				checkCommonHeaders(t, w)
				if s.status == 429 {
					limited++
					m := decodeObject(t, w.Body.Bytes())
					if got := w.Header().Get("Retry-After"); got != s.retry || m["errcode"] != "M_LIMIT_EXCEEDED" || m["retry_after_ms"].(float64) <= 0 {
						t.Errorf("step %d: Retry-After %q (want %s), answer %v", i, got, s.retry, m)
					}
				}
			}
			if h.Stats().RateLimited != limited {
				t.Errorf("stats %+v, want %d rate limited", h.Stats(), limited)
			}
			if limited > 0 && !strings.Contains(testkit.LogText(logs), "rate limited") {
				t.Errorf("no log: %s", testkit.LogText(logs))
			}
		})
	}
}

// TestRateLimitBeforeAuth: guessing the key is rate limited too.
func TestRateLimitBeforeAuth(t *testing.T) {
	h := newHandler(t, Config{APIKey: testKey, RateLimit: 1, RateBurst: 3, Now: newClock().Now})
	var codes []int
	for range 5 {
		codes = append(codes, serve(h, http.MethodPost, "/", "{}", withHeader("Authorization", "Bearer guess")).Code)
	}
	if fmt.Sprint(codes) != "[401 401 401 429 429]" {
		t.Errorf("codes %v", codes)
	}
}

// TestMatcherError: a matcher that cannot answer is a 503 with
// Retry-After, detail kept for the log; a fail-open Guard answers allow.
func TestMatcherError(t *testing.T) {
	down := &fakeMatcher{fn: func(matcher.Query) (matcher.Verdict, error) {
		return matcher.Verdict{}, fmt.Errorf("%w: http://hma.internal:5000 refused", matcher.ErrUnavailable)
	}}
	newGuard := func(policy matcher.FailPolicy) matcher.Matcher {
		g, err := matcher.NewGuard(matcher.GuardConfig{
			Local:      standardLocal(t),
			Remotes:    []matcher.Remote{{Name: "hma", Matcher: down}},
			FailPolicy: policy,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		return g
	}
	tests := []struct {
		name   string
		m      matcher.Matcher
		status int
		body   string
	}{
		{"backend down", down, 503, "hash lists unavailable"},
		{"other error", &fakeMatcher{fn: func(matcher.Query) (matcher.Verdict, error) {
			return matcher.Verdict{}, errors.New("boom at hma.internal")
		}}, 503, "lookup failed"},
		{"fail-closed guard", newGuard(matcher.FailClosed), 503, "hash lists unavailable"},
		{"fail-open guard", newGuard(matcher.FailOpen), 200, `"unscanned":true`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			log, logs := testkit.ObserveLogs()
			h := newHandler(t, Config{Matcher: tc.m, Logger: log})
			w := serve(h, http.MethodPost, "/", pluginBody(unlistedMD5, unlistedSHA1, unlistedSHA256), pluginHeaders)
			if w.Code != tc.status || !strings.Contains(w.Body.String(), tc.body) {
				t.Fatalf("status %d body %s", w.Code, w.Body)
			}
			checkCommonHeaders(t, w)
			if strings.Contains(w.Body.String(), "hma.internal") {
				t.Errorf("backend detail leaked: %s", w.Body)
			}
			s := h.Stats()
			if tc.status == 503 {
				m := decodeObject(t, w.Body.Bytes())
				if w.Header().Get("Retry-After") != "30" || m["errcode"] != "M_UNKNOWN" || s.Errors != 1 {
					t.Errorf("Retry-After %q, answer %v, stats %+v", w.Header().Get("Retry-After"), m, s)
				}
				if !strings.Contains(testkit.LogText(logs), "WARN lookup failed") || !strings.Contains(testkit.LogText(logs), "hma.internal") {
					t.Errorf("log lacks the detail: %s", testkit.LogText(logs))
				}
			} else if s.Allows != 1 || s.Unscanned != 1 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// TestBlockLogged: a block is logged at Info with who, where and which
// list, and only a prefix of the hash.
func TestBlockLogged(t *testing.T) {
	log, logs := testkit.ObserveLogs()
	h := newHandler(t, Config{Matcher: standardLocal(t), Logger: log})
	serve(h, http.MethodPost, "/", pluginBody(unlistedMD5, unlistedSHA1, listedSHA256), pluginHeaders)
	serve(h, http.MethodPost, "/", pluginBody(unlistedMD5, unlistedSHA1, unlistedSHA256), pluginHeaders)
	got := testkit.LogText(logs)
	for _, want := range []string{"INFO lookup blocked media", "@mallory:example.org", "!room:example.org", "$ev1:example.org",
		"sha256", "TEST_BANK", listedSHA256[:8]} {
		if !strings.Contains(got, want) {
			t.Errorf("log lacks %q: %s", want, got)
		}
	}
	if strings.Contains(got, listedSHA256) {
		t.Errorf("log holds the whole hash: %s", got)
	}
	if strings.Count(got, "\n") != 0 {
		t.Errorf("allow was logged: %s", got)
	}
}

// TestWarningsThrottled: a flood of bad requests logs one line a second
// and says how many it skipped.
func TestWarningsThrottled(t *testing.T) {
	clk := newClock()
	log, logs := testkit.ObserveLogs()
	h := newHandler(t, Config{Logger: log, Now: clk.Now})
	for range 50 {
		serve(h, http.MethodPost, "/", "{")
	}
	clk.advance(apigate.WarnInterval)
	serve(h, http.MethodPost, "/", "{")
	lines := strings.Split(testkit.LogText(logs), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "suppressed_since_last 49") {
		t.Errorf("log lines: %q", lines)
	}
	if h.Stats().BadRequests != 51 {
		t.Errorf("stats %+v", h.Stats())
	}
}

// TestConcurrent hammers one handler over a real bank from many goroutines
// (run with -race) and checks every answer and the counters.
func TestConcurrent(t *testing.T) {
	log, _ := testkit.ObserveLogs()
	h := newHandler(t, Config{Matcher: standardLocal(t), APIKey: testKey, RateLimit: 1e6, RateBurst: 1e6, Logger: log})
	const workers, each = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				md5, want := unlistedMD5, "allow"
				if (g+i)%2 == 0 {
					md5, want = listedMD5, "block"
				}
				w := serve(h, http.MethodPost, "/", pluginBody(md5, unlistedSHA1, unlistedSHA256),
					pluginHeaders, withHeader("Authorization", "Bearer "+testKey), fromAddr(fmt.Sprintf("192.0.2.%d:1", g)))
				if w.Code != 200 || !strings.Contains(w.Body.String(), `"action":"`+want+`"`) {
					errs <- fmt.Errorf("worker %d request %d: %d %s", g, i, w.Code, w.Body)
				}
				if i%10 == 0 {
					serve(h, http.MethodGet, "/?api_key="+url.QueryEscape(testKey), "")
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	s := h.Stats()
	if s.Blocks != workers*each/2 || s.Allows != workers*each/2 || s.HealthChecks != workers*each/10 ||
		s.Requests != s.Blocks+s.Allows+s.HealthChecks {
		t.Errorf("stats %+v", s)
	}
}

// TestStatsAddUp: every request lands in exactly one counter.
func TestStatsAddUp(t *testing.T) {
	h := newHandler(t, Config{Matcher: standardLocal(t), APIKey: testKey, RateLimit: 1, RateBurst: 5, Now: newClock().Now})
	auth := withHeader("Authorization", "Bearer "+testKey)
	serve(h, http.MethodPost, "/", pluginBody(listedMD5, unlistedSHA1, unlistedSHA256), auth)
	serve(h, http.MethodPost, "/", pluginBody(unlistedMD5, unlistedSHA1, unlistedSHA256), auth)
	serve(h, http.MethodPost, "/", "{", auth)
	serve(h, http.MethodPost, "/", "{}")
	serve(h, http.MethodGet, "/", "", auth)
	serve(h, http.MethodPost, "/", "{}", auth)
	want := Stats{Requests: 6, Blocks: 1, Allows: 1, BadRequests: 1, Unauthorized: 1, HealthChecks: 1, RateLimited: 1}
	if s := h.Stats(); s != want {
		t.Errorf("stats %+v, want %+v", s, want)
	}
}

func TestNewRejects(t *testing.T) {
	m := &fakeMatcher{}
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no matcher", Config{}},
		{"negative body limit", Config{Matcher: m, MaxBodyBytes: -1}},
		{"negative rate", Config{Matcher: m, RateLimit: -1}},
		{"NaN rate", Config{Matcher: m, RateLimit: math.NaN()}},
		{"infinite rate", Config{Matcher: m, RateLimit: math.Inf(1)}},
		{"negative burst", Config{Matcher: m, RateLimit: 1, RateBurst: -1}},
		{"key with spaces", Config{Matcher: m, APIKey: " key "}},
		{"key with a newline", Config{Matcher: m, APIKey: "a\nb"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil {
				t.Error("accepted")
			}
		})
	}
}

// TestLoggedFields: escaped strings are decoded and over-long ones clipped
// before they reach the log.
func TestLoggedFields(t *testing.T) {
	log, logs := testkit.ObserveLogs()
	h := newHandler(t, Config{Matcher: standardLocal(t), Logger: log})
	body := `{"hashes":{"md5":"` + listedMD5 + `"},"userId":"\u0040mallory:example.org","roomId":"!` + strings.Repeat("r", 1000) + `"}`
	if w := serve(h, http.MethodPost, "/", body); w.Code != 200 {
		t.Fatalf("status %d", w.Code)
	}
	got := testkit.LogText(logs)
	if !strings.Contains(got, " @mallory:example.org ") || strings.Contains(got, strings.Repeat("r", maxLoggedLen)) || !strings.Contains(got, "…") {
		t.Errorf("log %s", got)
	}
}

// TestClientGone: a lookup whose client went away is answered 503 without
// blaming the hash lists.
func TestClientGone(t *testing.T) {
	h := newHandler(t, Config{Matcher: standardLocal(t)})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	w := serve(h, http.MethodPost, "/", `{"hashes":{"md5":"`+listedMD5+`"}}`, func(r *http.Request) { *r = *r.WithContext(ctx) })
	if w.Code != 503 || !strings.Contains(w.Body.String(), "cancelled") {
		t.Errorf("status %d body %s", w.Code, w.Body)
	}
}
