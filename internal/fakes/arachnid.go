package fakes

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// Arachnid is an httptest server playing the part of the Canadian Centre
// for Child Protection's Arachnid Shield API, for the one endpoint
// mediaguard uses: the hash-only PDQ lookup. Every fact below is from the
// public Python SDK,
// https://github.com/CdnCentreForChildProtection/arachnid-shield-sdk-python:
//
//   - Authentication is HTTP Basic with the account's username and
//     password (arachnid_shield_sdk/api/client.py,
//     httpx.BasicAuth(username=..., password=...)); without them the
//     service answers an error whose detail is "Please supply your API
//     username and password in the Authorization header"
//     (tests/test_api.py test_scan_unauthorized). The fake answers it with
//     401 and a WWW-Authenticate challenge, as Basic authentication does
//     (RFC 7617).
//   - POST {base}/v1/pdq/ with Content-Type application/json and a body
//     {"hashes": [...]}, a list of base64-encoded PDQ hashes
//     (api/v1.py scan_pdq_hashes(); models/scanned_pdq.py
//     ScanMediaFromPdq). The fake decodes each as standard base64 of the
//     32 hash bytes, most significant bit first, as the SDK's own fixture
//     builds one (tests/conftest.py: base64.b64encode(np.packbits(hash_))).
//   - The answer is {"scanned_hashes": {QUERY: PDQMatch}} keyed by each
//     query exactly as sent (tests/test_api.py test_scan_pdq_hashes:
//     `example_image_pdq_b64encoded in scanned_hashes.scanned_hashes`),
//     where PDQMatch is {"classification", "match_type",
//     "near_match_details"} (models/scanned_pdq.py PDQMatch): for a match,
//     the banked item's classification ("csam" or
//     "harmful-abusive-material", models/media_classification.py),
//     match_type "near" and near_match_details {"timestamp": 0.0,
//     "sha1_base32", "sha256_hex", "classification"}
//     (models/scanned_media.py NearMatchDetail); for none,
//     classification "no-known-match" with match_type and
//     near_match_details null, or, with NullForNoMatch, the value null
//     (ScannedPDQHashes' docstring: "If no match was found for a query PDQ,
//     the value corresponding to the query PDQ is `null`").
//   - Errors (any 4xx or 5xx) carry {"detail": "..."}
//     (models/error_detail.py ErrorDetail; api/v1.py raises it on
//     is_client_error or is_server_error).
//
// What the SDK does not say, the fake chooses and says so: a hash that is
// not base64 of 32 bytes, or a body that is not the request above, is 400
// with a detail; a PDQ hash matches a banked one within Hamming distance 31
// (the service does not publish its threshold; 31 is HMA's and
// mediaguard's default). The media and URL scans (/v1/media/, /v1/url/)
// would send the service the media itself: mediaguard must never call
// them, so the fake records such a call and answers 404.
//
// Every request is recorded whole (Requests), so a test can check that
// nothing but PDQ hashes ever leaves. Test-only modes (SetRaw's canned
// answers, SetDelay, Down) are marked as such.
type Arachnid struct {
	*httptest.Server
	tb testing.TB

	// Username and Password are the credentials the fake accepts; set
	// them before the first request.
	Username, Password string
	// NullForNoMatch answers null for a hash with no match, rather than a
	// "no-known-match" object.
	NullForNoMatch atomic.Bool
	// PDQLookups counts the POST /v1/pdq/ requests answered (auth
	// refusals included).
	PDQLookups atomic.Int64

	delay atomic.Int64 // time.Duration

	mu       sync.Mutex
	banked   []ArachnidItem
	raw      *Raw
	requests []ArachnidRequest
}

// ArachnidItem is one known item in the fake's database.
type ArachnidItem struct {
	// PDQ is the item's PDQ hash in hex.
	PDQ string
	// Classification is "csam", "harmful-abusive-material" or any other
	// word (a classification added after mediaguard was written).
	Classification string
	// SHA256Hex and SHA1Base32 identify the item (near_match_details).
	SHA256Hex, SHA1Base32 string
}

// ArachnidRequest is one request the fake received, whole.
type ArachnidRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// NewArachnid starts a fake Arachnid Shield accepting user/password and
// knowing items. It is closed when tb ends.
func NewArachnid(tb testing.TB, user, password string, items ...ArachnidItem) *Arachnid {
	tb.Helper()
	f := &Arachnid{tb: tb, Username: user, Password: password, banked: items}
	f.Server = httptest.NewServer(f)
	tb.Cleanup(f.Close)
	return f
}

