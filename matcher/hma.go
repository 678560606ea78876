package matcher

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// DefaultRemoteTimeout bounds one request to a remote backend when its config
// leaves Timeout zero: the plugin gives the whole lookup 10 s, and a hash
// lookup that takes seconds is a backend in trouble.
const DefaultRemoteTimeout = 2 * time.Second

// maxRemoteBody bounds how much of a remote answer is read: a real answer is
// a few hundred bytes, and a broken or hostile backend must not make us
// buffer without limit.
const maxRemoteBody = 1 << 20

// maxHMAEvidence bounds the evidence kept from one HMA answer; a hash close
// to many banked items would otherwise bloat every verdict and log line.
const maxHMAEvidence = 32

// HMAConfig configures a ThreatExchange HMA 2.0 backend.
type HMAConfig struct {
	// Name identifies the backend in notes and errors; default "hma".
	Name string
	// Policy is the backend's mode and category. The client ignores it:
	// the Guard applies it (service.New passes it on as Remote.Policy).
	Policy BackendPolicy
	// URL is HMA's base URL, e.g. http://hma:5100 (no /m/lookup).
	URL string
	// APIKey, when set, is sent as "Authorization: Bearer": HMA has no
	// authentication of its own, so deployments put a token-checking
	// proxy in front of it.
	APIKey string
	// Banks optionally restricts lookups to these banks (&banks=A,B).
	// Names must be HMA bank names ([A-Z_][A-Z0-9_]*).
	Banks []string
	// Timeout bounds each HTTP request; default DefaultRemoteTimeout.
	Timeout time.Duration
	// MinPDQQuality is the PDQ quality below which a hash is not looked
	// up: the same setting as the local banks' (min_pdq_quality), since HMA
	// cannot know the quality of a hash it is sent. nil means
	// DefaultMinPDQQuality (HMA's own cut-off when it hashes).
	MinPDQQuality *int
	// HTTPClient is used when set; otherwise a client with its own
	// connection pool sized for many lookups to one host.
	HTTPClient *http.Client
	// Logger receives the bank check's findings (a configured bank HMA
	// does not have is an error); nil logs nothing.
	Logger *zap.Logger
}

// HMA is a Matcher backed by HMA 2.0's GET /m/lookup. It asks only what HMA
// can answer: PDQ hashes of usable quality, and the MD5 of videos (HMA has no
// photo MD5/SHA1/SHA256 signal type; exact image hashes need local banks).
type HMA struct {
	name      string
	base      string
	apiKey    string
	banks     string
	timeout   time.Duration
	minPDQ    int
	client    *http.Client
	userAgent string
	log       *zap.Logger

	// bankList is cfg.Banks, checked against HMA's own list by Watch.
	bankList  []string
	bankState hmaBanks
}

// NewHMA checks the config and returns the client. It does not contact HMA:
// the Guard's breaker and fail policy decide what an unreachable HMA means,
// and the Guard runs Watch, which checks the configured banks.
func NewHMA(cfg HMAConfig) (*HMA, error) {
	name := cfg.Name
	if name == "" {
		name = "hma"
	}
	base, err := checkRemoteURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("hma %s: %w", name, err)
	}
	for _, b := range cfg.Banks {
		if !ValidBankName(b) {
			return nil, fmt.Errorf("hma %s: bank %q is not an HMA bank name (UPPER_WITH_UNDERSCORE)", name, b)
		}
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("hma %s: negative timeout %s", name, cfg.Timeout)
	}
	minPDQ := DefaultMinPDQQuality
	if cfg.MinPDQQuality != nil {
		minPDQ = *cfg.MinPDQQuality
		if minPDQ < 0 || minPDQ > 100 {
			return nil, fmt.Errorf("hma %s: minimum pdq quality %d out of range 0..100", name, minPDQ)
		}
	}
	h := &HMA{
		name:      name,
		base:      strings.TrimRight(base, "/"),
		apiKey:    cfg.APIKey,
		banks:     strings.Join(cfg.Banks, ","),
		timeout:   cfg.Timeout,
		minPDQ:    minPDQ,
		client:    cfg.HTTPClient,
		userAgent: "mediaguard",
		log:       cfg.Logger,
		bankList:  slices.Clone(cfg.Banks),
		bankState: hmaBanks{recheckOK: hmaBankRecheckOK, recheckFailing: hmaBankRecheckFailing},
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.timeout == 0 {
		h.timeout = DefaultRemoteTimeout
	}
	if h.client == nil {
		h.client = newRemoteHTTPClient()
	}
	return h, nil
}

