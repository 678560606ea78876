// Package sharedref finds the project's shared reference material
// (../shared beside the checkout: PDQ test vectors and protocol notes) for
// tests. It is not part of the repository, so tests that need it skip with a
// loud message where it is absent, and a clone elsewhere still passes.
package sharedref

import (
	"os"
	"path/filepath"
	"testing"
)

// Find returns the shared directory and whether it exists: the
// MEDIAGUARD_SHARED environment variable, else "shared" beside the module
// root.
func Find() (string, bool) {
	if d := os.Getenv("MEDIAGUARD_SHARED"); d != "" {
		return d, true
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			cand := filepath.Join(filepath.Dir(d), "shared")
			if st, err := os.Stat(cand); err == nil && st.IsDir() {
				return cand, true
			}
			return "", false
		}
		if filepath.Dir(d) == d {
			return "", false
		}
	}
}

// Dir returns the shared directory, or skips the test loudly.
func Dir(t testing.TB) string {
	t.Helper()
	if d, ok := Find(); ok {
		return d
	}
	t.Skip("SKIPPED LOUDLY: ../shared (reference vectors) not found beside the checkout; set MEDIAGUARD_SHARED to run this test")
	return ""
}

// PDQVectors returns ../shared/pdq-vectors or skips.
func PDQVectors(t testing.TB) string {
	return filepath.Join(Dir(t), "pdq-vectors")
}
