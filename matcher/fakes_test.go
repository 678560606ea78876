package matcher

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// PDQ hashes recorded in hma-api-transcript.txt, with the distances HMA
// reported between them.
const (
	// hmaBase is aaa-orig.jpg (content 1 and 3 in the transcript).
	hmaBase = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
	// hmaNear8 is at distance 8 from hmaBase.
	hmaNear8 = "d8faf08ee0f4a84b06370a22038f63f4b36e2ed596621e0d23e6b39d4e9c9b22"
	// hmaShrink is shrink-a-lot.jpg (content 4), distance 16 from hmaBase.
	hmaShrink = "d0f8f1ccc0f4a84d0a370a3a228f67f0b36e2ed5b6623e1d33e6339c4e9c9b22"
	// hmaContrast is high-contrast.jpg (content 5), distance 6 from hmaBase.
	hmaContrast = "f8f8f0cee0f4a84f06370a2a068f67f0b36e26d596621e1d33e6339c4e9c9b22"
	// hmaDist31 and hmaDist32 are at distance 31 (matches) and 32 (does
	// not) from hmaBase.
	hmaDist31 = "e8f8f09ce0d4885707338a620b0f67f0a36a66df96601e0d37e6b39c4b9c9bc7"
	hmaDist32 = "ebf1f0cef0b4a84304372a30038f0370f34f7ad59762121d3ae6339c0c9c9b82"
	// hmaFar is at distance 40 from hmaBase: HMA answers {}.
	hmaFar = "6a3872ece5e4b80f577f162203cf73f3376e3a4536623f1d73e7a39c4e9c9a22"
)

// fakeHMAContent is one banked signal.
type fakeHMAContent struct {
	bank       string
	id         int64
	signalType string // "pdq" or "video_md5"
	signal     string // lowercase hex
	disabled   bool
}

// fakeHMA is an httptest server imitating the part of ThreatExchange HMA 2.0
// that the HMA client uses. Each behaviour follows a documented fact:
//
//   - GET /status answers 200 "I-AM-ALIVE" as text/html, and 503
//     "INDEX-NOT-LOADED" until the index is loaded (transcript "GET /status";
//     hma.md "Observed": "Until the index is loaded: /status → 503
//     INDEX-NOT-LOADED, lookups → 503").
//   - GET /m/lookup?signal_type=&signal=[&banks=A,B] answers
//     {"BANK":[{"bank_content_id":N,"distance":"D"}]}: grouped by bank,
//     distance a STRING, entries not sorted by distance, {} for no match,
//     disabled content dropped (hma.md REST table and "Observed"; transcript
//     "GET /m/lookup near hash", "no match", "for disabled content").
//   - PDQ matches at distance <= 31, not 32 (transcript "distance 31",
//     "distance 32").
//   - Hex is lowercase only: uppercase is 400 {"message":"invalid signal:
//     invalid PDQ hash"} (transcript "uppercase hex"); so is anything not 64
//     hex digits (transcript "invalid hash").
//   - Unknown signal_type is 400 {"message":"No such SignalType 'foo'"}, and
//     no signal is 400 "Either url or both signal and signal_type are
//     required" (transcript "unknown signal_type", "missing params").
//   - Lookups answer 503 {"message":"index not yet ready"} until the index
//     is loaded (hma.md second run: "right after start, lookups answer 503
//     {"message":"index not yet ready"}").
//   - GET /c/banks lists every bank, empty ones too, as
//     [{"matching_enabled_ratio":1.0,"name":"TEST_BANK"},...] (transcript
//     "GET /c/banks"); a deleted bank is gone from it (transcript "DELETE
//     /c/bank/OTHER_BANK", then "GET /c/banks"). A bank with ratio 0 is
//     left out of /m/lookup answers (transcript "after OTHER_BANK ratio
//     0"). noCurator plays an instance without the curator role, which has
//     no /c/ routes at all (upstream app.py registers curation.bp only with
//     ROLE_CURATOR): 404.
//   - GET /readyz answers 200 "READY", or 503 "INDEX-NOT-LOADED" until the
//     index is loaded (hma.md: "/livez and /readyz exist (1.1.5+)"; the
//     words are upstream app.py's, as for /status). noReadyz plays an HMA
//     before 1.1.5, which has no /readyz: 404.
//   - HMA has no authentication of its own (hma.md); when token is set the
//     fake plays the token-checking proxy deployments put in front, which
//     answers 401 to a wrong or missing bearer token.
//   - video_md5 signals match exactly and answer "distance":"-", not a
//     number (hma.md second run: "Exact signal types answer "distance":"-"";
//     transcript "video_md5&signal=fd7d..."). They are assumed to be 32
//     lowercase hex digits (not recorded).
//   - A banks= naming a bank HMA does not have is silence: 200 {} (hma.md
//     second run: "banks=NOPE → 200 {}"); the fake filters by name, so an
//     unknown name simply matches nothing.
//
// Test-only modes (raw answers, delays) are marked as such.
type fakeHMA struct {
	*httptest.Server
	t *testing.T

	token  string
	loaded atomic.Bool
	// noCurator makes /c/ routes 404, like an HMA without the curator role.
	noCurator atomic.Bool
	// noReadyz makes /readyz 404, like an HMA before 1.1.5.
	noReadyz atomic.Bool
	// delay, when set, is waited before answering lookups (slow mode); the
	// wait ends early if the client goes away.
	delay atomic.Int64

	mu       sync.Mutex
	contents []fakeHMAContent
	// banks maps bank names to their matching_enabled_ratio; a bank also
	// exists while it holds content.
	banks map[string]float64
	// raw, when set, replaces the lookup answer (test-only mode for
	// malformed or wrong-shape answers and odd statuses).
	raw *fakeRaw
	// queries records the query string of every lookup.
	queries []url.Values

	lookups, bankLists, readyChecks atomic.Int64
}

