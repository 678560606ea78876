package matcher

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/lookupwire"
)

// ServiceConfig configures a JSON lookup service speaking the Mjolnir HMA
// plugin's contract (another mediaguard, or any service built for the
// plugin).
type ServiceConfig struct {
	// Name identifies the backend: verdicts carry Source "service:NAME".
	Name string
	// Policy is the backend's mode and category. The client ignores it:
	// the Guard applies it (service.New passes it on as Remote.Policy).
	Policy BackendPolicy
	// URL is the full lookup URL the request is POSTed to.
	URL string
	// APIKey, when set, is sent as "Authorization: Bearer".
	APIKey string
	// Timeout bounds each request; default DefaultRemoteTimeout.
	Timeout time.Duration
	// MinPDQQuality is the quality below which PDQ hashes are not sent
	// (min_pdq_quality); nil means DefaultMinPDQQuality.
	MinPDQQuality *int
	// HTTPClient is used when set; otherwise a client with its own
	// connection pool.
	HTTPClient *http.Client
}

// Service is a Matcher backed by a JSON lookup service.
type Service struct {
	name    string
	url     string
	apiKey  string
	timeout time.Duration
	client  *http.Client
	minPDQ  int
	now     func() time.Time
}

// NewService checks the config and returns the client; it does not contact
// the service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Name == "" {
		return nil, fmt.Errorf("lookup service: Name is required")
	}
	u, err := checkRemoteURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("lookup service %s: %w", cfg.Name, err)
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("lookup service %s: negative timeout %s", cfg.Name, cfg.Timeout)
	}
	s := &Service{name: cfg.Name, url: u, apiKey: cfg.APIKey, timeout: cfg.Timeout, client: cfg.HTTPClient, now: time.Now, minPDQ: DefaultMinPDQQuality}
	if cfg.MinPDQQuality != nil {
		if *cfg.MinPDQQuality < 0 || *cfg.MinPDQQuality > 100 {
			return nil, fmt.Errorf("lookup service %s: minimum pdq quality %d out of range 0..100", cfg.Name, *cfg.MinPDQQuality)
		}
		s.minPDQ = *cfg.MinPDQQuality
	}
	if s.timeout == 0 {
		s.timeout = DefaultRemoteTimeout
	}
	if s.client == nil {
		s.client = newRemoteHTTPClient()
	}
	return s, nil
}

// Name returns the backend's name.
func (s *Service) Name() string { return s.name }

// Match POSTs the query's digests and maps the answer. Only a 2xx JSON
// answer with the exact lowercase action "block" is a match, as the plugin
// itself reads it; any other action is no match. A non-2xx status, a
// timeout or a refused connection is ErrUnavailable, a body that is not the
// contract's JSON is ErrBadResponse, and the caller's own cancellation is
// returned as ctx.Err().
func (s *Service) Match(ctx context.Context, q Query) (Verdict, error) {
	v, err := s.matchOne(ctx, q)
	if err != nil {
		return v, err
	}
	if v.Match {
		// The contract's digests are the file's own and its stored
		// picture's.
		setVariant(&v, "", pdq.VariantStored)
		return v, nil
	}
	// The contract carries one PDQ hash: the other forms of the media
	// (frames, orientation, composites, embedded pictures) are asked one
	// by one, after the stored picture, until one matches.
	asked := 0
	for _, f := range q.Forms {
		if f.Hash.IsZero() || f.Quality < s.minPDQ {
			continue
		}
		if asked == maxServiceForms {
			v.Notes = append(v.Notes, fmt.Sprintf("service %s: only the first %d forms were asked", s.name, maxServiceForms))
			break
		}
		asked++
		fv, err := s.matchOne(ctx, Query{Has: HasPDQ, PDQ: f.Hash, PDQQuality: f.Quality, Kind: q.Kind})
		if err != nil {
			return Verdict{}, err
		}
		if fv.Match {
			setVariant(&fv, f.Name, f.Variant)
			return fv, nil
		}
	}
	return v, nil
}

// setVariant says which form of the media v's match is of.
func setVariant(v *Verdict, form, variant string) {
	v.Form, v.Variant = form, variant
	for i := range v.Evidence {
		v.Evidence[i].Form, v.Evidence[i].Variant = form, variant
	}
}

