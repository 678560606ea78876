package doctor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/pgtest"
	"github.com/mediaguard/mediaguard/ledger"
)

func TestLedgerCheck(t *testing.T) {
	dir := t.TempDir()
	kept := filepath.Join(dir, "kept", "media.ledger")
	s, err := ledger.Open(context.Background(), ledger.Spec{Path: kept})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	loose := filepath.Join(dir, "loose.ledger")
	os.WriteFile(loose, nil, 0o644)
	os.Chmod(loose, 0o644)
	blocked := filepath.Join(dir, "ro")
	os.Mkdir(blocked, 0o500)

	cases := []struct {
		name string
		spec *ledger.Spec
		want want
	}{
		{"none", nil, want{"ledger", Warn, []string{"not set"}}},
		{"existing file", &ledger.Spec{Path: kept}, want{"ledger", OK, []string{kept, "mode 0600"}}},
		{"not yet created", &ledger.Spec{Path: filepath.Join(dir, "new", "media.ledger")}, want{"ledger", OK, []string{"a start creates it"}}},
		{"readable by others", &ledger.Spec{Path: loose}, want{"ledger", Fail, []string{"chmod 600"}}},
		{"postgres with a wrong password", &ledger.Spec{Postgres: true, DSN: "postgres://nobody:hunter2@127.0.0.1:1/none?connect_timeout=1"}, want{"ledger", Fail, []string{"a start fails"}}},
	}
	if os.Geteuid() != 0 { // root writes anywhere
		cases = append(cases, struct {
			name string
			spec *ledger.Spec
			want want
		}{"unwritable directory", &ledger.Spec{Path: filepath.Join(blocked, "x", "media.ledger")}, want{"ledger", Fail, []string{"cannot be created"}}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rs := check(t, Config{Ledger: c.spec}, c.want)
			if r, _ := find(rs, "ledger"); strings.Contains(r.Detail, "hunter2") {
				t.Errorf("the DSN's password is in the detail: %s", r.Detail)
			}
		})
	}
	t.Run("postgres", func(t *testing.T) {
		dsn := pgtest.Start(t)
		check(t, Config{Ledger: &ledger.Spec{Postgres: true, DSN: dsn}}, want{"ledger", OK, []string{"reachable", "no ledger table yet"}})
		s, err := ledger.Open(context.Background(), ledger.Spec{Postgres: true, DSN: dsn})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		check(t, Config{Ledger: &ledger.Spec{Postgres: true, DSN: dsn}}, want{"ledger", OK, []string{"reachable", "records"}})
	})
}

// TestMain stops the PostgreSQL server pgtest started, if any.
func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
