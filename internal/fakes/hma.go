package fakes

import (
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

// HMA is an httptest server playing the part of ThreatExchange's HMA 2.0
// (hasher-matcher-actioner, "OpenMediaMatch") that mediaguard's HMA client
// uses. The routes and their answers are HMA's own, from its source
// (https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner,
// src/OpenMediaMatch: app.py for /status and /readyz, blueprints/matching.py
// for /m/lookup, blueprints/curation.py for /c/banks), as HMA 1.1.x answers
// them:
//
//   - GET /status answers 200 "I-AM-ALIVE" as text/html, and 503
//     "INDEX-NOT-LOADED" until the index is loaded (app.py status()).
//   - GET /readyz answers 200 "READY", or 503 "INDEX-NOT-LOADED" until the
//     index is loaded (app.py readyz(), HMA 1.1.5 and later). NoReadyz plays
//     an HMA before 1.1.5, which has no /readyz: 404.
//   - GET /m/lookup?signal_type=&signal=[&banks=A,B] answers
//     {"BANK":[{"bank_content_id":N,"distance":"D"}]}: grouped by bank,
//     distance a STRING (the index's pretty_str), entries not sorted by
//     distance, {} for no match, disabled content dropped (matching.py
//     lookup()). A banks= naming a bank HMA does not have simply matches
//     nothing: 200 {}.
//   - PDQ matches at distance <= 31, not 32 (python-threatexchange's PDQ
//     signal type, threshold 31:
//     https://github.com/facebook/ThreatExchange/blob/main/python-threatexchange/threatexchange/signal_type/pdq/signal.py).
//   - video_md5 signals match exactly and answer "distance":"-", not a
//     number (the pretty_str of an exact match). They are taken to be 32
//     lowercase hex digits.
//   - A signal that does not validate is 400 {"message":"invalid signal:
//     ..."}: PDQ hex is lowercase 64 digits only (matching.py query_index();
//     the PDQ signal type's validate_signal_str).
//   - An unknown signal_type is 400 {"message":"No such SignalType 'foo'"},
//     and no signal is 400 "Either url or both signal and signal_type are
//     required" (matching.py _validate_and_transform_signal_type() and
//     lookup_get()).
//   - Lookups answer 503 {"message":"index not yet ready"} until the index
//     is loaded (matching.py query_index()). Errors are JSON
//     {"message":...} (utils/flask_utils.py api_error_handler).
//   - GET /c/banks lists every bank, empty ones too, as
//     [{"matching_enabled_ratio":1.0,"name":"TEST_BANK"},...]; a deleted
//     bank is gone from it. A bank with ratio 0 is left out of /m/lookup
//     answers (matching.py lookup(): the bank's matching_enabled_ratio
//     against a coin flip). NoCurator plays an instance without the curator
//     role, which has no /c/ routes at all (app.py registers curation.bp
//     only with ROLE_CURATOR): 404.
//   - HMA has no authentication of its own (app.py: "HMA itself doesn't
//     supply such functionality"); when Token is set the fake plays the
//     token-checking proxy deployments put in front, which answers 401 to a
//     wrong or missing bearer token.
//
// Test-only modes (SetRaw's canned answers, SetDelay, Down) are marked as
// such.
type HMA struct {
	*httptest.Server
	tb testing.TB

	// Token, when set before use, is the bearer token the fake's proxy
	// wants.
	Token string
	// Loaded is whether the index is loaded; NewHMA sets it.
	Loaded atomic.Bool
	// NoCurator makes /c/ routes 404, like an HMA without the curator role.
	NoCurator atomic.Bool
	// NoReadyz makes /readyz 404, like an HMA before 1.1.5.
	NoReadyz atomic.Bool

	// Lookups, BankLists and ReadyChecks count the calls of /m/lookup,
	// /c/banks and /readyz.
	Lookups, BankLists, ReadyChecks atomic.Int64

	delay atomic.Int64 // time.Duration

	mu       sync.Mutex
	contents []HMAContent
	// banks maps bank names to their matching_enabled_ratio; a bank also
	// exists while it holds content.
	banks   map[string]float64
	raw     *Raw
	queries []url.Values
}

// HMAContent is one banked signal.
type HMAContent struct {
	Bank       string
	ID         int64
	SignalType string // "pdq" or "video_md5"
	Signal     string // lowercase hex
	Disabled   bool
}

// Raw is a canned HTTP answer (test-only).
type Raw struct {
	Status      int
	ContentType string
	Body        string
}

var lowerHex = regexp.MustCompile(`^[0-9a-f]+$`)

// NewHMA starts a fake HMA with its index loaded, holding contents (none:
// every lookup is "no match"). It is closed when tb ends.
func NewHMA(tb testing.TB, contents ...HMAContent) *HMA {
	tb.Helper()
	f := &HMA{tb: tb, banks: map[string]float64{}, contents: contents}
	f.Loaded.Store(true)
	f.Server = httptest.NewServer(f)
	tb.Cleanup(f.Close)
	return f
}

// SetContents replaces the banked signals.
func (f *HMA) SetContents(c ...HMAContent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.contents = c
}

// SetBank creates a bank or changes its matching_enabled_ratio.
func (f *HMA) SetBank(name string, ratio float64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.banks[name] = ratio
}

// DeleteBank removes a bank and its content, as DELETE /c/bank/NAME does.
func (f *HMA) DeleteBank(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.banks, name)
	f.contents = slices.DeleteFunc(f.contents, func(c HMAContent) bool { return c.Bank == name })
}

