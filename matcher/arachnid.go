package matcher

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// DefaultArachnidURL is Arachnid Shield's base URL (the SDK's
// DEFAULT_BASE_URL, arachnid_shield_sdk/api/client.py in
// https://github.com/CdnCentreForChildProtection/arachnid-shield-sdk-python).
const DefaultArachnidURL = "https://shield.projectarachnid.com/"

// DefaultArachnidBatchWindow is how long a lookup waits for the lookups of
// other queries to share its request: small beside a round trip to the
// service, long enough to gather a burst of uploads.
const DefaultArachnidBatchWindow = 2 * time.Millisecond

// DefaultArachnidMaxBatch is how many distinct PDQ hashes one request
// carries at most. The service documents no limit; this keeps a request
// and its answer small (a few kilobytes).
const DefaultArachnidMaxBatch = 128

// maxArachnidForms bounds the PDQ hashes of one media sent (the stored
// picture first, then its forms: frames, orientation, composites,
// variants). They go in one request, so the bound is about the request's
// size, not its count; local banks match every form.
const maxArachnidForms = 64

// ArachnidConfig configures an Arachnid Shield backend (the Canadian
// Centre for Child Protection's hash-matching service).
type ArachnidConfig struct {
	// Name identifies the backend: verdicts carry Source "arachnid:NAME".
	// Default: the base URL's host.
	Name string
	// Policy is the backend's mode and category. The client ignores it:
	// the Guard applies it (service.New passes it on as Remote.Policy).
	Policy BackendPolicy
	// URL is the service's base URL; default DefaultArachnidURL. Lookups
	// go to URL/v1/pdq/ (a path in URL is kept, for a gateway in front).
	URL string
	// Username and Password are the account's credentials, sent with HTTP
	// Basic authentication (the SDK's _build_sync_http_client). Both are
	// required.
	Username, Password string
	// Timeout bounds each request; default DefaultRemoteTimeout.
	Timeout time.Duration
	// MinPDQQuality is the quality below which PDQ hashes are not sent
	// (min_pdq_quality); nil means DefaultMinPDQQuality.
	MinPDQQuality *int
	// BatchWindow is how long a lookup waits for concurrent lookups to
	// share one request: 0 means DefaultArachnidBatchWindow, a negative
	// value sends each query's hashes on their own at once.
	BatchWindow time.Duration
	// MaxBatch bounds the distinct hashes of one request; 0 means
	// DefaultArachnidMaxBatch. At least maxArachnidForms.
	MaxBatch int
	// HTTPClient is used when set; otherwise a client with its own
	// connection pool.
	HTTPClient *http.Client
}

// Arachnid is a Matcher backed by Arachnid Shield's hash-only lookup,
// POST /v1/pdq/. Only PDQ hashes ever leave: never media bytes, exact
// digests or URLs (the service's /v1/media/ and /v1/url/ endpoints would
// send it the media, and are not used). Every usable PDQ hash of the media
// (the stored picture and its forms) goes in one request, shared with the
// lookups of other queries made within BatchWindow. A query without a
// usable PDQ hash costs no request.
//
// Arachnid Shield answers a classification per hash: "csam" is a match in
// bank ArachnidBankCSAM, "harmful-abusive-material" in ArachnidBankHarmful,
// "no-known-match" (or null) no match, and any classification added later
// a match in ArachnidBankOther (see arachnidBank). It reports no distance:
// a match is the service's judgement that the hash is near a known item,
// so the verdict's Distance is 0 and its Confidence that of a match at
// DefaultPDQThreshold, the farthest a PDQ list here matches.
type Arachnid struct {
	name     string
	endpoint string // .../v1/pdq/
	user     string
	pass     string
	timeout  time.Duration
	minPDQ   int
	client   *http.Client
	batch    *arachnidBatcher // nil when batching is off
	maxBatch int
}