// checkRemoteURL accepts an absolute http(s) URL.
func checkRemoteURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("URL is required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("bad URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("URL %q must be absolute http or https", raw)
	}
	return raw, nil
}

// newRemoteHTTPClient returns a client whose transport keeps enough idle
// connections to one host: the default 2 would make every burst of lookups
// open fresh connections.
func newRemoteHTTPClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 32
	return &http.Client{Transport: t}
}

// Name returns the backend's name.
func (h *HMA) Name() string { return h.name }

// hmaMatch is one entry of a /m/lookup answer.
type hmaMatch struct {
	bank      string
	contentID int64
	distance  int
}

// Match looks up the query's usable PDQ hash and, for videos, its MD5. HMA
// does not return the banked hash, so MatchedHash and Evidence.Hash are the
// query's own hash (for PDQ, the banked one is within Distance of it).
func (h *HMA) Match(ctx context.Context, q Query) (Verdict, error) {
	var v Verdict
	var found []hmaMatch
	var types []HashType
	var hashes, forms, variants []string
	asked := false
	var pdqs []pdq.Form
	if q.Has&HasPDQ != 0 {
		switch {
		case q.PDQ.IsZero():
			v.Notes = append(v.Notes, fmt.Sprintf("hma %s: PDQ hash is all zero (image too small): not looked up", h.name))
		case q.PDQQuality < h.minPDQ:
			v.Notes = append(v.Notes, fmt.Sprintf("hma %s: PDQ quality %d < %d: not looked up", h.name, q.PDQQuality, h.minPDQ))
		default:
			pdqs = append(pdqs, pdq.Form{Variant: pdq.VariantStored, Hash: q.PDQ, Quality: q.PDQQuality})
		}
	}
	for _, f := range q.Forms {
		if !f.Hash.IsZero() && f.Quality >= h.minPDQ && len(pdqs) < maxHMAForms {
			pdqs = append(pdqs, f)
		}
	}
	if len(pdqs) > 0 {
		asked = true
		res, err := h.lookupAll(ctx, pdqs)
		if err != nil {
			return Verdict{}, err
		}
		for i, m := range res {
			found = append(found, m...)
			for range m {
				types = append(types, PDQ)
				hashes = append(hashes, pdqs[i].Hash.String())
				forms = append(forms, pdqs[i].Name)
				variants = append(variants, pdqs[i].Variant)
			}
		}
	}
	if q.Kind == KindVideo && q.Has&HasMD5 != 0 {
		asked = true
		m, err := h.lookup(ctx, "video_md5", q.HexOf(VideoMD5))
		if err != nil {
			return Verdict{}, err
		}
		found = append(found, m...)
		for range m {
			types = append(types, VideoMD5)
			hashes = append(hashes, q.HexOf(VideoMD5))
			forms = append(forms, "")
			variants = append(variants, pdq.VariantStored)
		}
	}
	if !asked && len(v.Notes) == 0 {
		v.Notes = append(v.Notes, fmt.Sprintf("hma %s: no PDQ hash and no video MD5: nothing to look up", h.name))
	}
	if len(found) == 0 {
		return v, nil
	}

	ev := make([]Evidence, len(found))
	for i, m := range found {
		ev[i] = Evidence{
			Bank:     m.bank,
			HashType: types[i],
			Hash:     hashes[i],
			Form:     forms[i],
			Variant:  variants[i],
			Distance: m.distance,
			Label:    "hma content " + strconv.FormatInt(m.contentID, 10),
			Source:   "hma:" + m.bank,
		}
	}
	// HMA does not sort its answers; exact video MD5s go before PDQ at the
	// same distance, then bank and label keep the order stable for logs.
	sort.SliceStable(ev, func(i, j int) bool {
		a, b := ev[i], ev[j]
		if a.Distance != b.Distance {
			return a.Distance < b.Distance
		}
		if (a.HashType == PDQ) != (b.HashType == PDQ) {
			return b.HashType == PDQ
		}
		if a.Bank != b.Bank {
			return a.Bank < b.Bank
		}
		return a.Label < b.Label
	})
	if len(ev) > maxHMAEvidence {
		v.Notes = append(v.Notes, fmt.Sprintf("hma %s: %d matches, evidence kept for the closest %d", h.name, len(ev), maxHMAEvidence))
		ev = ev[:maxHMAEvidence]
	}
	best := ev[0]
	v.Match = true
	v.Bank = best.Bank
	v.HashType = best.HashType
	v.MatchedHash = best.Hash
	v.Distance = best.Distance
	v.Confidence = 1
	if best.HashType == PDQ {
		v.Confidence = PDQConfidence(best.Distance)
	}
	v.Source = best.Source
	v.Form = best.Form
	v.Variant = best.Variant
	v.Reason = fmt.Sprintf("HMA bank %s (%s) matched %s at distance %d", best.Bank, best.Label, best.HashType, best.Distance)
	v.Evidence = ev
	return v, nil
}

