package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/fakes"
)

// runDoctorCommand runs `mediaguard doctor ARGS` in-process and returns
// its output and error (an error is exit status 1).
func runDoctorCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c := doctorCommand()
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetErr(io.Discard) // cobra's "Error: ..." line; the error is returned
	// Never nil: cobra then reads os.Args, which caddytest rewrites to
	// "caddy run ..." once any test before this one has started Caddy.
	c.SetArgs(append([]string{}, args...))
	err := c.Execute()
	return out.String(), err
}

// wantLines checks that each of lines starts a line of out, runs of
// blanks (the checklist's column padding) counting as one.
func wantLines(t *testing.T, out string, lines ...string) {
	t.Helper()
	squeeze := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	for _, l := range lines {
		found := false
		for got := range strings.SplitSeq(out, "\n") {
			want := squeeze(l)
			if strings.HasSuffix(l, " ") {
				want += " " // the whole name, not a prefix of another
			}
			found = found || strings.HasPrefix(squeeze(got)+" ", want)
		}
		if !found {
			t.Errorf("no line starting %q in:\n%s", l, out)
		}
	}
}

// The command loads a Caddyfile as caddy run does ({env.X} placeholders
// resolved), maps it as Provision does and checks each part against the
// fakes of Synapse and HMA.
func TestDoctorCommand(t *testing.T) {
	syn := fakes.NewSynapse(t)
	syn.Users["bot-secret-token"] = "@bot:hs.example"
	syn.Joined["@bot:hs.example"] = []string{"!mgmt:hs.example"}
	hma := fakes.NewHMA(t)
	hma.SetBank("CSAM", 1)
	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	os.WriteFile(bank, []byte("sha256 "+strings.Repeat("ab", 32)+" x\n"), 0o600)
	caddyfile := filepath.Join(dir, "Caddyfile")
	write := func(hmaBanks, lookupKey string) {
		os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin off
	mediaguard {
		bank TEST %s
		hma %s {
			banks %s
		}
		homeserver %s
		server_name hs.example
		temp_dir %s
		audit_log %s
		ledger %s
		notify matrix {
			homeserver %s
			access_token {env.MG_TEST_BOT_TOKEN}
			room !mgmt:hs.example
		}
		synapse_admin {
			homeserver %s
			access_token {env.MG_TEST_ADMIN_TOKEN}
		}
	}
}
http://127.0.0.1:1 {
	bind 127.0.0.1
	mediaguard_lookup /_mediaguard/lookup {
		api_key %s
	}
	mediaguard
	reverse_proxy %s
}
`, bank, hma.URL, hmaBanks, syn.URL, dir, filepath.Join(dir, "audit.log"), filepath.Join(dir, "ledger", "media.ledger"), syn.URL, syn.URL, lookupKey, strings.TrimPrefix(syn.URL, "http://"))), 0o600)
	}
	t.Setenv("MG_TEST_BOT_TOKEN", "bot-secret-token")
	t.Setenv("MG_TEST_ADMIN_TOKEN", syn.AdminToken)
	t.Setenv("MG_TEST_LOOKUP_KEY", "lookup-secret")
	hmaHost := strings.TrimPrefix(hma.URL, "http://")

	write("CSAM", "{env.MG_TEST_LOOKUP_KEY}")
	out, err := runDoctorCommand(t, "--config", caddyfile)
	if err != nil {
		t.Fatalf("all is well, yet: %v\n%s", err, out)
	}
	wantLines(t, out,
		"✓ config ", "✓ bank TEST ", "✓ homeserver "+syn.URL+" ", "✓ server_name ", "✓ notify bot ", "✓ notify room ",
		"✓ synapse_admin ", "✓ hma "+hmaHost+" ", "✓ hma "+hmaHost+" banks ", "✓ temp_dir ", "✓ audit_log ", "✓ ledger "+filepath.Join(dir, "ledger", "media.ledger")+": not yet created", "all checks passed, 0 warnings")
	if !strings.Contains(out, "the mediaguard handler in 1 place, mediaguard_lookup in 1") {
		t.Errorf("handlers not counted:\n%s", out)
	}
	// The reverse_proxy upstream behind the handler is the homeserver.
	if !strings.Contains(out, "(used by homeserver, reverse_proxy, notify matrix, synapse_admin)") {
		t.Errorf("the upstream is not checked as the homeserver:\n%s", out)
	}

	// A misspelt HMA bank and a bot whose token was revoked: exit 1.
	write("CSAM TYPO", "{env.MG_TEST_LOOKUP_KEY}")
	delete(syn.Users, "bot-secret-token")
	out, err = runDoctorCommand(t, "--config", caddyfile, "--adapter", "caddyfile")
	// (The room is not checked with a token that does not work.)
	if err == nil || !strings.Contains(err.Error(), "2 of 11 checks failed") {
		t.Fatalf("want 2 failures, got %v:\n%s", err, out)
	}
	wantLines(t, out, "✗ hma "+hmaHost+" banks  missing in HMA: TYPO", "✗ notify bot ", "2 of 11 checks FAILED")

	// --json: one object per check.
	out, _ = runDoctorCommand(t, "--config", caddyfile, "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var first map[string]any
	if len(lines) != 11 || json.Unmarshal([]byte(lines[0]), &first) != nil || first["name"] != "config" || first["status"] != "ok" {
		t.Fatalf("json output:\n%s", out)
	}

	// An unset secret stops a start, so it fails the config and nothing
	// else is checked.
	t.Setenv("MG_TEST_BOT_TOKEN", "")
	out, err = runDoctorCommand(t, "--config", caddyfile)
	if err == nil || !strings.HasPrefix(out, "✗ config ") || !strings.Contains(out, "{env.MG_TEST_BOT_TOKEN} resolves to an empty value") || strings.Count(out, "\n") != 2 {
		t.Fatalf("unset bot token: %v\n%s", err, out)
	}
	t.Setenv("MG_TEST_BOT_TOKEN", "bot-secret-token")
	write("CSAM", "{env.MG_TEST_UNSET_LOOKUP_KEY}")
	if out, err = runDoctorCommand(t, "--config", caddyfile); err == nil || !strings.Contains(out, "mediaguard_lookup: api_key {env.MG_TEST_UNSET_LOOKUP_KEY} resolves to an empty value") {
		t.Fatalf("unset lookup key: %v\n%s", err, out)
	}
	for _, s := range []string{"bot-secret-token", syn.AdminToken, "lookup-secret"} {
		if strings.Contains(out, s) {
			t.Fatalf("secret %q printed:\n%s", s, out)
		}
	}
}

// Without --config the Caddyfile in the current directory is checked, as
// caddy run would use it; without one there is nothing to check.
func TestDoctorDefaultConfig(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	out, err := runDoctorCommand(t)
	if err == nil || !strings.Contains(out, "✗ config  no configuration: no Caddyfile in the current directory") {
		t.Fatalf("no Caddyfile: %v\n%s", err, out)
	}
	// A site proxying without mediaguard: its upstream is not the
	// homeserver mediaguard guards, so it is not checked.
	os.WriteFile("Caddyfile", []byte("{\n\tadmin off\n\tmediaguard {\n\t\ttemp_dir "+dir+"\n\t\tbank BAD_BANK "+filepath.Join(dir, "missing.bank")+"\n\t}\n}\n"+
		"http://127.0.0.1:1 {\n\tbind 127.0.0.1\n\treverse_proxy 127.0.0.1:9\n}\n"), 0o600)
	out, err = runDoctorCommand(t)
	if err == nil {
		t.Fatalf("a bank that does not load must fail:\n%s", out)
	}
	wantLines(t, out, "! config Caddyfile (caddyfile adapter): valid", "✗ bank BAD_BANK ", "✓ temp_dir ", "! audit_log ")
	if !strings.Contains(out, "no media passes through mediaguard") || strings.Contains(out, "homeserver") {
		t.Errorf("a config without the handler is not flagged, or its upstream checked:\n%s", out)
	}

	// A JSON config, and one Caddy itself would refuse.
	os.WriteFile("mg.json", []byte(`{"apps":{"mediaguard":{"temp_dir":"`+dir+`","pdq_threshold":99}}}`), 0o600)
	if out, err := runDoctorCommand(t, "--config", "mg.json"); err == nil || !strings.Contains(out, "pdq_threshold 99 out of range") {
		t.Fatalf("bad threshold: %v\n%s", err, out)
	}
	os.WriteFile("mg.json", []byte(`{"apps":{"mediaguard":{"no_such_option":1}}}`), 0o600)
	if out, err := runDoctorCommand(t, "--config", "mg.json"); err == nil || !strings.Contains(out, `unknown field "no_such_option"`) {
		t.Fatalf("unknown option: %v\n%s", err, out)
	}
}
