package hmaapi

import "time"

// Answer describes one request the handler answered, for Config.OnAnswer
// (the adapter's metrics). Every field is a closed set, so they can label
// metrics without letting clients grow them.
type Answer struct {
	// Route is the HMA endpoint asked: one of the Route constants.
	Route string
	// Outcome is what the request got: one of the Outcome constants.
	Outcome string
	// Auth is the outcome of the API key check: one of lookupapi's Auth
	// values ("ok", "missing", "wrong", "off", "unchecked").
	Auth string
	// Duration is the time from receiving the request to its answer
	// written, hashing and matching included.
	Duration time.Duration
}

// Routes.
const (
	RouteHash        = "hash"         // /h/hash
	RouteLookup      = "lookup"       // /m/lookup
	RouteBanks       = "banks"        // /c/banks
	RouteIndexStatus = "index_status" // /m/index/status
	RouteHealth      = "health"       // /livez, /readyz, /status
	RouteOther       = "other"        // any other path (404)
)

// Routes lists every Route, for pre-declaring metric series.
var Routes = []string{RouteHash, RouteLookup, RouteBanks, RouteIndexStatus, RouteHealth, RouteOther}

// Outcomes.
const (
	// OutcomeMatch: /m/lookup answered 200 naming at least one bank.
	OutcomeMatch = "match"
	// OutcomeNoMatch: /m/lookup answered 200 {} with every backend
	// consulted.
	OutcomeNoMatch = "no_match"
	// OutcomeUnscanned: /m/lookup answered 200 {} although a remote
	// backend could not be consulted (on_matcher_error open).
	OutcomeUnscanned = "unscanned"
	// OutcomeOK: /h/hash answered a hash; /c/banks, /m/index/status or a
	// health route answered 200.
	OutcomeOK = "ok"
	// OutcomeLowQuality: /h/hash answered "" for a picture whose PDQ
	// quality is below min_pdq_quality (HMA's empty hash).
	OutcomeLowQuality = "low_quality"
	// OutcomeBadRequest: refused as malformed, unknown, oversized or with
	// a method the route does not serve (400, 404, 405, 408, 413).
	OutcomeBadRequest = "bad_request"
	// OutcomeUnauthorized: refused for a missing or wrong API key (401).
	OutcomeUnauthorized = "unauthorized"
	// OutcomeRateLimited: refused by the rate limit (429).
	OutcomeRateLimited = "rate_limited"
	// OutcomeUnavailable: 503: a remote backend down under
	// on_matcher_error closed, banks not loaded yet, the spool disk full,
	// or the request cancelled while it was answered.
	OutcomeUnavailable = "unavailable"
)

// Outcomes lists every Outcome, for pre-declaring metric series.
var Outcomes = []string{OutcomeMatch, OutcomeNoMatch, OutcomeUnscanned, OutcomeOK, OutcomeLowQuality,
	OutcomeBadRequest, OutcomeUnauthorized, OutcomeRateLimited, OutcomeUnavailable}