// maxHMAForms bounds the PDQ hashes of one media asked of HMA (the
// stored picture and its forms: frames, orientation, composites): every
// one is a request, and all of them share the breaker's call timeout, so
// too many would turn an animation into a timeout (fail-open: unscanned).
// Local banks match every form.
const maxHMAForms = 16

// lookupAll looks every hash up, eight at a time (HMA closes the
// connection after each answer, so each costs a new connection), and
// returns the matches in the order of hs; the first error wins.
func (h *HMA) lookupAll(ctx context.Context, hs []pdq.Form) ([][]hmaMatch, error) {
	out := make([][]hmaMatch, len(hs))
	if len(hs) == 1 {
		m, err := h.lookup(ctx, "pdq", hs[0].Hash.String())
		out[0] = m
		return out, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	sem := make(chan struct{}, 8)
	for i := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			m, err := h.lookup(ctx, "pdq", hs[i].Hash.String())
			mu.Lock()
			defer mu.Unlock()
			if err != nil && first == nil {
				first = err
				cancel()
			}
			out[i] = m
		}()
	}
	wg.Wait()
	return out, first
}

// lookup performs GET /m/lookup for one signal and returns every match.
func (h *HMA) lookup(ctx context.Context, signalType, signal string) ([]hmaMatch, error) {
	// HMA takes lowercase hex only (uppercase is a 400); our hex is
	// lowercase already. Bank names were validated, so they need no
	// escaping and the query reads as in HMA's documentation.
	u := h.base + "/m/lookup?signal_type=" + signalType + "&signal=" + strings.ToLower(signal)
	if h.banks != "" {
		u += "&banks=" + h.banks
	}
	status, body, err := h.get(ctx, u)
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, h.statusError(status, body)
	}
	m, err := parseHMALookup(body, signalType != "pdq")
	if err != nil {
		return nil, fmt.Errorf("hma %s: %s lookup: %w", h.name, signalType, err)
	}
	return m, nil
}

// get performs one bounded GET and returns the status and body. The caller's
// own cancellation comes back as ctx.Err() so a Guard can tell "the client
// went away" from "the backend failed"; everything else that stops the
// exchange (timeout, refused connection, reset) is ErrUnavailable.
func (h *HMA) get(ctx context.Context, u string) (int, []byte, error) {
	rctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: hma %s: %v", ErrUnavailable, h.name, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", h.userAgent)
	if h.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+h.apiKey)
	}
	return doBounded(ctx, rctx, h.client, req, "hma "+h.name, h.timeout)
}

// doBounded sends req and reads at most maxRemoteBody bytes of the answer.
// ctx is the caller's context and rctx the per-request one derived from it.
func doBounded(ctx, rctx context.Context, c *http.Client, req *http.Request, who string, timeout time.Duration) (int, []byte, error) {
	fail := func(err error) (int, []byte, error) {
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return 0, nil, &timeoutError{who, timeout}
		}
		return 0, nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, who, err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBody+1))
	if err != nil {
		return fail(err)
	}
	if len(body) > maxRemoteBody {
		return 0, nil, fmt.Errorf("%w: %s: answer larger than %d bytes", ErrBadResponse, who, maxRemoteBody)
	}
	return resp.StatusCode, body, nil
}

// statusError describes a non-200 answer. HMA answers 503 with
// INDEX-NOT-LOADED or INDEX-STALE (plain text on /status) or a JSON
// {"message"} until its index is ready; any other status is equally "cannot
// answer now" for us, and never "no match".
func (h *HMA) statusError(status int, body []byte) error {
	detail := errorDetail(body)
	if status == http.StatusServiceUnavailable {
		return fmt.Errorf("%w: hma %s: index not ready (503 %s)", ErrUnavailable, h.name, detail)
	}
	return fmt.Errorf("%w: hma %s: HTTP %d %s", ErrUnavailable, h.name, status, detail)
}

// errorDetail extracts a short printable description from an error body:
// the "message" of HMA's JSON errors, otherwise the start of the text.
func errorDetail(body []byte) string {
	var e struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		return strconv.Quote(truncateDetail(e.Message, 200))
	}
	s := strings.TrimSpace(string(body))
	if s == "" {
		return "(empty body)"
	}
	return strconv.Quote(truncateDetail(s, 200))
}

