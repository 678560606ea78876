package caddymodule

import (
	"fmt"
	"net/http"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
)

func init() {
	caddy.RegisterModule(Handler{})
	httpcaddyfile.RegisterHandlerDirective("mediaguard", parseHandler)
	// Before reverse_proxy (so no `order` line is needed) and therefore
	// inside encode: we see the upstream's uncompressed bytes.
	httpcaddyfile.RegisterDirectiveOrder("mediaguard", httpcaddyfile.Before, "reverse_proxy")
}

// Handler is the `mediaguard` HTTP handler: it inspects every Matrix media
// upload and download passing to the next handler (reverse_proxy) and
// refuses listed media. Its settings live in the global `mediaguard` app.
//
// For every media request it decides, it sets the placeholder
// {http.vars.mediaguard_verdict} (for access logs and later handlers) to
// the verdict: clean, blocked, late_blocked, known_clean, known_blocked,
// unscannable, unscanned (a backend was down, fail open), refused (a
// backend was down, fail closed) or undecodable. Requests that are not
// media leave it unset.
//
// For every block (blocked, late_blocked) it emits the Caddy event
// `mediaguard.blocked`, before the response goes out, with the data
// direction (upload or download), endpoint, verdict, media (server/id,
// when known), bank, hash_type, variant (what matched: stored, frame,
// quadrant, ...), matched_hash_prefix (at most 16 characters), distance,
// source, confidence, sha256 (of the bytes) and user (the requester's
// Matrix ID, "" when unknown). Event handlers run synchronously: keep
// them quick.
type Handler struct {
	app *App
}

// CaddyModule returns the Caddy module information.
func (Handler) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "http.handlers.mediaguard", New: func() caddy.Module { return new(Handler) }}
}

// Provision finds the shared app (loading it with defaults if the global
// block is absent).
func (h *Handler) Provision(ctx caddy.Context) error {
	a, err := ctx.App("mediaguard")
	if err != nil {
		return fmt.Errorf("mediaguard: loading app: %w", err)
	}
	h.app = a.(*App)
	return nil
}

// ServeHTTP implements caddyhttp.MiddlewareHandler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request, next caddyhttp.Handler) error {
	h.app.drain.enter()
	defer h.app.drain.leave()
	h.app.resolveWhoami()
	return h.app.svc.Proxy().ServeHTTP(w, r, next.ServeHTTP)
}

// UnmarshalCaddyfile takes no arguments: `mediaguard`.
func (h *Handler) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next()
	if d.NextArg() {
		return d.Errf("mediaguard takes no arguments; configure it in the global mediaguard { } block")
	}
	if d.NextBlock(0) {
		return d.Errf("mediaguard takes no block; configure it in the global mediaguard { } block")
	}
	return nil
}

func parseHandler(h httpcaddyfile.Helper) (caddyhttp.MiddlewareHandler, error) {
	var m Handler
	err := m.UnmarshalCaddyfile(h.Dispenser)
	return &m, err
}

// Interface guards.
var (
	_ caddy.Provisioner           = (*Handler)(nil)
	_ caddyhttp.MiddlewareHandler = (*Handler)(nil)
	_ caddyfile.Unmarshaler       = (*Handler)(nil)
)
