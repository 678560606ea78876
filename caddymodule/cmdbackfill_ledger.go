package caddymodule

import (
	"context"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/mediaguard/mediaguard/ledger"
)

// openLedgerSpec opens the ledger --ledger or the configuration names:
// "PATH" for the embedded file, "postgres DSN" for PostgreSQL (as the
// Caddyfile's ledger option reads), {env.X} placeholders resolved.
func openLedgerSpec(ctx context.Context, s string) (ledger.Store, error) {
	s = caddy.NewReplacer().ReplaceAll(s, "")
	args := []string{s}
	if rest, ok := strings.CutPrefix(s, "postgres "); ok {
		args = []string{"postgres", strings.TrimSpace(rest)}
	}
	spec, err := ledger.ParseSpec(args)
	if err != nil {
		return nil, err
	}
	return ledger.Open(ctx, spec)
}
