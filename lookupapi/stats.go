package lookupapi

import "sync/atomic"

// Stats are the handler's counters since it was created, for metrics. Every
// request counts in Requests and in exactly one of the others, Unscanned
// aside.
type Stats struct {
	// Requests is every request received, whatever its answer.
	Requests uint64
	// Blocks and Allows count lookups answered 200.
	Blocks, Allows uint64
	// Unscanned counts the Allows given without every backend consulted
	// (the Guard's fail-open policy); they are included in Allows.
	Unscanned uint64
	// BadRequests counts requests refused as malformed, oversized, without
	// hashes or with a method other than GET, HEAD or POST.
	BadRequests uint64
	// Unauthorized counts requests without the API key or with a wrong
	// one.
	Unauthorized uint64
	// RateLimited counts requests refused with 429.
	RateLimited uint64
	// Errors counts lookups the matcher could not answer (503) and health
	// documents that could not be encoded (500).
	Errors uint64
	// HealthChecks counts GET and HEAD requests answered.
	HealthChecks uint64
}

// counters hold Stats as atomics.
type counters struct {
	requests, blocks, allows, unscanned, badRequests atomic.Uint64
	unauthorized, rateLimited, errors, healthChecks  atomic.Uint64
}

// Stats returns a snapshot of the counters. They are read one by one, so a
// snapshot taken under load may be a request or two out of step.
func (h *Handler) Stats() Stats {
	c := &h.stats
	return Stats{
		Requests:     c.requests.Load(),
		Blocks:       c.blocks.Load(),
		Allows:       c.allows.Load(),
		Unscanned:    c.unscanned.Load(),
		BadRequests:  c.badRequests.Load(),
		Unauthorized: c.unauthorized.Load(),
		RateLimited:  c.rateLimited.Load(),
		Errors:       c.errors.Load(),
		HealthChecks: c.healthChecks.Load(),
	}
}
