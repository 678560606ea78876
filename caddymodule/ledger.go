package caddymodule

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/mediaguard/mediaguard/ledger"
)

// LedgerSettings chooses the media ledger's store: one of Path or
// Postgres.
type LedgerSettings struct {
	// Path is the embedded ledger: one crash-safe file (bbolt), created
	// 0600, that one process at a time can open.
	Path string `json:"path,omitempty"`
	// Postgres is a PostgreSQL connection string (URL or key=value), for
	// several proxies sharing one ledger. Use a placeholder such as
	// {env.MEDIAGUARD_DSN}: one that resolves empty stops the start.
	Postgres string `json:"postgres,omitempty"`
}

// ledgerSpec resolves the settings into a store spec.
func (l *LedgerSettings) spec(repl replacer) (ledger.Spec, error) {
	switch {
	case l.Path != "" && l.Postgres != "":
		return ledger.Spec{}, errors.New("mediaguard: ledger: path and postgres are exclusive")
	case l.Path != "":
		p := repl.ReplaceAll(l.Path, "")
		if p == "" {
			return ledger.Spec{}, errors.New("mediaguard: ledger: the path resolves empty")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return ledger.Spec{}, fmt.Errorf("mediaguard: ledger: %w", err)
		}
		return ledger.Spec{Path: abs}, nil
	case l.Postgres != "":
		dsn, err := secret(repl, "mediaguard: ledger postgres DSN", l.Postgres)
		if err != nil {
			return ledger.Spec{}, err
		}
		return ledger.Spec{DSN: dsn, Postgres: true}, nil
	}
	return ledger.Spec{}, errors.New("mediaguard: ledger: a path or postgres DSN is required")
}

// ledgerPool shares open ledgers across config reloads: during a reload
// the old and new apps overlap, and the embedded file can be opened by
// one holder only.
var ledgerPool = caddy.NewUsagePool()

type sharedLedger struct{ ledger.Store }

func (s sharedLedger) Destruct() error { return s.Close() }

// poolKey names a store in ledgerPool without putting a DSN's password
// in memory twice under another name: the key is only compared.
func poolKey(sp ledger.Spec) string {
	if sp.Path != "" {
		return "path:" + sp.Path
	}
	return "postgres:" + sp.DSN
}

// openSharedLedger opens (or shares) the store and returns it with its pool
// key, to be released by close.
func openSharedLedger(sp ledger.Spec) (ledger.Store, string, error) {
	key := poolKey(sp)
	val, _, err := ledgerPool.LoadOrNew(key, func() (caddy.Destructor, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := ledger.Open(ctx, sp)
		return sharedLedger{st}, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("mediaguard: ledger: %w", err)
	}
	return val.(sharedLedger).Store, key, nil
}
