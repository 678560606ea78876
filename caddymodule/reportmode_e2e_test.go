package caddymodule

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// TestReportModeEndToEnd: on a real Dendrite behind a real Caddy, with
// the global mode report, a re-encoded copy of a picture listed in a
// bank that inherits it passes, is stored and downloads, and posts
// exactly one "would have blocked" notice with its category (no command
// is sent, nothing is quarantined); a bank set to enforce still blocks.
func TestReportModeEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	room := mod.CreateRoom(t)
	mod.Invite(t, room, bot.ID)

	trialImg, enforcedImg := testimg.Photo(91, 400, 300), testimg.Photo(92, 400, 300)
	trial, enforced := reportOf(t, testimg.JPEG(trialImg, 95)), reportOf(t, testimg.JPEG(enforcedImg, 95))
	dir := t.TempDir()
	trialBank, enforcedBank := filepath.Join(dir, "trial.bank"), filepath.Join(dir, "enforced.bank")
	os.WriteFile(trialBank, []byte("pdq "+trial.PDQ+"\n"), 0o600)
	os.WriteFile(enforcedBank, []byte("pdq "+enforced.PDQ+" known\n"), 0o600)
	auditPath := filepath.Join(dir, "audit.log")
	proxyPort := testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	metrics
	mediaguard {
		mode report
		bank TRIAL %s {
			category ncii
			label "trial list"
		}
		bank ENFORCED %s {
			mode enforce
			category csam
		}
		audit_log %s
		homeserver %s
		notify matrix {
			homeserver %s
			access_token %s
			room %s
			command "!mjolnir redact {user} --quarantine"
		}
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
`, trialBank, enforcedBank, auditPath, hs.URL, hs.URL, bot.AccessToken, room, proxyPort, strings.TrimPrefix(hs.URL, "http://")), "caddyfile")
	front := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)
	// Counters live as long as the test binary: compare with this.
	before := scrapeMetrics(t, "http://localhost:2999/metrics")

	// Re-encoded, so only the perceptual hash can match.
	reencoded := testimg.JPEG(trialImg, 70)
	status, _, uri := alice.Upload(t, front, "image/jpeg", "x.jpg", reencoded)
	if status != 200 || uri == "" {
		t.Fatalf("upload listed in a report-only bank: %d, want 200", status)
	}
	for i := 0; i < 2; i++ {
		if status, body, _ := e2e.Download(t, front, "/_matrix/client/v1/media/download/"+e2e.MediaPath(t, uri), alice.AccessToken); status != 200 || !bytes.Equal(body, reencoded) {
			t.Fatalf("download %d of the would-block upload: %d", i, status)
		}
	}
	got := waitNotices(t, mod, room, 1)
	if len(got) != 1 {
		t.Fatalf("want exactly one would-block notice, got %d: %v", len(got), got)
	}
	if n := got[0]; n["kind"] != "would_block" || n["category"] != "ncii" || n["bank"] != "TRIAL" || n["user"] != alice.ID || n["mxc"] != uri {
		t.Fatalf("would-block notice: %v", n)
	}

	// The enforcing bank blocks, in the same configuration.
	if status, _, _ := alice.Upload(t, front, "image/jpeg", "y.jpg", testimg.JPEG(enforcedImg, 70)); status != 403 {
		t.Fatalf("upload listed in an enforcing bank: %d, want 403", status)
	}
	got = waitNotices(t, mod, room, 2)
	if len(got) != 2 || got[0]["kind"] != nil || got[0]["category"] != "csam" {
		t.Fatalf("want the block notice second (2 in all), got %d: %v", len(got), got)
	}
	// A dry run makes Mjolnir do nothing: the one command is the block's.
	var cmds []string
	for _, ev := range mod.Messages(t, room, 50) {
		if ev.Content["msgtype"] == "m.text" && ev.Sender == bot.ID {
			cmds = append(cmds, ev.Content["body"].(string))
		}
	}
	if len(cmds) != 1 {
		t.Fatalf("commands sent: %q, want only the block's", cmds)
	}

	var kinds []string
	audit.Read(auditPath, time.Time{}, func(r audit.Record) error {
		if r.Kind != audit.KindAction {
			kinds = append(kinds, r.Kind)
		}
		return nil
	})
	if strings.Join(kinds, ",") != "would_block,block" {
		t.Fatalf("audit kinds %q, want would_block then block", kinds)
	}
	m := scrapeMetrics(t, "http://localhost:2999/metrics")
	for series, want := range map[string]float64{
		`caddy_mediaguard_requests_total{direction="upload",verdict="would_block"}`: 1,
		`caddy_mediaguard_requests_total{direction="upload",verdict="blocked"}`:     1,
		`caddy_mediaguard_bank_would_block_total{bank="TRIAL",hash_type="pdq"}`:     1,
	} {
		if d := m[series] - before[series]; d != want {
			t.Errorf("%s rose by %v, want %v", series, d, want)
		}
	}
}
