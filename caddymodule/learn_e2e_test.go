package caddymodule

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// TestLearnQuarantinesEndToEnd is issue #17's end-to-end case for
// learn_quarantines: a real Dendrite behind a real Caddy, and the fake
// Synapse admin API (Dendrite has no quarantine feed) serving a picture.
// Once a moderator quarantines the picture there, a re-encoded and a
// resized copy are refused on upload to Dendrite, before storage, while a
// clean picture passes; once it is taken out of quarantine, the
// re-encoded copy passes again.
func TestLearnQuarantinesEndToEnd(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)
	admin := fakes.NewSynapse(t)
	admin.AdminToken = "admin-secret"
	// The moderators' own admin account: what mediaguard's account
	// quarantines (from its banks' matches) is not learned.
	admin.Admins["moderator-token"] = "@moderator:hs.example"

	listedImg := testimg.Photo(4242, 480, 360)
	admin.Put("abuse", testimg.JPEG(listedImg, 92), "image/jpeg")
	reencoded := testimg.JPEG(listedImg, 60)
	resized := testimg.JPEG(testimg.Resize(listedImg, 360, 270), 85)
	clean := testimg.JPEG(testimg.Photo(4343, 480, 360), 92)

	dir := t.TempDir()
	bank := filepath.Join(dir, "learned.bank")
	proxyPort := testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		bank LEARNED %s
		temp_dir %s
		synapse_admin {
			homeserver %s
			access_token admin-secret
			learn_quarantines LEARNED
			learn_every 1s
		}
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
`, bank, dir, admin.URL, proxyPort, strings.TrimPrefix(hs.URL, "http://")), "caddyfile")
	front := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)

	upload := func(name string, body []byte) int {
		status, _, _ := alice.Upload(t, front, "image/jpeg", name, body)
		return status
	}
	if got := upload("before.jpg", reencoded); got != 200 {
		t.Fatalf("the re-encoded copy before any quarantine: %d", got)
	}

	// A moderator quarantines the picture in Synapse.
	adminPost(t, admin, "/_synapse/admin/v1/media/quarantine/hs.example/abuse", "moderator-token")
	quarantined := time.Now()
	took := testkit.EventuallyWithin(t, 10*time.Second, "the re-encoded copy refused", func() bool {
		return upload("reencoded.jpg", reencoded) == 403
	})
	t.Logf("quarantine to refusal of a re-encoded copy: %v (learn_every 1s)", took.Round(time.Millisecond))
	if took := time.Since(quarantined); took > 5*time.Second {
		t.Fatalf("refused only %v after the quarantine, with learn_every 1s", took)
	}
	if got := upload("resized.jpg", resized); got != 403 {
		t.Fatalf("the resized copy: %d", got)
	}
	if got := upload("clean.jpg", clean); got != 200 {
		t.Fatalf("a clean picture: %d", got)
	}
	uploads := admin.Uploads.Load()
	if uploads != 0 {
		t.Fatalf("%d uploads reached the fake Synapse: media must be fetched from it, never uploaded", uploads)
	}
	if got := scrapeMetrics(t, "http://localhost:2999/metrics")[`caddy_mediaguard_learn_media_total{bank="LEARNED",change="learned"}`]; got != 1 {
		t.Fatalf("learned metric %v", got)
	}

	// Taken out of quarantine: what it added is removed.
	adminPost(t, admin, "/_synapse/admin/v1/media/unquarantine/hs.example/abuse", "moderator-token")
	testkit.EventuallyWithin(t, 10*time.Second, "the re-encoded copy passing again", func() bool {
		return upload("again.jpg", reencoded) == 200
	})
	if got := scrapeMetrics(t, "http://localhost:2999/metrics")[`caddy_mediaguard_learn_media_total{bank="LEARNED",change="unlearned"}`]; got != 1 {
		t.Fatalf("unlearned metric %v", got)
	}
}

func adminPost(t *testing.T, f *fakes.Synapse, path, token string) {
	t.Helper()
	req, _ := http.NewRequest("POST", f.URL+path, strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d", path, resp.StatusCode)
	}
}
