package hmaapi

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/matcher"
)

// TestLookup covers GET /m/lookup's answers and error shapes. Sources, all
// in https://github.com/facebook/ThreatExchange: HMA's matching blueprint
// (hasher-matcher-actioner/src/OpenMediaMatch/blueprints/matching.py:
// lookup_get and lookup group matches by bank as {"BANK":
// [{"bank_content_id": N, "distance": "D"}]}, the distance being
// similarity_info.pretty_str(), a string; "Either url or both signal and
// signal_type are required"; "No such SignalType '…'"; "invalid signal:
// …"; banks split on commas, a bank HMA lacks simply absent, so {}), and
// python-threatexchange (signal_type/pdq/signal.py: a PDQ signal must
// match ^[0-9a-f]{64}$, so uppercase is invalid, and its threshold is 31;
// signal_type/md5.py: a video MD5 is stripped and lower-cased first;
// exact matches print their distance as "-").
func TestLookup(t *testing.T) {
	e := newEnv(t, envOpt{})
	P := e.pdq.String()
	id := func(bank string, typ matcher.HashType, hash string) int64 { return ContentID(bank, typ, hash) }
	pdqBoth := func(d string) string {
		return fmt.Sprintf(`{"OTHER_BANK":[{"bank_content_id":%d,"distance":"%s"}],"TEST_BANK":[{"bank_content_id":%d,"distance":"%s"}]}`,
			id("OTHER_BANK", matcher.PDQ, P), d, id("TEST_BANK", matcher.PDQ, P), d)
	}
	exact := func(typ matcher.HashType, hash string) string {
		return fmt.Sprintf(`{"TEST_BANK":[{"bank_content_id":%d,"distance":"-"}]}`, id("TEST_BANK", typ, hash))
	}
	tests := []struct {
		name   string
		query  string
		status int
		body   string // the exact answer, without the trailing newline
	}{
		{"pdq, the banked hash", "signal_type=pdq&signal=" + P, 200, pdqBoth("0")},
		{"pdq at distance 8", "signal_type=pdq&signal=" + flip(e.pdq, 8).String(), 200, pdqBoth("8")},
		{"pdq at distance 31 matches", "signal_type=pdq&signal=" + flip(e.pdq, 31).String(), 200, pdqBoth("31")},
		{"pdq at distance 32 does not", "signal_type=pdq&signal=" + flip(e.pdq, 32).String(), 200, `{}`},
		{"banks restricts the answer", "signal_type=pdq&signal=" + P + "&banks=TEST_BANK", 200,
			fmt.Sprintf(`{"TEST_BANK":[{"bank_content_id":%d,"distance":"0"}]}`, id("TEST_BANK", matcher.PDQ, P))},
		{"banks lists several", "signal_type=pdq&signal=" + P + "&banks=NOPE,OTHER_BANK,TEST_BANK", 200, pdqBoth("0")},
		{"a bank that does not exist is silence", "signal_type=pdq&signal=" + P + "&banks=NOPE", 200, `{}`},
		{"bank names are not trimmed", "signal_type=pdq&signal=" + P + "&banks=%20TEST_BANK", 200, `{}`},
		{"video_md5 is exact: distance -", "signal_type=video_md5&signal=" + md5hex(bankedVideo), 200, exact(matcher.VideoMD5, md5hex(bankedVideo))},
		{"video_md5 is lower-cased and stripped", "signal_type=video_md5&signal=%20" + strings.ToUpper(md5hex(bankedVideo)) + "%20", 200,
			exact(matcher.VideoMD5, md5hex(bankedVideo))},
		{"md5 (mediaguard's extension)", "signal_type=md5&signal=" + bankedFileMD5, 200, exact(matcher.MD5, bankedFileMD5)},
		{"sha1 (extension)", "signal_type=sha1&signal=" + bankedSHA1, 200, exact(matcher.SHA1, bankedSHA1)},
		{"sha256 (extension)", "signal_type=sha256&signal=" + bankedSHA256, 200, exact(matcher.SHA256, bankedSHA256)},
		{"no match", "signal_type=sha256&signal=" + sha256hex([]byte("clean")), 200, `{}`},
		{"uppercase pdq", "signal_type=pdq&signal=" + strings.ToUpper(P), 400, `{"message":"invalid signal: invalid PDQ hash"}`},
		{"short pdq", "signal_type=pdq&signal=abc", 400, `{"message":"invalid signal: invalid PDQ hash"}`},
		{"pdq with spaces", "signal_type=pdq&signal=%20" + P, 400, `{"message":"invalid signal: invalid PDQ hash"}`},
		{"bad md5", "signal_type=video_md5&signal=xyz", 400, `{"message":"invalid signal: not a valid MD5 hash"}`},
		{"unknown signal type", "signal_type=foo&signal=" + P, 400, `{"message":"No such SignalType 'foo'"}`},
		{"no parameters", "", 400, `{"message":"Either url or both signal and signal_type are required"}`},
		{"no signal", "signal_type=pdq", 400, `{"message":"Either url or both signal and signal_type are required"}`},
		// What policyserv asks after /h/hash answered "" (quality < 50).
		{"empty pdq signal", "signal_type=pdq&signal=", 400, `{"message":"Either url or both signal and signal_type are required"}`},
		{"url form", "url=http://127.0.0.1:1/a.jpg", 400, `{"message":"` + msgNoURL + `"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := do(e.h, http.MethodGet, "/m/lookup?"+tc.query, nil)
			if w.Code != tc.status || w.Body.String() != tc.body+"\n" {
				t.Errorf("%d %s\nwant %d %s", w.Code, w.Body, tc.status, tc.body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

// TestLookupFailPolicy: a remote backend that cannot answer, under each
// on_matcher_error. Closed is a 503 whose body is no object (policyserv,
// content/hma.go in https://github.com/matrix-org/policyserv, decodes the
// answer into a map without checking the status and takes every key as a
// matched bank: an object would read as "no match" there, a list fails
// its decoding, so it counts the media as prohibited); open is {} as for
// no match, logged and counted. A local match stands either way.
func TestLookupFailPolicy(t *testing.T) {
	clean := "signal_type=sha256&signal=" + sha256hex([]byte("clean"))
	for _, policy := range []matcher.FailPolicy{matcher.FailClosed, matcher.FailOpen} {
		t.Run(policy.String(), func(t *testing.T) {
			log, logs := testkit.ObserveLogs()
			remote := &fakeRemote{err: fmt.Errorf("%w: hma down (connection refused)", matcher.ErrUnavailable)}
			var answers []Answer
			e := newEnv(t, envOpt{remote: remote, policy: policy, cfg: Config{Logger: log, OnAnswer: func(a Answer) { answers = append(answers, a) }}})
			w := do(e.h, http.MethodGet, "/m/lookup?"+clean, nil)
			if policy == matcher.FailClosed {
				if w.Code != 503 || w.Body.String() != `[{"message":"hash lists unavailable: a matching backend could not be consulted, try again later"}]`+"\n" ||
					w.Header().Get("Retry-After") == "" {
					t.Errorf("%d %s (Retry-After %q)", w.Code, w.Body, w.Header().Get("Retry-After"))
				}
				if _, err := policyservLookup(w.Body.Bytes()); err == nil {
					t.Error("policyserv's decoding reads the 503 as an answer")
				}
				if answers[0].Outcome != OutcomeUnavailable {
					t.Errorf("outcome %s", answers[0].Outcome)
				}
				if strings.Contains(w.Body.String(), "connection refused") {
					t.Error("backend detail in the answer")
				}
			} else {
				if w.Code != 200 || w.Body.String() != "{}\n" || answers[0].Outcome != OutcomeUnscanned {
					t.Errorf("%d %s %+v", w.Code, w.Body, answers)
				}
				if !strings.Contains(testkit.LogText(logs), "without every backend consulted") {
					t.Errorf("fail-open not logged: %s", testkit.LogText(logs))
				}
			}
			// The banked hash matches locally whatever the remote does.
			w = do(e.h, http.MethodGet, "/m/lookup?signal_type=sha256&signal="+bankedSHA256, nil)
			if w.Code != 200 || !strings.Contains(w.Body.String(), `"TEST_BANK"`) {
				t.Errorf("local match with the remote down: %d %s", w.Code, w.Body)
			}
		})
	}
}

// policyservLookup decodes an /m/lookup answer exactly as policyserv's
// HMAScanner.lookup does (content/hma.go in
// https://github.com/matrix-org/policyserv): into a map[string]any,
// whatever the status, every key a matched bank.
func policyservLookup(body []byte) ([]string, error) {
	lookup := map[string]any{}
	if err := json.NewDecoder(strings.NewReader(string(body))).Decode(&lookup); err != nil {
		return nil, err
	}
	var banks []string
	for b := range lookup {
		banks = append(banks, b)
	}
	return banks, nil
}

// TestLookupAllBanks: a local match does not hide a remote bank's, since
// clients pick the banks that count (policyserv's
// PS_HMA_FILTER_ENABLED_BANKS); HMA's own ids pass through.
func TestLookupAllBanks(t *testing.T) {
	remote := &fakeRemote{}
	e := newEnv(t, envOpt{remote: remote, policy: matcher.FailClosed})
	remote.set(matcher.Verdict{Match: true, Bank: "NCMEC", Evidence: []matcher.Evidence{
		{Bank: "NCMEC", HashType: matcher.PDQ, Hash: e.pdq.String(), Distance: 2, Label: "hma content 4242", Source: "hma:NCMEC"},
		{Bank: "NCMEC", HashType: matcher.PDQ, Hash: e.pdq.String(), Distance: 5, Label: "hma content 7", Source: "hma:NCMEC"},
	}}, nil)
	w := do(e.h, http.MethodGet, "/m/lookup?signal_type=pdq&signal="+e.pdq.String(), nil)
	var got map[string][]bankMatch
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || len(got["NCMEC"]) != 2 || got["NCMEC"][0] != (bankMatch{4242, "2"}) || got["NCMEC"][1] != (bankMatch{7, "5"}) {
		t.Errorf("answer %s", w.Body)
	}
	// Remote down after a local match: the local match is the answer.
	remote.set(matcher.Verdict{}, matcher.ErrUnavailable)
	w = do(e.h, http.MethodGet, "/m/lookup?signal_type=sha1&signal="+bankedSHA1, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "TEST_BANK") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// TestLookupAsHMAClient: mediaguard's own HMA client (matcher.HMA, built
// against HMA 1.1.7) reads this surface as it reads HMA: matches, "-"
// distances, no match, and the bank check against GET /c/banks.
func TestLookupAsHMAClient(t *testing.T) {
	e := newEnv(t, envOpt{})
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	c, err := matcher.NewHMA(matcher.HMAConfig{URL: srv.URL, Banks: []string{"TEST_BANK", "OTHER_BANK"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Match(context.Background(), matcher.Query{Has: matcher.HasPDQ, PDQ: flip(e.pdq, 3), PDQQuality: 100})
	if err != nil || !v.Match || v.Distance != 3 || len(v.Evidence) != 2 {
		t.Errorf("pdq: %+v %v", v, err)
	}
	var q matcher.Query
	q.Has, q.Kind = matcher.HasMD5, matcher.KindVideo
	copy(q.MD5[:], mustHex(t, md5hex(bankedVideo)))
	if v, err := c.Match(context.Background(), q); err != nil || !v.Match || v.HashType != matcher.VideoMD5 || v.Bank != "TEST_BANK" {
		t.Errorf("video_md5: %+v %v", v, err)
	}
	if v, err := c.Match(context.Background(), matcher.Query{Has: matcher.HasPDQ, PDQ: flip(e.pdq, 40), PDQQuality: 100}); err != nil || v.Match {
		t.Errorf("no match: %+v %v", v, err)
	}
	st, err := c.CheckBanks(context.Background())
	if err != nil || len(st.Missing) != 0 {
		t.Errorf("bank check: %+v %v", st, err)
	}
	if err := c.Probe(context.Background()); err != nil {
		t.Errorf("probe: %v", err)
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLookupCancelled: a client gone mid-lookup gets no verdict.
func TestLookupCancelled(t *testing.T) {
	e := newEnv(t, envOpt{remote: &fakeRemote{}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	req := httptest.NewRequest(http.MethodGet, "/m/lookup?signal_type=sha1&signal="+sha1hex([]byte("x")), nil).WithContext(ctx)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, req)
	if w.Code != 503 || !strings.HasPrefix(w.Body.String(), "[") {
		t.Errorf("%d %s", w.Code, w.Body)
	}
}

// TestLookupLeavesOutReportOnly: a bank in report mode never blocks, and
// policyserv takes every bank named in /m/lookup as a hit, so a
// report-only bank is never named: beside an enforcing bank that holds the
// same hash the answer names the enforcing one only, and alone the answer
// is no match.
func TestLookupLeavesOutReportOnly(t *testing.T) {
	for _, tc := range []struct {
		report []string
		want   string
	}{
		{[]string{"OTHER_BANK"}, "TEST_BANK"},
		{[]string{"OTHER_BANK", "TEST_BANK"}, ""},
	} {
		e := newEnv(t, envOpt{report: tc.report})
		w := do(e.h, http.MethodGet, "/m/lookup?signal_type=pdq&signal="+e.pdq.String(), nil)
		var got map[string][]bankMatch
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
			t.Fatalf("%d %s: %v", w.Code, w.Body, err)
		}
		names := make([]string, 0, len(got))
		for b := range got {
			names = append(names, b)
		}
		if strings.Join(names, ",") != tc.want {
			t.Errorf("report %v: banks named %v, want %q (%s)", tc.report, names, tc.want, w.Body)
		}
	}
}
