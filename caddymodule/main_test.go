package caddymodule

import (
	"os"
	"testing"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/mediaguard/mediaguard/internal/pgtest"
)

// caddyMainEnv, set to 1, makes this test binary the caddy command: its
// arguments are caddy's (e.g. mediaguard doctor --config FILE) and its
// exit status is caddy's. The binary holds what bin/caddy holds (the
// standard modules, through caddytest, and ours), so a test can run a
// command exactly as an operator would without building bin/caddy.
const caddyMainEnv = "MEDIAGUARD_TEST_AS_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(caddyMainEnv) == "1" {
		// Main exits on failure and returns on success; either way the
		// tests must not run here (they would start this process again).
		caddycmd.Main()
		os.Exit(0)
	}
	// pgtest.Run stops the PostgreSQL server a test started (the ledger
	// fleet test), once the tests are done.
	os.Exit(pgtest.Run(m))
}
