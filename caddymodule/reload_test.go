package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

// bankNames are the banks caddy_mediaguard_bank_entries reports now.
func bankNames(t *testing.T) []string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(banks)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range mfs {
		if mf.GetName() != "caddy_mediaguard_bank_entries" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "bank" {
					seen[l.GetValue()] = true
				}
			}
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// When a reload fails because another module cannot provision, Caddy
// keeps running the old config: the scrape-time metrics must go on
// reading the old app, not the new one that was provisioned and thrown
// away. Once Caddy stops, they read no app at all.
func TestMetricsFollowTheRunningConfig(t *testing.T) {
	dir := t.TempDir()
	for _, b := range []string{"OLD", "NEW"} {
		if err := os.WriteFile(filepath.Join(dir, b), []byte("md5 0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := func(bank, routes string) []byte {
		// No admin endpoint: other tests (and other processes) use it.
		return []byte(fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},"apps":{
			"mediaguard":{"banks":[{"name":%q,"path":%q}],"hashing":"inline","temp_dir":%q}%s}}`,
			bank, filepath.Join(dir, bank), dir, routes))
	}
	if err := caddy.Load(config("OLD", ""), true); err != nil {
		t.Fatal(err)
	}
	defer caddy.Stop()
	if got := bankNames(t); len(got) != 1 || got[0] != "OLD" {
		t.Fatalf("running config: banks %v", got)
	}
	// The new mediaguard app provisions; the lookup handler after it
	// fails (its key resolves empty), so the whole config is refused.
	failing := fmt.Sprintf(`,"http":{"servers":{"s":{"listen":["127.0.0.1:%d"],"routes":[{"handle":[
		{"handler":"mediaguard"},{"handler":"mediaguard_lookup","api_key":"{env.MEDIAGUARD_TEST_UNSET_KEY}"}]}]}}}`, testkit.FreePort(t))
	os.Unsetenv("MEDIAGUARD_TEST_UNSET_KEY")
	if err := caddy.Load(config("NEW", failing), true); err == nil {
		t.Fatal("the failing config loaded")
	}
	if got := bankNames(t); len(got) != 1 || got[0] != "OLD" {
		t.Fatalf("after a failed reload: banks %v, want the running config's [OLD]", got)
	}
	if err := caddy.Load(config("NEW", ""), true); err != nil {
		t.Fatal(err)
	}
	if got := bankNames(t); len(got) != 1 || got[0] != "NEW" {
		t.Fatalf("after a reload: banks %v", got)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if got := bankNames(t); len(got) != 0 {
		t.Fatalf("after stop: banks %v", got)
	}
}
