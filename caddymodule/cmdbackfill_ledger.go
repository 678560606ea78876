package caddymodule

import (
	"context"
	"encoding/json"
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

// ledgerSpecOf is the ledger apps.mediaguard names in an adapted
// configuration, in openLedgerSpec's form: a path string, or an object
// with a path or a PostgreSQL dsn. "" when it names none.
func ledgerSpecOf(raw []byte) string {
	var parsed struct {
		Apps struct {
			Mediaguard struct {
				Ledger json.RawMessage `json:"ledger"`
			} `json:"mediaguard"`
		} `json:"apps"`
	}
	if json.Unmarshal(raw, &parsed) != nil || len(parsed.Apps.Mediaguard.Ledger) == 0 {
		return ""
	}
	var path string
	if json.Unmarshal(parsed.Apps.Mediaguard.Ledger, &path) == nil {
		return path
	}
	var obj struct {
		Path string `json:"path"`
		DSN  string `json:"dsn"`
	}
	json.Unmarshal(parsed.Apps.Mediaguard.Ledger, &obj)
	if obj.DSN != "" {
		return "postgres " + obj.DSN
	}
	return obj.Path
}