// BankRatios returns every bank's ratio: the created ones and those
// holding content.
func (f *HMA) BankRatios() map[string]float64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := maps.Clone(f.banks)
	for _, c := range f.contents {
		if _, ok := out[c.Bank]; !ok {
			out[c.Bank] = 1
		}
	}
	return out
}

// SetRaw makes every lookup answer r (test-only: malformed or wrong-shape
// answers, odd statuses); nil restores real answers.
func (f *HMA) SetRaw(r *Raw) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.raw = r
}

// SetDelay makes lookups wait d before answering (test-only: a slow HMA);
// the wait ends early if the client goes away.
func (f *HMA) SetDelay(d time.Duration) { f.delay.Store(int64(d)) }

// LastQuery returns the query string of the last lookup, or nil.
func (f *HMA) LastQuery() url.Values {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.queries) == 0 {
		return nil
	}
	return f.queries[len(f.queries)-1]
}

// Down closes the fake's listener, so connections are refused, and returns
// the function that serves it again on the same address (test-only: an HMA
// that goes away and comes back).
func (f *HMA) Down(tb testing.TB) (up func()) {
	return down(tb, &f.Server, f)
}

// HMAError writes HMA's error shape, {"message": msg}.
func HMAError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

// ServeHTTP answers one request as described on HMA.
func (f *HMA) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.Token != "" && r.Header.Get("Authorization") != "Bearer "+f.Token {
		HMAError(w, http.StatusUnauthorized, "unauthorized")
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/status":
		f.health(w, "I-AM-ALIVE")
	case r.Method == http.MethodGet && r.URL.Path == "/readyz" && !f.NoReadyz.Load():
		f.ReadyChecks.Add(1)
		f.health(w, "READY")
	case strings.HasPrefix(r.URL.Path, "/c/") && f.NoCurator.Load():
		HMAError(w, http.StatusNotFound, "not found")
	case r.Method == http.MethodGet && r.URL.Path == "/c/banks":
		f.BankLists.Add(1)
		type bank struct {
			Ratio float64 `json:"matching_enabled_ratio"`
			Name  string  `json:"name"`
		}
		list := []bank{}
		for name, ratio := range f.BankRatios() {
			list = append(list, bank{ratio, name})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(list)
	case r.Method == http.MethodGet && r.URL.Path == "/m/lookup":
		f.lookup(w, r)
	default:
		HMAError(w, http.StatusNotFound, "not found")
	}
}

// health answers /status and /readyz: ok as text/html, or 503
// INDEX-NOT-LOADED until the index is loaded.
func (f *HMA) health(w http.ResponseWriter, ok string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if !f.Loaded.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "INDEX-NOT-LOADED")
		return
	}
	_, _ = io.WriteString(w, ok)
}

func (f *HMA) lookup(w http.ResponseWriter, r *http.Request) {
	f.Lookups.Add(1)
	qv := r.URL.Query()
	f.mu.Lock()
	f.queries = append(f.queries, qv)
	raw := f.raw
	contents := append([]HMAContent(nil), f.contents...)
	f.mu.Unlock()
	ratios := f.BankRatios()

	if DelayOrRaw(w, r, time.Duration(f.delay.Load()), raw) {
		return
	}
	signalType, signal := qv.Get("signal_type"), qv.Get("signal")
	if signalType == "" || signal == "" {
		HMAError(w, http.StatusBadRequest, "Either url or both signal and signal_type are required")
		return
	}
	var probe pdq.Hash
	switch signalType {
	case "pdq":
		if len(signal) != 64 || !lowerHex.MatchString(signal) {
			HMAError(w, http.StatusBadRequest, "invalid signal: invalid PDQ hash")
			return
		}
		probe, _ = pdq.ParseHex(signal)
	case "video_md5":
		if len(signal) != 32 || !lowerHex.MatchString(signal) {
			HMAError(w, http.StatusBadRequest, "invalid signal: invalid video_md5")
			return
		}
	default:
		HMAError(w, http.StatusBadRequest, fmt.Sprintf("No such SignalType '%s'", signalType))
		return
	}
	if !f.Loaded.Load() {
		HMAError(w, http.StatusServiceUnavailable, "index not yet ready")
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
		if c.SignalType != signalType || c.Disabled || (banks != nil && !banks[c.Bank]) || ratios[c.Bank] == 0 {
			continue
		}
		d := "-" // HMA's distance for an exact signal type
		if signalType == "pdq" {
			h, err := pdq.ParseHex(c.Signal)
			if err != nil {
				f.tb.Errorf("fakes.HMA: bad banked hash %q", c.Signal)
				continue
			}
			n := pdq.Distance(probe, h)
			if n > 31 {
				continue
			}
			d = fmt.Sprint(n)
		} else if c.Signal != signal {
			continue
		}
		out[c.Bank] = append(out[c.Bank], entry{ID: c.ID, Distance: d})
	}
	// HMA does not sort by distance; neither does the fake (largest id
	// first), so a client relying on order would pick the wrong content.
	for _, es := range out {
		sort.Slice(es, func(i, j int) bool { return es[i].ID > es[j].ID })
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(out)
}

// DelayOrRaw applies a fake's configured delay and canned answer (both
// test-only); it reports whether the request has been answered (or
// abandoned by the client during the delay).
func DelayOrRaw(w http.ResponseWriter, r *http.Request, delay time.Duration, raw *Raw) bool {
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
	if raw.ContentType != "" {
		w.Header().Set("Content-Type", raw.ContentType)
	}
	w.WriteHeader(raw.Status)
	_, _ = io.WriteString(w, raw.Body)
	return true
}