// fakeRaw is a canned HTTP answer.
type fakeRaw struct {
	status      int
	contentType string
	body        string
}

var lowerHex = regexp.MustCompile(`^[0-9a-f]+$`)

// newFakeHMA starts a fake with its index loaded and the transcript's banks:
// TEST_BANK holds contents 1 (hmaBase), 4 (hmaShrink) and 5 (hmaContrast),
// OTHER_BANK content 3 (hmaBase).
func newFakeHMA(t *testing.T) *fakeHMA {
	t.Helper()
	f := &fakeHMA{t: t, banks: map[string]float64{"TEST_BANK": 1, "OTHER_BANK": 1}}
	f.loaded.Store(true)
	f.contents = []fakeHMAContent{
		{bank: "TEST_BANK", id: 1, signalType: "pdq", signal: hmaBase},
		{bank: "OTHER_BANK", id: 3, signalType: "pdq", signal: hmaBase},
		{bank: "TEST_BANK", id: 4, signalType: "pdq", signal: hmaShrink},
		{bank: "TEST_BANK", id: 5, signalType: "pdq", signal: hmaContrast},
	}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeHMA) setContents(c ...fakeHMAContent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contents = c
}

// setBank creates a bank or changes its matching_enabled_ratio.
func (f *fakeHMA) setBank(name string, ratio float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.banks[name] = ratio
}

// deleteBank removes a bank and its content, as DELETE /c/bank/NAME does.
func (f *fakeHMA) deleteBank(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.banks, name)
	f.contents = slices.DeleteFunc(f.contents, func(c fakeHMAContent) bool { return c.bank == name })
}

// bankRatios returns every bank's ratio: the created ones and those
// holding content.
func (f *fakeHMA) bankRatios() map[string]float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := maps.Clone(f.banks)
	for _, c := range f.contents {
		if _, ok := out[c.bank]; !ok {
			out[c.bank] = 1
		}
	}
	return out
}

func (f *fakeHMA) setRaw(r *fakeRaw) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raw = r
}

func (f *fakeHMA) setDelay(d time.Duration) { f.delay.Store(int64(d)) }

func (f *fakeHMA) lastQuery() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return nil
	}
	return f.queries[len(f.queries)-1]
}