// SetItems replaces the known items.
func (f *Arachnid) SetItems(items ...ArachnidItem) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.banked = items
}

// SetRaw makes every PDQ lookup answer r after authentication
// (test-only: malformed answers, odd statuses); nil restores real answers.
func (f *Arachnid) SetRaw(r *Raw) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raw = r
}

// SetDelay makes lookups wait d before answering (test-only: a slow
// service); the wait ends early if the client goes away.
func (f *Arachnid) SetDelay(d time.Duration) { f.delay.Store(int64(d)) }

// Requests returns every request received so far, in order.
func (f *Arachnid) Requests() []ArachnidRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]ArachnidRequest(nil), f.requests...)
}

// SentHashes returns the hashes of every PDQ lookup received, in order,
// one list per request.
func (f *Arachnid) SentHashes() [][]string {
	var out [][]string
	for _, r := range f.Requests() {
		var body struct {
			Hashes []string `json:"hashes"`
		}
		if r.Path == "/v1/pdq/" && json.Unmarshal(r.Body, &body) == nil {
			out = append(out, body.Hashes)
		}
	}
	return out
}

// Down closes the fake's listener, so connections are refused, and
// returns the function that serves it again on the same address
// (test-only: a service that goes away and comes back).
func (f *Arachnid) Down(tb testing.TB) (up func()) {
	return down(tb, &f.Server, f)
}

// ArachnidError writes the service's error shape, {"detail": msg}.
func ArachnidError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"detail": msg})
}

// ServeHTTP answers one request as described on Arachnid.
func (f *Arachnid) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	f.mu.Lock()
	f.requests = append(f.requests, ArachnidRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	raw := f.raw
	f.mu.Unlock()

	if r.URL.Path != "/v1/pdq/" || r.Method != http.MethodPost {
		ArachnidError(w, http.StatusNotFound, "Not found.")
		return
	}
	f.PDQLookups.Add(1)
	if u, p, ok := r.BasicAuth(); !ok || u != f.Username || p != f.Password {
		w.Header().Set("WWW-Authenticate", `Basic realm="api"`)
		ArachnidError(w, http.StatusUnauthorized, "Please supply your API username and password in the Authorization header")
		return
	}
	if DelayOrRaw(w, r, time.Duration(f.delay.Load()), raw) {
		return
	}
	var req struct {
		Hashes []string `json:"hashes"`
	}
	if err := json.Unmarshal(body, &req); err != nil || req.Hashes == nil {
		ArachnidError(w, http.StatusBadRequest, "Expected a JSON object with a list of hashes.")
		return
	}
	f.mu.Lock()
	banked := append([]ArachnidItem(nil), f.banked...)
	f.mu.Unlock()

	type near struct {
		Timestamp      float64 `json:"timestamp"`
		SHA1Base32     string  `json:"sha1_base32"`
		SHA256Hex      string  `json:"sha256_hex"`
		Classification string  `json:"classification"`
	}
	type match struct {
		Classification string  `json:"classification"`
		MatchType      *string `json:"match_type"`
		Near           *near   `json:"near_match_details"`
	}
	out := map[string]*match{}
	for _, q := range req.Hashes {
		b, err := base64.StdEncoding.DecodeString(q)
		if err != nil || len(b) != 32 {
			ArachnidError(w, http.StatusBadRequest, fmt.Sprintf("Invalid PDQ hash %q: expected the base64 encoding of 32 bytes.", q))
			return
		}
		probe, err := pdq.ParseHex(hex.EncodeToString(b))
		if err != nil {
			f.tb.Errorf("fakes.Arachnid: %v", err)
			return
		}
		var best *ArachnidItem
		bestD := 32
		for i, it := range banked {
			h, err := pdq.ParseHex(it.PDQ)
			if err != nil {
				f.tb.Errorf("fakes.Arachnid: bad banked hash %q", it.PDQ)
				continue
			}
			if d := pdq.Distance(probe, h); d < bestD {
				best, bestD = &banked[i], d
			}
		}
		switch {
		case best != nil:
			nearType := "near"
			out[q] = &match{best.Classification, &nearType, &near{0, best.SHA1Base32, best.SHA256Hex, best.Classification}}
		case f.NullForNoMatch.Load():
			out[q] = nil
		default:
			out[q] = &match{Classification: "no-known-match"}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"scanned_hashes": out})
}