// NewArachnid checks the config and returns the client; it does not
// contact the service (the Guard's breaker and fail policy decide what an
// unreachable service means).
func NewArachnid(cfg ArachnidConfig) (*Arachnid, error) {
	base := cfg.URL
	if base == "" {
		base = DefaultArachnidURL
	}
	if _, err := checkRemoteURL(base); err != nil {
		return nil, fmt.Errorf("arachnid: %w", err)
	}
	u, _ := url.Parse(base)
	name := cfg.Name
	if name == "" {
		name = u.Host
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("arachnid %s: base URL %q must not carry credentials, a query or a fragment (set username and password)", name, base)
	}
	if cfg.Username == "" || cfg.Password == "" {
		return nil, fmt.Errorf("arachnid %s: username and password are required", name)
	}
	if strings.Contains(cfg.Username, ":") {
		// HTTP Basic joins them with a colon (RFC 7617 section 2).
		return nil, fmt.Errorf("arachnid %s: the username must not contain a colon", name)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("arachnid %s: negative timeout %s", name, cfg.Timeout)
	}
	a := &Arachnid{
		name:     name,
		endpoint: strings.TrimRight(base, "/") + "/v1/pdq/",
		user:     cfg.Username,
		pass:     cfg.Password,
		timeout:  cfg.Timeout,
		minPDQ:   DefaultMinPDQQuality,
		client:   cfg.HTTPClient,
		maxBatch: cfg.MaxBatch,
	}
	if cfg.MinPDQQuality != nil {
		if *cfg.MinPDQQuality < 0 || *cfg.MinPDQQuality > 100 {
			return nil, fmt.Errorf("arachnid %s: minimum pdq quality %d out of range 0..100", name, *cfg.MinPDQQuality)
		}
		a.minPDQ = *cfg.MinPDQQuality
	}
	if a.timeout == 0 {
		a.timeout = DefaultRemoteTimeout
	}
	if a.client == nil {
		a.client = newRemoteHTTPClient()
	}
	if a.maxBatch == 0 {
		a.maxBatch = DefaultArachnidMaxBatch
	}
	if a.maxBatch < maxArachnidForms {
		return nil, fmt.Errorf("arachnid %s: a batch of %d hashes cannot hold one media's %d", name, a.maxBatch, maxArachnidForms)
	}
	window := cfg.BatchWindow
	if window == 0 {
		window = DefaultArachnidBatchWindow
	}
	if window > 0 {
		a.batch = &arachnidBatcher{window: window, max: a.maxBatch, send: a.post}
	}
	return a, nil
}

// Name returns the backend's name.
func (a *Arachnid) Name() string { return a.name }

// arachnidForm is one PDQ hash of the query sent, with its form.
type arachnidForm struct {
	key  string // arachnidPDQ of form.Hash
	form pdq.Form
}

// Match sends every usable PDQ hash of the query and maps the answer.
// MatchedHash and Evidence.Hash are the query's own hash that matched (the
// service does not return its banked PDQ); the evidence label carries the
// classification and the known media's SHA-256 the service names.
func (a *Arachnid) Match(ctx context.Context, q Query) (Verdict, error) {
	var v Verdict
	var forms []arachnidForm
	seen := make(map[pdq.Hash]bool)
	truncated := false
	add := func(f pdq.Form) {
		if seen[f.Hash] {
			return // displayed == stored, identical frames: sent once
		}
		if len(forms) == maxArachnidForms {
			if !truncated {
				truncated = true
				v.Notes = append(v.Notes, fmt.Sprintf("arachnid %s: only the first %d PDQ forms were sent", a.name, maxArachnidForms))
			}
			return
		}
		seen[f.Hash] = true
		forms = append(forms, arachnidForm{arachnidPDQ(f.Hash), f})
	}
	if q.Has&HasPDQ != 0 {
		switch {
		case q.PDQ.IsZero():
			v.Notes = append(v.Notes, fmt.Sprintf("arachnid %s: PDQ hash is all zero (image too small): not sent", a.name))
		case q.PDQQuality < a.minPDQ:
			v.Notes = append(v.Notes, fmt.Sprintf("arachnid %s: PDQ quality %d < %d: not sent", a.name, q.PDQQuality, a.minPDQ))
		default:
			add(pdq.Form{Variant: pdq.VariantStored, Hash: q.PDQ, Quality: q.PDQQuality})
		}
	}
	for _, f := range q.Forms {
		if !f.Hash.IsZero() && f.Quality >= a.minPDQ {
			add(f)
		}
	}
	if len(forms) == 0 {
		if len(v.Notes) == 0 {
			v.Notes = append(v.Notes, fmt.Sprintf("arachnid %s: no usable PDQ hash: nothing sent", a.name))
		}
		return v, nil
	}
	keys := make([]string, len(forms))
	for i, f := range forms {
		keys[i] = f.key
	}
	hits, err := a.lookup(ctx, keys)
	if err != nil {
		return Verdict{}, err
	}

	var ev []Evidence
	var best *arachnidHit
	for _, f := range forms {
		h := hits[f.key]
		if h == nil {
			continue
		}
		ev = append(ev, Evidence{
			Bank:     h.bank,
			HashType: PDQ,
			Hash:     f.form.Hash.String(),
			Label:    h.label(),
			Source:   "arachnid:" + a.name,
			Form:     f.form.Name,
			Variant:  f.form.Variant,
		})
		if best == nil || arachnidRank(h.bank) < arachnidRank(best.bank) {
			best = h
		}
	}
	if len(ev) == 0 {
		return v, nil
	}
	// The gravest classification first; forms keep their order (the
	// stored picture before frames and variants) within one.
	sort.SliceStable(ev, func(i, j int) bool { return arachnidRank(ev[i].Bank) < arachnidRank(ev[j].Bank) })
	if len(ev) > maxHMAEvidence {
		v.Notes = append(v.Notes, fmt.Sprintf("arachnid %s: %d forms matched, evidence kept for the first %d", a.name, len(ev), maxHMAEvidence))
		ev = ev[:maxHMAEvidence]
	}
	top := ev[0]
	v.Match = true
	v.Bank = top.Bank
	v.HashType = PDQ
	v.MatchedHash = top.Hash
	v.Confidence = PDQConfidence(DefaultPDQThreshold)
	v.Source = top.Source
	v.Form = top.Form
	v.Variant = top.Variant
	v.Reason = fmt.Sprintf("Arachnid Shield classified the PDQ hash as %s", best.classification)
	if best.matchType != "" {
		v.Reason += " (" + best.matchType + " match; distance not reported)"
	}
	v.Evidence = ev
	return v, nil
}