func writeHMAError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (f *fakeHMA) serve(w http.ResponseWriter, r *http.Request) {
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		writeHMAError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/status":
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if !f.loaded.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "INDEX-NOT-LOADED")
			return
		}
		_, _ = io.WriteString(w, "I-AM-ALIVE")
	case r.Method == http.MethodGet && r.URL.Path == "/readyz" && !f.noReadyz.Load():
		f.readyChecks.Add(1)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if !f.loaded.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = io.WriteString(w, "INDEX-NOT-LOADED")
			return
		}
		_, _ = io.WriteString(w, "READY")
	case strings.HasPrefix(r.URL.Path, "/c/") && f.noCurator.Load():
		writeHMAError(w, http.StatusNotFound, "not found")
	case r.Method == http.MethodGet && r.URL.Path == "/c/banks":
		f.bankLists.Add(1)
		type bank struct {
			Ratio float64 `json:"matching_enabled_ratio"`
			Name  string  `json:"name"`
		}
		list := []bank{}
		for name, ratio := range f.bankRatios() {
			list = append(list, bank{ratio, name})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	case r.Method == http.MethodGet && r.URL.Path == "/m/lookup":
		f.lookup(w, r)
	default:
		writeHMAError(w, http.StatusNotFound, "not found")
	}
}

