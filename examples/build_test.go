package examples

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mediaguard/mediaguard/internal/e2e"
)

// repo is the repository root, from this package's directory.
const repo = ".."

var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
	buildLog  string
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// staticCaddy builds bin/caddy the way `make build` does (the Makefile's
// own recipe, into a temporary directory) once per test binary, and
// returns its path. Building takes from seconds (cached) to minutes (cold),
// so under -short it skips, unless MEDIAGUARD_REQUIRE_E2E=1.
func staticCaddy(t *testing.T) string {
	t.Helper()
	if testing.Short() && !e2e.Required() {
		t.Skip("SKIPPED LOUDLY: builds bin/caddy with `make build` (up to minutes cold); runs without -short or with " + e2e.RequireEnv + "=1")
	}
	if _, err := exec.LookPath("make"); err != nil {
		e2e.SkipOrFail(t, "`make` not found: cannot build bin/caddy with the Makefile's recipe", "install make (apt-get install make)")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "mediaguard-examples-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "caddy")
		abs, err := filepath.Abs(repo)
		if err != nil {
			buildErr = err
			return
		}
		cmd := exec.Command("make", "-C", abs, "build", "CADDY="+builtBin)
		out, err := cmd.CombinedOutput()
		buildLog, buildErr = string(out), err
	})
	if buildErr != nil {
		t.Fatalf("make build: %v\n%s", buildErr, buildLog)
	}
	return builtBin
}

// The container image copies bin/caddy into an image with nothing else
// (FROM scratch): `make build` must therefore produce a static binary, no
// program interpreter (the dynamic loader), no dynamic section, no
// shared libraries.
func TestMakeBuildIsStatic(t *testing.T) {
	bin := staticCaddy(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			t.Errorf("bin/caddy has a program interpreter (PT_INTERP): it is dynamically linked; is CGO_ENABLED=0 missing from the Makefile's build?")
		case elf.PT_DYNAMIC:
			t.Errorf("bin/caddy has a dynamic section (PT_DYNAMIC)")
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil {
		t.Errorf("reading imported libraries: %v", err)
	} else if len(libs) > 0 {
		t.Errorf("bin/caddy needs shared libraries %v", libs)
	}
	// What the image's ENTRYPOINT and CMD run must work there: `caddy
	// version` with no environment at all, as in the empty image.
	cmd := exec.Command(bin, "version")
	cmd.Env = []string{}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("caddy version with an empty environment: %v\n%s", err, out)
	}
}
