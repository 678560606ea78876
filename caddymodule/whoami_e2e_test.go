package caddymodule

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// TestNoticeNamesUploaderWithoutHomeserverOption: configured as the README
// shows, with notify matrix's homeserver and no `homeserver` option, a
// blocked upload's notice in the management room names the uploader (on a
// real Dendrite). First the site's one reverse_proxy upstream is the
// homeserver asked; then, with media and the rest proxied to two
// different upstreams (one site, two addresses of the same Dendrite), the
// notify bot's homeserver is.
func TestNoticeNamesUploaderWithoutHomeserverOption(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	bob := hs.RegisterUser(t, "bob", "correct-horse-battery", false)
	mod := hs.RegisterUser(t, "moderator", "correct-horse-battery", false)
	bot := hs.RegisterUser(t, "mediaguard", "correct-horse-battery", false)
	room := mod.CreateRoom(t)
	mod.Invite(t, room, bot.ID)

	first := testimg.JPEG(testimg.Photo(81, 320, 240), 90)
	second := testimg.JPEG(testimg.Photo(82, 320, 240), 90)
	bank := filepath.Join(t.TempDir(), "test.bank")
	os.WriteFile(bank, []byte("sha256 "+reportOf(t, first).SHA256+" first\nsha256 "+reportOf(t, second).SHA256+" second\n"), 0o600)
	hostPort := strings.TrimPrefix(hs.URL, "http://")
	_, port, _ := strings.Cut(hostPort, ":")
	proxyPort := testkit.FreePort(t)
	front := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)
	config := func(site string) string {
		return fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		bank TEST %s
		notify matrix {
			homeserver %s
			access_token %s
			room %s
		}
	}
}
http://127.0.0.1:%d {
	bind 127.0.0.1
	mediaguard
	%s
}
`, bank, hs.URL, bot.AccessToken, room, proxyPort, site)
	}
	tester := caddytest.NewTester(t)
	for i, tc := range []struct {
		name, site, source string
		uploader           *e2e.User
		listed             []byte
	}{
		{"the site's reverse_proxy upstream", "reverse_proxy " + hostPort, whoamiUpstream, alice, first},
		{"notify matrix's homeserver", "reverse_proxy /_matrix/media/* localhost:" + port + "\n\treverse_proxy " + hostPort, whoamiNotify, bob, second},
	} {
		tester.InitServer(config(tc.site), "caddyfile")
		if got := currentApp.Load().whoamiChosen(); got.Source != tc.source {
			t.Fatalf("%s: whoami from %+v; want %s", tc.name, got, tc.source)
		}
		if status, _, _ := tc.uploader.Upload(t, front, "image/jpeg", "x.jpg", tc.listed); status != 403 {
			t.Fatalf("%s: listed upload: %d", tc.name, status)
		}
		got := waitNotices(t, mod, room, i+1)
		if len(got) != i+1 {
			t.Fatalf("%s: want %d notices, got %d: %v", tc.name, i+1, len(got), got)
		}
		if got[0]["user"] != tc.uploader.ID {
			t.Fatalf("%s: the notice names %v; want %s (%v)", tc.name, got[0]["user"], tc.uploader.ID, got[0])
		}
	}
}