func (f *fakeHMA) lookup(w http.ResponseWriter, r *http.Request) {
	f.lookups.Add(1)
	qv := r.URL.Query()
	f.mu.Lock()
	f.queries = append(f.queries, qv)
	raw := f.raw
	contents := append([]fakeHMAContent(nil), f.contents...)
	f.mu.Unlock()
	ratios := f.bankRatios()

	if delayOrRaw(w, r, time.Duration(f.delay.Load()), raw) {
		return
	}
	signalType, signal := qv.Get("signal_type"), qv.Get("signal")
	if signalType == "" || signal == "" {
		writeHMAError(w, http.StatusBadRequest, "Either url or both signal and signal_type are required")
		return
	}
	var probe pdq.Hash
	switch signalType {
	case "pdq":
		if len(signal) != 64 || !lowerHex.MatchString(signal) {
			writeHMAError(w, http.StatusBadRequest, "invalid signal: invalid PDQ hash")
			return
		}
		probe, _ = pdq.ParseHex(signal)
	case "video_md5":
		if len(signal) != 32 || !lowerHex.MatchString(signal) {
			writeHMAError(w, http.StatusBadRequest, "invalid signal: invalid video_md5")
			return
		}
	default:
		writeHMAError(w, http.StatusBadRequest, fmt.Sprintf("No such SignalType '%s'", signalType))
		return
	}
	if !f.loaded.Load() {
		writeHMAError(w, http.StatusServiceUnavailable, "index not yet ready")
		return
	}
	var banks map[string]bool
	if b := qv.Get("banks"); b != "" {
		banks = make(map[string]bool)
		for _, name := range strings.Split(b, ",") {
			banks[name] = true
		}
	}

	type entry struct {
		ID       int64  `json:"bank_content_id"`
		Distance string `json:"distance"`
	}
	out := map[string][]entry{}
	for _, c := range contents {
		if c.signalType != signalType || c.disabled || (banks != nil && !banks[c.bank]) || ratios[c.bank] == 0 {
			continue
		}
		d := "-" // HMA's distance for an exact signal type
		if signalType == "pdq" {
			h, err := pdq.ParseHex(c.signal)
			if err != nil {
				f.t.Errorf("fakeHMA: bad banked hash %q", c.signal)
				continue
			}
			n := pdq.Distance(probe, h)
			if n > 31 {
				continue
			}
			d = fmt.Sprint(n)
		} else if c.signal != signal {
			continue
		}
		out[c.bank] = append(out[c.bank], entry{ID: c.id, Distance: d})
	}
	// HMA does not sort by distance; neither does the fake (largest id
	// first), so a client relying on order would pick the wrong content.
	for _, es := range out {
		sort.Slice(es, func(i, j int) bool { return es[i].ID > es[j].ID })
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// fakeLookupService is an httptest server imitating a lookup service that
// speaks the Mjolnir HMA plugin's contract (matrix.md "The HMA plugin's
// contract"):
//
//   - POST with Content-Type application/json and a body
//     {"hashes":{"md5","sha1","sha256","pdq"},"eventId","roomId","userId",
//     "mediaType","timestamp"}, any field possibly missing.
//   - Answers {"action":"block","reason","matchedHash","hashType",
//     "confidence"} or {"action":"allow",...}.
//   - The plugin sends no credentials; mediaguard's lookup API accepts its
//     key as a bearer token, which the fake checks when token is set (401
//     otherwise).
//
// It decodes the request into a generic map, not lookupwire.Request, so the test
// sees the JSON keys actually sent. Canned answers and delays are test-only.
type fakeLookupService struct {
	*httptest.Server
	token string
	// block maps lowercase hex digests to their hash type.
	block map[string]string
	delay atomic.Int64

	mu       sync.Mutex
	raw      *fakeRaw
	requests []map[string]any
	headers  []http.Header

	calls atomic.Int64
}

func newFakeLookupService(t *testing.T) *fakeLookupService {
	t.Helper()
	f := &fakeLookupService{block: map[string]string{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeLookupService) setRaw(r *fakeRaw) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raw = r
}

func (f *fakeLookupService) last() (map[string]any, http.Header) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return nil, nil
	}
	return f.requests[len(f.requests)-1], f.headers[len(f.headers)-1]
}

func (f *fakeLookupService) serve(w http.ResponseWriter, r *http.Request) {
	f.calls.Add(1)
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if f.token != "" && r.Header.Get("Authorization") != "Bearer "+f.token {
		http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
		return
	}
	var req map[string]any
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.headers = append(f.headers, r.Header.Clone())
	raw := f.raw
	f.mu.Unlock()

	if delayOrRaw(w, r, time.Duration(f.delay.Load()), raw) {
		return
	}
	answer := map[string]any{"action": "allow", "reason": "no match", "matchedHash": "", "hashType": "", "confidence": 0}
	hashes, _ := req["hashes"].(map[string]any)
	for _, k := range []string{"md5", "sha1", "sha256", "pdq"} {
		h, _ := hashes[k].(string)
		if t, ok := f.block[strings.ToLower(h)]; ok && h != "" {
			answer = map[string]any{"action": "block", "reason": "known CSAM hash", "matchedHash": strings.ToLower(h), "hashType": t, "confidence": 0.95, "bank": "FAKE_BANK"}
			break
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(answer)
}

// fakeBackend is an in-process Matcher whose answer a test scripts; it
// counts calls and can block until released or until its context ends.
type fakeBackend struct {
	calls    atomic.Int64
	returned atomic.Int64

	mu sync.Mutex
	fn func(ctx context.Context, q Query) (Verdict, error)
}

func newFakeBackend(fn func(ctx context.Context, q Query) (Verdict, error)) *fakeBackend {
	return &fakeBackend{fn: fn}
}

func (f *fakeBackend) set(fn func(ctx context.Context, q Query) (Verdict, error)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fn = fn
}

func (f *fakeBackend) Match(ctx context.Context, q Query) (Verdict, error) {
	f.calls.Add(1)
	defer f.returned.Add(1)
	f.mu.Lock()
	fn := f.fn
	f.mu.Unlock()
	return fn(ctx, q)
}

// answer returns a scripted backend function that always gives v, err.
func answer(v Verdict, err error) func(context.Context, Query) (Verdict, error) {
	return func(context.Context, Query) (Verdict, error) { return v, err }
}

// blockUntilDone returns a backend function that waits for its context to
// end and returns its error, like an HTTP client would.
func blockUntilDone(ctx context.Context, _ Query) (Verdict, error) {
	<-ctx.Done()
	return Verdict{}, ctx.Err()
}

// remoteMatch is a verdict as a remote backend named src would give it.
func remoteMatch(src string) Verdict {
	return Verdict{
		Match: true, Bank: "B", HashType: MD5, MatchedHash: "00", Confidence: 1,
		Source: src, Reason: "matched by " + src,
		Evidence: []Evidence{{Bank: "B", HashType: MD5, Hash: "00", Source: src}},
	}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// delayOrRaw applies a fake's configured delay and canned answer; it
// reports whether the request has been answered (or abandoned).
func delayOrRaw(w http.ResponseWriter, r *http.Request, delay time.Duration, raw *fakeRaw) bool {
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return true
		}
	}
	if raw == nil {
		return false
	}
	if raw.contentType != "" {
		w.Header().Set("Content-Type", raw.contentType)
	}
	w.WriteHeader(raw.status)
	_, _ = io.WriteString(w, raw.body)
	return true
}
