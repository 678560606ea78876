package ledger

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize"
	"github.com/jackc/pgx/v5"
)

// Check reports on the store sp names as a start would find it, without
// writing to it or taking its lock (a running mediaguard may hold both):
// for the embedded file, its mode and size, or that its directory lets a
// start create it; for PostgreSQL, that it answers and how many records
// its ledger holds. The detail never contains the DSN.
func Check(ctx context.Context, sp Spec) (detail string, err error) {
	if sp.Postgres || sp.DSN != "" {
		return checkPostgres(ctx, sp.DSN)
	}
	return checkBolt(sp.Path)
}

func checkBolt(path string) (string, error) {
	if path == "" {
		return "", errors.New("ledger: the path is empty")
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("%s: mode %04o, readable by others (a start refuses it: chmod 600 %s)", path, fi.Mode().Perm(), path)
		}
		if err := writableDir(filepath.Dir(path)); err != nil {
			return "", fmt.Errorf("%s: its directory is not writable (bbolt grows the file and needs it): %w", path, err)
		}
		return fmt.Sprintf("%s: %s, mode %04o", path, humanize.IBytes(uint64(fi.Size())), fi.Mode().Perm()), nil
	case errors.Is(err, fs.ErrNotExist):
		// A start creates the file and its directory (0700): the nearest
		// existing ancestor must let us.
		dir := filepath.Dir(path)
		for {
			if _, err := os.Stat(dir); err == nil {
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
		if err := writableDir(dir); err != nil {
			return "", fmt.Errorf("%s does not exist and cannot be created: %w", path, err)
		}
		return fmt.Sprintf("%s: not yet created; a start creates it (0600)", path), nil
	default:
		return "", err
	}
}

// writableDir proves dir takes a new file.
func writableDir(dir string) error {
	f, err := os.CreateTemp(dir, ".mediaguard-doctor-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

func checkPostgres(ctx context.Context, dsn string) (string, error) {
	if dsn == "" {
		return "", errors.New("ledger: the postgres DSN is empty")
	}
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return "", ErrBadDSN
	}
	where := fmt.Sprintf("database %q on %s:%d as %q", cfg.Database, cfg.Host, cfg.Port, cfg.User)
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", fmt.Errorf("postgres %s: %w", where, err)
	}
	defer conn.Close(context.Background())
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('mediaguard_ledger') IS NOT NULL`).Scan(&exists); err != nil {
		return "", fmt.Errorf("postgres %s: %w", where, err)
	}
	if !exists {
		return "postgres " + where + ": reachable; no ledger table yet (a start creates it)", nil
	}
	var n int64
	// The planner's estimate: a count(*) of millions of rows is no check.
	if err := conn.QueryRow(ctx, `SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = 'mediaguard_ledger'::regclass`).Scan(&n); err != nil {
		return "", fmt.Errorf("postgres %s: %w", where, err)
	}
	return fmt.Sprintf("postgres %s: reachable, about %d records", where, n), nil
}
