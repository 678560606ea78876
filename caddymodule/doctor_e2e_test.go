package caddymodule

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/fakes"
)

// TestDoctorEndToEnd runs `caddy mediaguard doctor` as an operator would
// (this test binary acting as bin/caddy, see TestMain) against a real
// Dendrite, with HMA played by the fake: the exit status and the
// checklist, with the bot invited, then joined, then its token wrong.
func TestDoctorEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	admin := hs.RegisterUser(t, "admin", "correct-horse-battery", true)
	room := mod.CreateRoom(t)
	mod.Invite(t, room, bot.ID)
	hma := fakes.NewHMA(t)
	hma.SetBank("CSAM", 1)

	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	os.WriteFile(bank, []byte("sha256 "+strings.Repeat("cd", 32)+" listed\nnot a line\n"), 0o600)
	caddyfile := filepath.Join(dir, "Caddyfile")
	os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin off
	mediaguard {
		bank TEST %s
		hma %s {
			banks CSAM
		}
		homeserver %s
		server_name %s
		temp_dir %s
		audit_log %s
		ledger %s
		notify matrix {
			homeserver %s
			access_token {env.MG_E2E_BOT_TOKEN}
			room %s
		}
		synapse_admin {
			homeserver %s
			access_token {env.MG_E2E_ADMIN_TOKEN}
		}
	}
}
http://127.0.0.1:1 {
	bind 127.0.0.1
	mediaguard
	reverse_proxy %s
}
`, bank, hma.URL, hs.URL, hs.ServerName, dir, filepath.Join(dir, "audit", "audit.log"), filepath.Join(dir, "ledger", "media.ledger"), hs.URL, room, hs.URL, strings.TrimPrefix(hs.URL, "http://"))), 0o600)

	doctor := func(botToken string) (stdout string, status int) {
		t.Helper()
		// Not os.Args[0]: caddytest overwrites os.Args once a test has
		// started Caddy in-process.
		self, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(self, "mediaguard", "doctor", "--config", caddyfile)
		cmd.Env = append(os.Environ(), caddyMainEnv+"=1", "MG_E2E_BOT_TOKEN="+botToken, "MG_E2E_ADMIN_TOKEN="+admin.AccessToken)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err = cmd.Run()
		var exit *exec.ExitError
		switch {
		case errors.As(err, &exit):
			status = exit.ExitCode()
		case err != nil:
			t.Fatalf("running the doctor: %v", err)
		}
		for _, secret := range []string{bot.AccessToken, admin.AccessToken, botToken} {
			if strings.Contains(out.String()+errOut.String(), secret) {
				t.Fatalf("a token was printed:\n%s\n%s", out.String(), errOut.String())
			}
		}
		t.Logf("exit status %d:\n%s", status, out.String())
		return out.String(), status
	}
	hmaHost := strings.TrimPrefix(hma.URL, "http://")
	common := []string{
		"✓ config " + caddyfile + " (caddyfile adapter): valid",
		"! bank TEST 1 entry (sha256 1) from " + bank + "; 1 entry skipped, the first: " + bank + ":2:",
		"✓ homeserver " + hs.URL + " answers, Matrix v1.",
		// Dendrite here serves no federation API, so no key endpoint:
		// the name comes from the bot's user ID.
		"✓ server_name localhost (from the bot's user ID " + bot.ID + "), as configured",
		"✓ notify bot token valid: " + bot.ID,
		"! synapse_admin not applicable: " + hs.URL + " has no Synapse admin API (404 M_UNRECOGNIZED",
		"✓ hma " + hmaHost + " answers lookups",
		"✓ hma " + hmaHost + " banks present: CSAM",
		"✓ temp_dir " + filepath.Join(dir, fmt.Sprintf("mediaguard-%d", os.Getuid())) + ": mode 0700",
		"✓ audit_log " + filepath.Join(dir, "audit", "audit.log") + ": created at start (0600) under " + dir,
		"✓ ledger " + filepath.Join(dir, "ledger", "media.ledger") + ": not yet created; a start creates it (0600)",
	}

	// Invited, not joined yet: mediaguard joins at start, so a warning.
	out, status := doctor(bot.AccessToken)
	if status != 0 {
		t.Fatalf("exit status %d with nothing failing", status)
	}
	wantLines(t, out, append(common, "! notify room "+bot.ID+" is not in "+room+" yet", "no check failed, 3 warnings")...)

	bot.Join(t, room)
	out, status = doctor(bot.AccessToken)
	if status != 0 {
		t.Fatalf("exit status %d with nothing failing", status)
	}
	wantLines(t, out, append(common, "✓ notify room "+bot.ID+" is in "+room, "no check failed, 2 warnings")...)

	// A token that is not the bot's: exit status 1.
	out, status = doctor("syt_not_the_bots_token")
	if status != 1 {
		t.Fatalf("exit status %d with the bot's token wrong, want 1", status)
	}
	wantLines(t, out, "✗ notify bot the access token does not work: the homeserver does not know it (401 M_UNKNOWN_TOKEN)", "1 of 11 checks FAILED, 2 warnings")
}