// lookup asks about keys, through the batcher when batching is on.
func (a *Arachnid) lookup(ctx context.Context, keys []string) (map[string]*arachnidHit, error) {
	if a.batch != nil {
		return a.batch.lookup(ctx, keys)
	}
	return a.post(ctx, keys)
}

// post performs one POST /v1/pdq/ for keys. The caller's own cancellation
// comes back as ctx.Err(); a timeout, a refused connection, refused
// credentials and any non-2xx status are ErrUnavailable; an answer that is
// not the protocol's is ErrBadResponse.
func (a *Arachnid) post(ctx context.Context, keys []string) (map[string]*arachnidHit, error) {
	body, err := arachnidRequestBody(keys)
	if err != nil { // cannot happen for strings
		return nil, fmt.Errorf("arachnid %s: encoding request: %w", a.name, err)
	}
	rctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, a.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("%w: arachnid %s: %v", ErrUnavailable, a.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mediaguard")
	req.SetBasicAuth(a.user, a.pass)
	status, answer, err := doBounded(ctx, rctx, a.client, req, "arachnid "+a.name, a.timeout)
	if err != nil {
		return nil, err
	}
	if status < 200 || status > 299 {
		return nil, a.statusError(status, answer)
	}
	hits, err := parseArachnidPDQ(answer, keys)
	if err != nil {
		return nil, fmt.Errorf("arachnid %s: %w", a.name, err)
	}
	return hits, nil
}

// statusError describes a non-2xx answer. Every one is "cannot answer
// now", never "no match"; refused credentials say so plainly, since only
// the operator can fix them.
func (a *Arachnid) statusError(status int, body []byte) error {
	detail := arachnidErrorDetail(body)
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("%w: arachnid %s: credentials refused (HTTP %d %s): check the arachnid username and password", ErrUnavailable, a.name, status, detail)
	case http.StatusTooManyRequests:
		return fmt.Errorf("%w: arachnid %s: rate limited (HTTP 429 %s)", ErrUnavailable, a.name, detail)
	}
	return fmt.Errorf("%w: arachnid %s: HTTP %d %s", ErrUnavailable, a.name, status, detail)
}

// arachnidProbeKey is what Probe asks: the all-zero PDQ hash, which no
// image hashes to and Match never sends, so only the answer's shape (and
// that the credentials are accepted) matters.
var arachnidProbeKey = arachnidPDQ(pdq.Hash{})

// Probe tells the Guard (and the doctor) whether lookups work: one request
// for arachnidProbeKey, outside any batch, judged like a lookup.
func (a *Arachnid) Probe(ctx context.Context) error {
	_, err := a.post(ctx, []string{arachnidProbeKey})
	return err
}

// batchStats returns how many requests the batcher has sent and how many
// lookups it served (0, 0 when batching is off), for tests and benchmarks.
func (a *Arachnid) batchStats() (requests, lookups int64) {
	if a.batch == nil {
		return 0, 0
	}
	return a.batch.requests.Load(), a.batch.lookups.Load()
}
