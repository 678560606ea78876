package matcher

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/fakes"
)

// PDQ hashes of ThreatExchange's bridge-mods test pictures
// (https://github.com/facebook/ThreatExchange/tree/main/pdq/data/bridge-mods)
// as a real HMA 1.1.7 reported them, with the distances it reported
// between them.
const (
	// hmaBase is aaa-orig.jpg (banked as contents 1 and 3).
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

// newFakeHMA starts a fake with its index loaded and two banks: TEST_BANK
// holds contents 1 (hmaBase), 4 (hmaShrink) and 5 (hmaContrast),
// OTHER_BANK content 3 (hmaBase).
func newFakeHMA(t *testing.T) *fakes.HMA {
	t.Helper()
	f := fakes.NewHMA(t,
		fakes.HMAContent{Bank: "TEST_BANK", ID: 1, SignalType: "pdq", Signal: hmaBase},
		fakes.HMAContent{Bank: "OTHER_BANK", ID: 3, SignalType: "pdq", Signal: hmaBase},
		fakes.HMAContent{Bank: "TEST_BANK", ID: 4, SignalType: "pdq", Signal: hmaShrink},
		fakes.HMAContent{Bank: "TEST_BANK", ID: 5, SignalType: "pdq", Signal: hmaContrast},
	)
	f.SetBank("TEST_BANK", 1)
	f.SetBank("OTHER_BANK", 1)
	return f
}

// fakeLookupService is an httptest server imitating a lookup service that
// speaks the JSON contract of Mjolnir's HMA plugin
// (https://github.com/matrix-org/mjolnir/pull/617):
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
	raw      *fakes.Raw
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

func (f *fakeLookupService) setRaw(r *fakes.Raw) {
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

	if fakes.DelayOrRaw(w, r, time.Duration(f.delay.Load()), raw) {
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
