package lookupapi

import (
	"errors"
	"net/http"
	"testing"

	"github.com/mediaguard/mediaguard/matcher"
)

// Every request reaches OnAnswer exactly once, with the action it got and
// the API key check's outcome, and these agree with the status answered.
func TestOnAnswer(t *testing.T) {
	auth := withHeader("Authorization", "Bearer "+testKey)
	failing := &fakeMatcher{fn: func(matcher.Query) (matcher.Verdict, error) {
		return matcher.Verdict{}, errors.New("down")
	}}
	failOpen, err := matcher.NewGuard(matcher.GuardConfig{
		Local: standardLocal(t), Remotes: []matcher.Remote{{Name: "r", Matcher: failing}}, FailPolicy: matcher.FailOpen,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { failOpen.Close() })
	tests := []struct {
		name         string
		key          string // the handler's API key
		m            matcher.Matcher
		rate         float64
		method, body string
		opts         []reqOpt
		repeat       int // the answer of the last of this many requests counts
		status       int
		action, auth string
	}{
		{name: "block", key: testKey, method: "POST", body: pluginBody(listedMD5, unlistedSHA1, unlistedSHA256), opts: []reqOpt{auth}, status: 200, action: ActionBlock, auth: AuthOK},
		{name: "allow", key: testKey, method: "POST", body: pluginBody(unlistedMD5, unlistedSHA1, unlistedSHA256), opts: []reqOpt{auth}, status: 200, action: ActionAllow, auth: AuthOK},
		{name: "allow without a key configured", method: "POST", body: pluginBody(unlistedMD5, unlistedSHA1, unlistedSHA256), status: 200, action: ActionAllow, auth: AuthOff},
		{name: "unscanned", m: failOpen, method: "POST", body: pluginBody(unlistedMD5, unlistedSHA1, unlistedSHA256), status: 200, action: ActionUnscanned, auth: AuthOff},
		{name: "matcher error", m: failing, method: "POST", body: pluginBody(unlistedMD5, unlistedSHA1, unlistedSHA256), status: 503, action: ActionError, auth: AuthOff},
		{name: "health", key: testKey, method: "GET", opts: []reqOpt{auth}, status: 200, action: ActionHealth, auth: AuthOK},
		{name: "malformed", key: testKey, method: "POST", body: "{", opts: []reqOpt{auth}, status: 400, action: ActionBadRequest, auth: AuthOK},
		{name: "no hashes", method: "POST", body: "{}", status: 400, action: ActionBadRequest, auth: AuthOff},
		{name: "method", key: testKey, method: "DELETE", status: 405, action: ActionBadRequest, auth: AuthUnchecked},
		{name: "no key", key: testKey, method: "POST", body: "{}", status: 401, action: ActionUnauthorized, auth: AuthMissing},
		{name: "wrong key", key: testKey, method: "POST", body: "{}", opts: []reqOpt{withHeader("Authorization", "Bearer nope")}, status: 401, action: ActionUnauthorized, auth: AuthWrong},
		{name: "rate limited", key: testKey, rate: 1, method: "GET", opts: []reqOpt{auth}, repeat: 3, status: 429, action: ActionRateLimited, auth: AuthUnchecked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Answer
			m := tc.m
			if m == nil {
				m = standardLocal(t)
			}
			h := newHandler(t, Config{Matcher: m, APIKey: tc.key, RateLimit: tc.rate, Now: newClock().Now,
				OnAnswer: func(a Answer) { got = append(got, a) }})
			var w interface{ Result() *http.Response }
			for range max(tc.repeat, 1) {
				w = serve(h, tc.method, "/", tc.body, tc.opts...)
			}
			if st := w.Result().StatusCode; st != tc.status {
				t.Fatalf("status %d, want %d", st, tc.status)
			}
			if len(got) != max(tc.repeat, 1) {
				t.Fatalf("%d answers reported for %d requests", len(got), max(tc.repeat, 1))
			}
			last := got[len(got)-1]
			if last.Action != tc.action || last.Auth != tc.auth || last.Duration <= 0 {
				t.Errorf("answer %+v, want action %s auth %s and a duration", last, tc.action, tc.auth)
			}
		})
	}
}