// maxServiceForms bounds the extra requests one media costs a service.
const maxServiceForms = 16

func (s *Service) matchOne(ctx context.Context, q Query) (Verdict, error) {
	var v Verdict
	if q.Has&HasPDQ != 0 && !usablePDQ(&q, s.minPDQ) {
		v.Notes = append(v.Notes, fmt.Sprintf("service %s: PDQ hash unusable (quality %d or all zero): not sent", s.name, q.PDQQuality))
	}
	lr := lookupRequest(&q, s.now().UnixMilli(), s.minPDQ)
	if lr.Hashes == (lookupwire.Hashes{}) {
		v.Notes = append(v.Notes, fmt.Sprintf("service %s: no digest to look up", s.name))
		return v, nil
	}
	payload, err := json.Marshal(lr)
	if err != nil { // cannot happen for these field types
		return Verdict{}, fmt.Errorf("service %s: encoding request: %w", s.name, err)
	}

	rctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.url, bytes.NewReader(payload))
	if err != nil {
		return Verdict{}, fmt.Errorf("%w: service %s: %v", ErrUnavailable, s.name, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "mediaguard")
	if s.apiKey != "" {
		req.Header.Set("Authorization", "Bearer "+s.apiKey)
	}
	status, body, err := doBounded(ctx, rctx, s.client, req, "service "+s.name, s.timeout)
	if err != nil {
		return Verdict{}, err
	}
	if status < 200 || status > 299 {
		return Verdict{}, fmt.Errorf("%w: service %s: HTTP %d %s", ErrUnavailable, s.name, status, errorDetail(body))
	}

	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		// Checked first because json accepts null into a struct without
		// error; the contract is an object.
		return Verdict{}, fmt.Errorf("%w: service %s: answer is not a JSON object: %s", ErrBadResponse, s.name, errorDetail(body))
	}
	var resp lookupwire.Response
	if err := json.Unmarshal(body, &resp); err != nil {
		return Verdict{}, fmt.Errorf("%w: service %s: %v", ErrBadResponse, s.name, err)
	}
	source := "service:" + s.name
	if resp.Action != lookupwire.ActionBlock {
		if resp.Unscanned {
			// The service allowed only because it could not consult its
			// own backends: our fail policy, not theirs, must decide.
			return Verdict{}, fmt.Errorf("%w: service %s: answered unscanned: %s", ErrUnavailable, s.name, truncateDetail(resp.Reason, 200))
		}
		if resp.Action != lookupwire.ActionAllow {
			v.Notes = append(v.Notes, fmt.Sprintf("service %s: action %q is not %q: treated as allow", s.name, truncateDetail(resp.Action, 32), lookupwire.ActionBlock))
		}
		return v, nil
	}

	ht := HashType(strings.ToLower(resp.HashType))
	bank := resp.Bank
	if bank == "" {
		bank = s.name
	}
	dist := 0
	if resp.Distance != nil {
		dist = *resp.Distance
	}
	matched := strings.ToLower(resp.MatchedHash)
	if matched == "" {
		matched = q.HexOf(ht)
	}
	reason := resp.Reason
	if reason == "" {
		reason = fmt.Sprintf("lookup service %s matched %s", s.name, ht)
	}
	v.Match = true
	v.Bank = bank
	v.HashType = ht
	v.MatchedHash = matched
	v.Distance = dist
	v.Confidence = clampConfidence(resp.Confidence)
	v.Source = source
	v.Reason = truncateDetail(reason, 500)
	if ValidCategory(resp.Category) {
		v.Category = resp.Category
	}
	v.Evidence = []Evidence{{
		Bank:     bank,
		HashType: ht,
		Hash:     matched,
		Distance: dist,
		Source:   source,
		Category: v.Category,
	}}
	return v, nil
}

// probeQuery is what Probe looks up: the MD5 of nothing, which no media
// has, so the service answers "allow" and only that it answers matters.
var probeQuery = Query{Has: HasMD5, MD5: [16]byte{0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42, 0x7e}}

// Probe tells the Guard whether the service answers lookups again. The
// plugin's contract has no readiness endpoint, so it is one cheap lookup,
// judged like any other: an error (including an "unscanned" answer) means
// not yet.
func (s *Service) Probe(ctx context.Context) error {
	_, err := s.Match(ctx, probeQuery)
	return err
}
