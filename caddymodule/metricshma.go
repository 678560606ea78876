package caddymodule

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediaguard/mediaguard/hmaapi"
)

// The HMA-compatible surface's metrics, in the style of the lookup API's.
var (
	hmaRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hma_requests_total",
		Help: "Requests to the HMA-compatible surface (mediaguard_hma), by route (hash = /h/hash, lookup = /m/lookup, banks, index_status, health, other = unknown path) and outcome (match, no_match, unscanned = {} without every backend consulted under on_matcher_error open, ok, low_quality = /h/hash answered an empty PDQ, bad_request, unauthorized, rate_limited, unavailable = 503).",
	}, []string{"route", "outcome"})
	hmaSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "mediaguard", Name: "hma_duration_seconds",
		Help:    "Time the HMA-compatible surface took from receiving a request to its answer, hashing and matching included, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"route"})
)

func init() {
	collectors = append(collectors, hmaRequests, hmaSeconds)
}

// countHMA counts one answer of the HMA surface.
func countHMA(a hmaapi.Answer) {
	hmaRequests.WithLabelValues(a.Route, a.Outcome).Inc()
	hmaSeconds.WithLabelValues(a.Route).Observe(a.Duration.Seconds())
}

// presetHMASeries creates, at 0, the series alerts and dashboards are
// likeliest to watch, so that the first one already shows as an increase.
func presetHMASeries() {
	for _, o := range []string{hmaapi.OutcomeMatch, hmaapi.OutcomeNoMatch, hmaapi.OutcomeUnscanned, hmaapi.OutcomeBadRequest,
		hmaapi.OutcomeUnauthorized, hmaapi.OutcomeRateLimited, hmaapi.OutcomeUnavailable} {
		hmaRequests.WithLabelValues(hmaapi.RouteLookup, o)
	}
	for _, o := range []string{hmaapi.OutcomeOK, hmaapi.OutcomeLowQuality, hmaapi.OutcomeBadRequest, hmaapi.OutcomeUnauthorized,
		hmaapi.OutcomeRateLimited, hmaapi.OutcomeUnavailable} {
		hmaRequests.WithLabelValues(hmaapi.RouteHash, o)
	}
	for _, r := range hmaapi.Routes {
		hmaSeconds.WithLabelValues(r)
	}
}
