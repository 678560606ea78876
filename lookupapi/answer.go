package lookupapi

import (
	"time"

	"github.com/mediaguard/mediaguard/internal/apigate"
)

// Answer describes one request the handler answered, for Config.OnAnswer
// (the adapter's metrics). Both fields are closed sets, so they can label
// metrics without letting clients grow them.
type Answer struct {
	// Action is what the request got: one of the Action constants.
	Action string
	// Auth is the outcome of the API key check: one of the Auth
	// constants.
	Auth string
	// Duration is the time from receiving the request to its answer
	// written, the matcher's lookup included.
	Duration time.Duration
}

// Answer actions.
const (
	// ActionBlock and ActionAllow: a lookup answered 200 with that action.
	ActionBlock = "block"
	ActionAllow = "allow"
	// ActionUnscanned: a lookup allowed without every backend consulted
	// (fail-open); not also counted as ActionAllow.
	ActionUnscanned = "unscanned"
	// ActionHealth: a GET or HEAD answered with the health document.
	ActionHealth = "health"
	// ActionBadRequest: refused as malformed, oversized, without hashes
	// or with another method (400, 405, 413).
	ActionBadRequest = "bad_request"
	// ActionUnauthorized: refused for a missing or wrong API key (401).
	ActionUnauthorized = "unauthorized"
	// ActionRateLimited: refused by the rate limit (429).
	ActionRateLimited = "rate_limited"
	// ActionError: the matcher could not answer (503) or the health
	// document could not be encoded (500).
	ActionError = "error"
)

// Actions lists every Action, for pre-declaring metric series.
var Actions = []string{ActionBlock, ActionAllow, ActionUnscanned, ActionHealth, ActionBadRequest, ActionUnauthorized, ActionRateLimited, ActionError}

// Answer auth outcomes.
const (
	// AuthOK: the API key was presented.
	AuthOK = "ok"
	// AuthMissing: no credential in any accepted place.
	AuthMissing = "missing"
	// AuthWrong: a credential that is not the key.
	AuthWrong = "wrong"
	// AuthOff: no API key is configured, so none was asked for.
	AuthOff = "off"
	// AuthUnchecked: answered before the check (rate limited, or a
	// method the API does not serve).
	AuthUnchecked = "unchecked"
)

// Auths lists every Auth outcome, for pre-declaring metric series.
var Auths = []string{AuthOK, AuthMissing, AuthWrong, AuthOff, AuthUnchecked}

// authLabel names an apigate.AuthResult as Answer.Auth does.
func authLabel(a apigate.AuthResult) string {
	switch a {
	case apigate.AuthOK:
		return AuthOK
	case apigate.AuthMissing:
		return AuthMissing
	}
	return AuthWrong
}
