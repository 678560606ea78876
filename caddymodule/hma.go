package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mediaguard/mediaguard/hmaapi"
	"github.com/mediaguard/mediaguard/internal/apigate"
	"github.com/mediaguard/mediaguard/service"
)

func init() {
	caddy.RegisterModule(HMA{})
	httpcaddyfile.RegisterHandlerDirective("mediaguard_hma", parseHMA)
	httpcaddyfile.RegisterDirectiveOrder("mediaguard_hma", httpcaddyfile.Before, "reverse_proxy")
}

// HMA is the `mediaguard_hma` handler: the subset of ThreatExchange HMA
// 2.0's API that HMA clients such as the Matrix.org policy server call
// (POST /h/hash, GET /m/lookup, GET /c/banks, GET /m/index/status,
// /livez, /readyz, /status), served under the site root like an HMA base
// URL and answered by the proxy's own hashing and matcher.
type HMA struct {
	// APIKey, when set, must accompany every request but /livez, /readyz
	// and /status: as a bearer token (what HMA clients send, e.g.
	// policyserv's PS_HMA_API_KEY), the Basic-auth password or ?api_key=.
	// Use {env.X}; one that resolves empty stops the start.
	APIKey string `json:"api_key,omitempty"`
	// MaxBodySize bounds an /h/hash request body in bytes, multipart
	// framing included (default: the app's max_upload_size).
	MaxBodySize int64 `json:"max_body_size,omitempty"`
	// RateLimit is requests per second allowed per client IP (0 = off).
	// A media costs policyserv one /h/hash and one /m/lookup.
	RateLimit float64 `json:"rate_limit,omitempty"`
	// RateBurst is the burst allowed above RateLimit (default: RateLimit
	// rounded up).
	RateBurst int `json:"rate_burst,omitempty"`

	h   *hmaapi.Handler
	app *App
}

// CaddyModule returns the Caddy module information.
func (HMA) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.mediaguard_hma", New: func() caddy.Module { return new(HMA) }}
}

// Provision builds the HMA surface over the shared app's proxy and
// matcher.
func (m *HMA) Provision(ctx caddy.Context) error {
	a, err := ctx.App("mediaguard")
	if err != nil {
		return fmt.Errorf("mediaguard_hma: loading app: %w", err)
	}
	m.app = a.(*App)
	key, err := secret(caddy.NewReplacer(), "mediaguard_hma: api_key", m.APIKey)
	if err != nil {
		return err
	}
	if key == "" {
		// /m/lookup answers distances: without a key, anyone who reaches
		// the site can probe edits of a picture until one slips under
		// the threshold.
		ctx.Logger().Warn("mediaguard_hma has no api_key: anyone who can reach this site can query the hash lists; keep it on loopback (bind 127.0.0.1) or set api_key {env.…}")
	}
	if m.MaxBodySize < 0 || m.RateBurst < 0 || m.RateLimit < 0 {
		return fmt.Errorf("mediaguard_hma: max_body_size, rate_limit and rate_burst must not be negative")
	}
	m.h, err = m.app.svc.HMA(service.HMAConfig{
		APIKey:       key,
		MaxBodyBytes: m.MaxBodySize,
		RateLimit:    m.RateLimit,
		RateBurst:    m.RateBurst,
		ClientKey:    caddyClientKey,
		OnAnswer:     countHMA,
		Logger:       ctx.Logger(),
	})
	if err != nil {
		return fmt.Errorf("mediaguard_hma: %w", err)
	}
	presetHMASeries()
	return nil
}

// caddyClientKey rate limits by Caddy's idea of the client IP (the
// trusted_proxies setting decides whether a forwarded address counts),
// IPv6 by /64.
func caddyClientKey(r *http.Request) string {
	if ip, ok := caddyhttp.GetVar(r.Context(), caddyhttp.ClientIPVarKey).(string); ok && ip != "" {
		return apigate.IPKey(ip)
	}
	return apigate.RemoteIPKey(r)
}

// ServeHTTP answers the request; it never calls next.
func (m *HMA) ServeHTTP(w http.ResponseWriter, r *http.Request, _ caddyhttp.Handler) error {
	m.app.drain.enter()
	defer m.app.drain.leave()
	m.h.ServeHTTP(w, r)
	return nil
}

// UnmarshalCaddyfile parses:
//
//	mediaguard_hma {
//		api_key KEY
//		max_body_size SIZE
//		rate_limit PER_SECOND [BURST]
//		rate_burst BURST
//	}
func (m *HMA) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	return gateOptions{key: &m.APIKey, size: &m.MaxBodySize, rate: &m.RateLimit, burst: &m.RateBurst}.parseBlock(d, "mediaguard_hma")
}

func parseHMA(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m HMA
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*HMA)(nil)
	_ caddyhttp.MiddlewareHandler = (*HMA)(nil)
	_ caddyfile.Unmarshaler       = (*HMA)(nil)
)
