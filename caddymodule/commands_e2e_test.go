package caddymodule

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// commandAnswers returns the bot's answers to commands in the room, by
// the command's event ID: the thread root and the body. It fails the test
// on an answer outside a thread or a second answer to one command.
func commandAnswers(t *testing.T, u *e2e.User, room, bot string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, ev := range u.Messages(t, room, 200) {
		cmd, _ := ev.Content["org.mediaguard.command"].(map[string]any)
		if ev.Sender != bot || cmd == nil {
			continue
		}
		rel, _ := ev.Content["m.relates_to"].(map[string]any)
		if rel == nil || rel["rel_type"] != "m.thread" || ev.Content["msgtype"] != "m.notice" {
			t.Errorf("an answer that is not an m.notice in a thread: %v", ev.Content)
			continue
		}
		id, _ := cmd["event_id"].(string)
		if _, dup := out[id]; dup {
			t.Errorf("two answers to the command %s", id)
		}
		root, _ := rel["event_id"].(string)
		body, _ := ev.Content["body"].(string)
		out[id] = [2]string{root, body}
	}
	return out
}

// TestModeratorCommandsEndToEnd: on a real Dendrite behind a real Caddy
// (its own process, restarted), a moderator's block makes the next
// download 404 and is answered in a thread, unblock restores it, status,
// help and lookup answer; a non-moderator's command and the bot's own
// messages do nothing; a command sent while Caddy is down is carried out
// once after the restart, and nothing is carried out twice.
func TestModeratorCommandsEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	member := hs.RegisterUser(t, "member", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	room := mod.CreateRoom(t)
	mod.Invite(t, room, member.ID)
	member.Join(t, room)
	mod.Invite(t, room, bot.ID)

	listed := testimg.JPEG(testimg.Photo(77, 320, 240), 90)
	rep := reportOf(t, listed)
	dir := t.TempDir()
	bank := filepath.Join(dir, "test.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+rep.SHA256+" listed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	admin := fmt.Sprintf("127.0.0.1:%d", testkit.FreePort(t))
	port := testkit.FreePort(t)
	front := fmt.Sprintf("http://127.0.0.1:%d", port)
	cf := fmt.Sprintf(`{
	admin %s
	persist_config off
	grace_period 2s
	mediaguard {
		bank TEST %s
		ledger %s
		audit_log %s
		homeserver %s
		notify matrix {
			homeserver %s
			access_token {env.MEDIAGUARD_TEST_BOT_TOKEN}
			room %s
		}
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard
	reverse_proxy %s
}
`, admin, bank, filepath.Join(dir, "ledger.db"), auditPath, hs.URL, hs.URL, room, port, strings.TrimPrefix(hs.URL, "http://"))
	var proc *caddyProc
	start := func() { proc = startBotCaddy(t, proc, dir, admin, cf, front, bot.AccessToken) }
	start()

	clean := testimg.JPEG(testimg.Photo(3, 320, 240), 90)
	status, body, uri := alice.Upload(t, front, "image/jpeg", "clean.jpg", clean)
	if status != http.StatusOK {
		t.Fatalf("clean upload: %d %s", status, body)
	}
	path := "/_matrix/client/v1/media/download/" + e2e.MediaPath(t, uri)
	download := func() int {
		st, _, _ := e2e.Download(t, front, path, alice.AccessToken)
		return st
	}
	if st := download(); st != http.StatusOK {
		t.Fatalf("clean download: %d", st)
	}
	say := func(u *e2e.User, text string) string {
		return u.SendMessage(t, room, map[string]any{"msgtype": "m.text", "body": text})
	}
	answer := func(id string) [2]string {
		t.Helper()
		var a [2]string
		testkit.EventuallyWithin(t, 20*time.Second, "the answer to "+id, func() bool {
			var ok bool
			a, ok = commandAnswers(t, mod, room, bot.ID)[id]
			return ok
		})
		if a[0] != id {
			t.Errorf("the answer to %s is in the thread of %s", id, a[0])
		}
		return a
	}

	block := say(mod, "!mediaguard block "+uri)
	if a := answer(block); !strings.HasPrefix(a[1], "Blocked "+uri) || !strings.Contains(a[1], "Recorded in the media ledger") {
		t.Fatalf("block answered %q", a[1])
	}
	if st := download(); st != http.StatusNotFound {
		t.Fatalf("download after block: %d, want 404", st)
	}
	// A member without the power level, and the bot itself: nothing.
	say(member, "!mediaguard unblock "+uri)
	say(bot, "!mediaguard unblock "+uri)
	stat := say(mod, "!mediaguard status")
	if a := answer(stat); !strings.Contains(a[1], "Banks: 1 (1 entries)") || !strings.Contains(a[1], "Requests in the last hour:") {
		t.Fatalf("status answered %q", a[1])
	}
	if st := download(); st != http.StatusNotFound {
		t.Fatalf("download after a non-moderator's and the bot's unblock: %d, want 404", st)
	}
	help := say(mod, "!mediaguard help")
	if a := answer(help); !strings.Contains(a[1], "!mediaguard block mxc://SERVER/MEDIA_ID") {
		t.Fatalf("help answered %q", a[1])
	}
	lookup := say(mod, "!mediaguard lookup "+rep.SHA256)
	if a := answer(lookup); !strings.HasPrefix(a[1], "Listed: bank TEST") || strings.Contains(a[1], rep.SHA256) {
		t.Fatalf("lookup answered %q", a[1])
	}

	// Down: a command sent meanwhile is carried out once the bot is back.
	proc.stop()
	unblock := say(mod, "!mediaguard unblock "+uri)
	start()
	if a := answer(unblock); !strings.HasPrefix(a[1], "Unblocked "+uri) {
		t.Fatalf("unblock answered %q", a[1])
	}
	if st := download(); st != http.StatusOK {
		t.Fatalf("download after unblock: %d, want 200", st)
	}
	again := say(mod, "!mediaguard status")
	answer(again)

	// Once each: five commands before the restart, one sent while down,
	// one after; no answer twice (commandAnswers checks), no record twice.
	if n := len(commandAnswers(t, mod, room, bot.ID)); n != 6 {
		t.Errorf("%d answers, want 6", n)
	}
	var cmds []string
	audit.Read(auditPath, time.Time{}, func(r audit.Record) error {
		if r.Kind == audit.KindAction && r.Action == audit.ActionCommand {
			if r.User != mod.ID {
				t.Errorf("a command recorded from %s", r.User)
			}
			cmds = append(cmds, r.Command)
		}
		return nil
	})
	want := []string{"block " + uri, "status", "help", "lookup " + rep.SHA256, "unblock " + uri, "status"}
	if strings.Join(cmds, "|") != strings.Join(want, "|") {
		t.Errorf("commands recorded:\n%q\nwant\n%q", cmds, want)
	}
	if strings.Contains(proc.log(), bot.AccessToken) {
		t.Error("the bot's token is in Caddy's log")
	}
}
