package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mediaguard/mediaguard/lookupapi"
	"github.com/mediaguard/mediaguard/service"
)

func init() {
	caddy.RegisterModule(Lookup{})
	httpcaddyfile.RegisterHandlerDirective("mediaguard_lookup", parseLookup)
	httpcaddyfile.RegisterDirectiveOrder("mediaguard_lookup", httpcaddyfile.Before, "reverse_proxy")
}

// Lookup is the `mediaguard_lookup` handler: the JSON lookup API the
// Mjolnir HMA plugin calls (POST hashes, answer block/allow), answered by
// the same matcher the proxy uses. GET answers a health document.
type Lookup struct {
	// APIKey, when set, must accompany every request: as a bearer token,
	// as the Basic-auth password, or as ?api_key= (the plugin can only
	// carry a credential inside its configured URL). Use {env.X}.
	APIKey string `json:"api_key,omitempty"`
	// MaxBodySize bounds a request body, in bytes (default 64 KiB). The
	// Caddyfile's name; the old JSON name max_body_bytes is still read.
	MaxBodySize int64 `json:"max_body_size,omitempty"`
	// RateLimit is requests per second allowed per client IP (0 = off).
	RateLimit float64 `json:"rate_limit,omitempty"`
	// RateBurst is the burst allowed above RateLimit.
	RateBurst int `json:"rate_burst,omitempty"`

	h   *lookupapi.Handler
	app *App
}

// UnmarshalJSON reads the handler's JSON as strictly as Caddy does,
// taking max_body_bytes, the old name of max_body_size, when the new one
// is absent.
func (l *Lookup) UnmarshalJSON(b []byte) error {
	type plain Lookup
	aux := struct {
		*plain
		MaxBodyBytes int64 `json:"max_body_bytes,omitempty"`
	}{plain: (*plain)(l)}
	if err := strictUnmarshal(b, &aux); err != nil {
		return err
	}
	if l.MaxBodySize == 0 {
		l.MaxBodySize = aux.MaxBodyBytes
	}
	return nil
}

// CaddyModule returns the Caddy module information.
func (Lookup) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.mediaguard_lookup", New: func() caddy.Module { return new(Lookup) }}
}

// Provision builds the API over the shared app's matcher.
func (l *Lookup) Provision(ctx caddy.Context) error {
	a, err := ctx.App("mediaguard")
	if err != nil {
		return fmt.Errorf("mediaguard_lookup: loading app: %w", err)
	}
	app := a.(*App)
	l.app = app
	key, err := secret(caddy.NewReplacer(), "mediaguard_lookup: api_key", l.APIKey)
	if err != nil {
		return err
	}
	l.h, err = app.svc.Lookup(service.LookupConfig{
		APIKey:       key,
		MaxBodyBytes: l.MaxBodySize,
		RateLimit:    l.RateLimit,
		RateBurst:    l.RateBurst,
		OnAnswer:     countLookup,
		Logger:       ctx.Logger(),
	})
	if err != nil {
		return err
	}
	presetLookupSeries(key != "")
	return nil
}

// countLookup counts one lookup API answer.
func countLookup(a lookupapi.Answer) {
	lookupRequests.WithLabelValues(a.Action, a.Auth).Inc()
	lookupSeconds.WithLabelValues(a.Action).Observe(a.Duration.Seconds())
}

// presetLookupSeries creates, at 0, the lookup series this handler can
// produce (with or without an API key), so that the first block already
// shows as an increase.
func presetLookupSeries(keyed bool) {
	passed := lookupapi.AuthOff
	if keyed {
		passed = lookupapi.AuthOK
		lookupRequests.WithLabelValues(lookupapi.ActionUnauthorized, lookupapi.AuthMissing)
		lookupRequests.WithLabelValues(lookupapi.ActionUnauthorized, lookupapi.AuthWrong)
	}
	for _, action := range []string{lookupapi.ActionBlock, lookupapi.ActionAllow, lookupapi.ActionUnscanned, lookupapi.ActionHealth, lookupapi.ActionBadRequest, lookupapi.ActionError} {
		lookupRequests.WithLabelValues(action, passed)
	}
	lookupRequests.WithLabelValues(lookupapi.ActionRateLimited, lookupapi.AuthUnchecked)
	lookupRequests.WithLabelValues(lookupapi.ActionBadRequest, lookupapi.AuthUnchecked)
	for _, action := range lookupapi.Actions {
		lookupSeconds.WithLabelValues(action)
	}
}

// ServeHTTP answers the request; it never calls next.
func (l *Lookup) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	l.app.drain.enter()
	defer l.app.drain.leave()
	l.h.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile parses:
//
//	mediaguard_lookup {
//		api_key KEY
//		max_body_size SIZE
//		rate_limit PER_SECOND [BURST]
//		rate_burst BURST
//	}
func (l *Lookup) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return gateOptions{key: &l.APIKey, size: &l.MaxBodySize, rate: &l.RateLimit, burst: &l.RateBurst}.parseBlock(d, "mediaguard_lookup")
}

func parseLookup(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var l Lookup
	err := l.UnmarshalCaddyfile(h.Dispenser)
	return &l, err
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Lookup)(nil)
	_ caddyhttp.MiddlewareHandler = (*Lookup)(nil)
	_ caddyfile.Unmarshaler       = (*Lookup)(nil)
)
