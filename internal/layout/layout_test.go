package layout

import (
	"os/exec"
	"strings"
	"testing"
)

// adapters may import Caddy; nothing else may, so every stage can be
// tested and reused without a server.
var adapters = map[string]bool{
	"github.com/mediaguard/mediaguard/caddymodule": true,
	"github.com/mediaguard/mediaguard/xcaddy":      true,
}

// mustNotImport names, per stage, the stages it must not reach (directly
// or not): the flow is hash -> match -> intercept -> act, and serve.
var mustNotImport = map[string][]string{
	"github.com/mediaguard/mediaguard/hashing":    {"matcher", "mediaproxy", "lookupapi", "hmaapi", "notify", "homeserver", "audit"},
	"github.com/mediaguard/mediaguard/matcher":    {"mediaproxy", "lookupapi", "hmaapi", "notify", "homeserver"},
	"github.com/mediaguard/mediaguard/mediaproxy": {"lookupapi", "hmaapi", "notify", "homeserver", "audit"},
	"github.com/mediaguard/mediaguard/notify":     {"mediaproxy", "matcher"},
	"github.com/mediaguard/mediaguard/homeserver": {"mediaproxy", "matcher"},
	// The moderators' commands reach the stages only through the
	// Moderation interface the service implements.
	"github.com/mediaguard/mediaguard/modcmd": {"mediaproxy", "matcher", "ledger", "lookupapi", "actions", "service", "audit"},
	// The act stage turns decisions into actions; the wiring above it
	// (service) and the serve stage are none of its business.
	"github.com/mediaguard/mediaguard/actions": {"lookupapi", "hmaapi", "service"},
	// The deployment check reads the stages' state and never acts or
	// serves: it reaches the stages' own clients, not the wiring that
	// would quarantine, notify or answer lookups.
	"github.com/mediaguard/mediaguard/doctor": {"actions", "service", "lookupapi", "hmaapi"},
	// Learning from quarantines feeds a bank through the proxy's own
	// scan; it acts on nothing and serves nothing.
	"github.com/mediaguard/mediaguard/learn": {"actions", "service", "lookupapi", "hmaapi", "notify"},
	// The serve stage answers questions over the matcher and the proxy's
	// hashing; it never acts, and the two APIs share only internal/apigate.
	"github.com/mediaguard/mediaguard/lookupapi": {"hmaapi", "actions", "notify", "homeserver", "audit", "service"},
	"github.com/mediaguard/mediaguard/hmaapi":    {"lookupapi", "actions", "notify", "homeserver", "audit", "service", "ledger"},
	// The API gate knows no stage at all.
	"github.com/mediaguard/mediaguard/internal/apigate": {"hashing", "matcher", "mediaproxy", "lookupapi", "hmaapi", "actions", "service"},
}

func TestOnlyTheAdapterImportsCaddy(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skipf("SKIPPED: no go command to list packages: %v", err)
	}
	out, err := exec.Command("go", "list", "-tags", "nodynamic", "-deps", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "github.com/mediaguard/mediaguard/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	checked := 0
	for line := range strings.SplitSeq(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		if !strings.HasPrefix(pkg, "github.com/mediaguard/mediaguard") || strings.Contains(pkg, "/bench/") || strings.HasSuffix(pkg, "/internal/e2e") {
			continue
		}
		checked++
		for _, d := range deps {
			if strings.HasPrefix(d, "github.com/caddyserver/caddy") && !adapters[pkg] {
				t.Errorf("%s imports Caddy (through %s); only the adapter may", pkg, d)
				break
			}
		}
		for stage, banned := range mustNotImport {
			if pkg != stage && !strings.HasPrefix(pkg, stage+"/") {
				continue
			}
			for _, d := range deps {
				for _, b := range banned {
					if d == "github.com/mediaguard/mediaguard/"+b || strings.HasPrefix(d, "github.com/mediaguard/mediaguard/"+b+"/") {
						t.Errorf("%s imports %s: the %s stage must not", pkg, d, stage)
					}
				}
			}
		}
	}
	if checked < 10 {
		t.Fatalf("only %d of our packages listed", checked)
	}
}
