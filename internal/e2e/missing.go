package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// MissingTool ends t because a program it needs is not installed: a loud
// skip that says how to install it, or, when MEDIAGUARD_REQUIRE_E2E=1
// (CI), a failure, so that nothing CI must run is skipped unnoticed.
func MissingTool(t testing.TB, tool, install string) {
	t.Helper()
	msg := fmt.Sprintf("\n"+
		"************************************************************************\n"+
		"*** %s NOT FOUND: %s not run.\n"+
		"***   install it with:  %s\n"+
		"***   VERDICT\n"+
		"************************************************************************",
		tool, t.Name(), install)
	if required() {
		t.Fatal(strings.Replace(msg, "VERDICT", RequireEnv+"=1 is set, so this is a FAILURE, not a skip.", 1))
	}
	t.Skip(strings.Replace(msg, "VERDICT", "SKIPPED LOUDLY: set "+RequireEnv+"=1 to make this a failure instead of a skip.", 1))
}
