package ledger

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Spec says which store a ledger is kept in: an embedded file (Path) or a
// PostgreSQL database (DSN). Exactly one is set.
type Spec struct {
	// Path is the embedded ledger's file.
	Path string
	// DSN is a PostgreSQL connection string: a libpq URL
	// (postgres://user:password@host/db) or key=value string. It may
	// hold a password: it is never logged, and comes from a
	// placeholder such as {env.MEDIAGUARD_LEDGER_DSN} in a Caddyfile.
	DSN string
	// Postgres is set by `ledger postgres DSN` even when DSN is empty,
	// so that Open names the missing DSN rather than a missing path.
	Postgres bool
}

// String describes the store without the DSN (it may hold a password).
func (s Spec) String() string {
	if s.Postgres || s.DSN != "" {
		return "postgres"
	}
	return s.Path
}

// ParseSpec reads the arguments of the Caddyfile's ledger option:
// `ledger PATH` or `ledger postgres DSN`. A path named "postgres" is
// written "./postgres".
func ParseSpec(args []string) (Spec, error) {
	switch {
	case len(args) == 1 && args[0] != "postgres":
		if args[0] == "" {
			return Spec{}, errors.New("ledger: the ledger option's path is empty")
		}
		return Spec{Path: args[0]}, nil
	case len(args) >= 1 && args[0] == "postgres":
		if len(args) != 2 || strings.TrimSpace(args[1]) == "" {
			return Spec{}, errors.New("ledger: `ledger postgres` needs one DSN argument (a libpq URL or key=value string; quote it, and take it from {env.…} if it holds a password)")
		}
		return Spec{DSN: args[1], Postgres: true}, nil
	}
	return Spec{}, fmt.Errorf("ledger: the ledger option takes a path or `postgres DSN`, not %d arguments", len(args))
}

// Open opens the store spec names.
func Open(ctx context.Context, spec Spec) (Store, error) {
	if spec.Postgres || spec.DSN != "" {
		if spec.Path != "" {
			return nil, errors.New("ledger: both a path and a postgres DSN are set; choose one")
		}
		if strings.TrimSpace(spec.DSN) == "" {
			return nil, errors.New("ledger: the ledger option's postgres DSN is empty (an unset {env.…} placeholder?)")
		}
		return OpenPostgres(ctx, spec.DSN)
	}
	if spec.Path == "" {
		return nil, errors.New("ledger: the ledger option's path is empty")
	}
	return OpenBolt(spec.Path)
}

var (
	_ Store = (*Bolt)(nil)
	_ Store = (*Postgres)(nil)
)
