package e2e

import "strings"

// SkipOrFail stops t because a tool it needs is missing: a loud skip that
// says what did not run and how to enable it, or, when
// MEDIAGUARD_REQUIRE_E2E=1 (CI), a failure, since there everything must
// run. StartDendrite does the same for the homeserver's binaries.
func SkipOrFail(t T, what, enable string) {
	t.Helper()
	msg := "\n" +
		"************************************************************************\n" +
		"*** SKIPPED LOUDLY: " + what + "\n" +
		"***   " + strings.ReplaceAll(enable, "\n", "\n***   ") + "\n"
	if required() {
		t.Fatal(msg + "*** " + RequireEnv + "=1 is set, so this is a FAILURE, not a skip.\n" +
			"************************************************************************")
	}
	t.Skip(msg + "*** set " + RequireEnv + "=1 to make this a failure instead of a skip.\n" +
		"************************************************************************")
}

// Required reports whether MEDIAGUARD_REQUIRE_E2E=1 asks for every test to
// run rather than skip.
func Required() bool { return required() }

// MissingTool ends t because a program it needs is not installed (see
// SkipOrFail).
func MissingTool(t T, tool, install string) {
	t.Helper()
	SkipOrFail(t, tool+" not found: this test was not run", "install it with:  "+install)
}