// truncateDetail shortens s to n bytes for error messages.
func truncateDetail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// parseHMALookup parses {"BANK":[{"bank_content_id":N,"distance":"D"}],...}.
// Distance is a string in HMA 2.0 (a number is tolerated); an empty object
// is no match. For exact signal types (exact is true: video_md5) HMA 1.1.7
// answers "distance":"-", the printed similarity of an exact match
// (src/OpenMediaMatch/blueprints/matching.py in
// https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner),
// which is a match at distance 0; for PDQ a distance is required. Any other shape is
// ErrBadResponse, never "no match".
func parseHMALookup(body []byte, exact bool) ([]hmaMatch, error) {
	var banks map[string]json.RawMessage
	if err := json.Unmarshal(body, &banks); err != nil {
		return nil, fmt.Errorf("%w: not a JSON object of banks: %v", ErrBadResponse, err)
	}
	if banks == nil { // the JSON was null
		return nil, fmt.Errorf("%w: null instead of an object of banks", ErrBadResponse)
	}
	var out []hmaMatch
	for bank, raw := range banks {
		// HMA refuses other bank names on creation (ValidBankName), so a
		// key outside the rule means we are not talking to /m/lookup
		// (e.g. /m/raw_lookup's {"matches":[...]}).
		if !ValidBankName(bank) {
			return nil, fmt.Errorf("%w: key %q is not a bank name", ErrBadResponse, truncateDetail(bank, 64))
		}
		var entries []struct {
			ContentID json.RawMessage `json:"bank_content_id"`
			Distance  json.RawMessage `json:"distance"`
		}
		if err := json.Unmarshal(raw, &entries); err != nil {
			return nil, fmt.Errorf("%w: bank %s: want a list of matches: %v", ErrBadResponse, bank, err)
		}
		for _, e := range entries {
			id, err := jsonInt(e.ContentID)
			if err != nil || id < 0 {
				return nil, fmt.Errorf("%w: bank %s: bad bank_content_id %s", ErrBadResponse, bank, truncateDetail(string(e.ContentID), 64))
			}
			if exact && isExactDistance(e.Distance) {
				out = append(out, hmaMatch{bank: bank, contentID: id})
				continue
			}
			d, err := jsonInt(e.Distance)
			if err != nil || d < 0 || d > 256 {
				return nil, fmt.Errorf("%w: bank %s: bad distance %s", ErrBadResponse, bank, truncateDetail(string(e.Distance), 64))
			}
			out = append(out, hmaMatch{bank: bank, contentID: id, distance: int(d)})
		}
	}
	return out, nil
}

// isExactDistance reports whether raw is HMA's "-", its distance for a
// match of an exact signal type, which has no distance to report.
func isExactDistance(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == `"-"`
}

// jsonInt reads an integer given as a JSON number or a JSON string of digits.
func jsonInt(raw json.RawMessage) (int64, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return 0, errors.New("missing")
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return 0, err
		}
		return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	}
	return strconv.ParseInt(string(raw), 10, 64)
}

// probeSignal is the PDQ hash Probe looks up: all zero, which no image
// hashes to (HMA and we never look it up for real), so the answer is HMA's
// "no match" and only its shape matters.
var probeSignal = strings.Repeat("0", 64)

// Probe tells the Guard whether HMA answers lookups again. It asks GET
// /readyz first (HMA 1.1.5+: 503 INDEX-NOT-LOADED or INDEX-STALE until the
// index is usable; an older HMA answers 404 and is asked the lookup
// directly), which costs HMA no index search while it is down or loading;
// then one lookup of probeSignal, because only a lookup proves what the
// breaker cares about: that the token-checking proxy lets us through and
// the answer is /m/lookup's shape.
func (h *HMA) Probe(ctx context.Context) error {
	status, body, err := h.get(ctx, h.base+"/readyz")
	if err != nil {
		return err
	}
	if status != http.StatusOK && status != http.StatusNotFound {
		return h.statusError(status, body)
	}
	_, err = h.lookup(ctx, "pdq", probeSignal)
	return err
}

// Status calls GET /status and returns HMA's health word ("I-AM-ALIVE"). A
// 503 (INDEX-NOT-LOADED, INDEX-STALE) or any other failure is an error
// wrapping ErrUnavailable, with the word in its text.
func (h *HMA) Status(ctx context.Context) (string, error) {
	status, body, err := h.get(ctx, h.base+"/status")
	if err != nil {
		return "", err
	}
	word := strings.TrimSpace(string(body))
	if status != http.StatusOK {
		return word, h.statusError(status, body)
	}
	return word, nil
}
