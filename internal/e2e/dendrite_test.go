package e2e

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strings"
	"testing"
	"time"
)

// testPNG is a small deterministic 64x48 gradient.
func testPNG(t testing.TB) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 4), uint8(y * 5), uint8(x ^ y), 255})
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestDendriteHarness proves the harness against a real Dendrite: register,
// whoami, upload, download through both download families, thumbnails,
// the raised upload limit, rooms and notices.
func TestDendriteHarness(t *testing.T) {
	hs := StartDendrite(t)
	t.Logf("startup took %v", hs.Startup)

	alice := hs.RegisterUser(t, "alice", "correct horse battery", false)
	admin := hs.RegisterUser(t, "boss", "staple-battery", true)
	if alice.ID != "@alice:localhost" || admin.ID != "@boss:localhost" {
		t.Fatalf("user IDs %q, %q", alice.ID, admin.ID)
	}
	if got := alice.Whoami(t); got != alice.ID {
		t.Fatalf("whoami = %q, want %q", got, alice.ID)
	}

	img := testPNG(t)
	status, body, mxc := alice.Upload(t, hs.URL, "image/png", "gradient.png", img)
	if status != http.StatusOK || !strings.HasPrefix(mxc, "mxc://localhost/") {
		t.Fatalf("upload: %d %s (content_uri %q)", status, body, mxc)
	}
	media := MediaPath(t, mxc)

	for _, c := range []struct{ path, token string }{
		{"/_matrix/media/v3/download/" + media, ""},
		{"/_matrix/media/r0/download/" + media + "/renamed.png", ""},
		{"/_matrix/media/v1/download/" + media, ""},
		{"/_matrix/client/v1/media/download/" + media, alice.AccessToken},
		{"/_matrix/client/v1/media/download/" + media + "/renamed.png", admin.AccessToken},
	} {
		status, got, h := Download(t, hs.URL, c.path, c.token)
		if status != http.StatusOK || !bytes.Equal(got, img) {
			t.Errorf("GET %s: %d, %d bytes (want 200, the %d uploaded bytes): %.200q", c.path, status, len(got), len(img), got)
			continue
		}
		if ct := h.Get("Content-Type"); ct != "image/png" {
			t.Errorf("GET %s: Content-Type %q", c.path, ct)
		}
	}

	// The authenticated family refuses anonymous requests.
	if status, body, _ := Download(t, hs.URL, "/_matrix/client/v1/media/download/"+media, ""); status != http.StatusUnauthorized {
		t.Errorf("client/v1 download without a token: %d %s, want 401", status, body)
	}
	// Unknown media is a 404 on both families.
	for _, p := range []string{"/_matrix/media/v3/download/localhost/nosuchmedia", "/_matrix/client/v1/media/download/localhost/nosuchmedia"} {
		if status, _, _ := Download(t, hs.URL, p, alice.AccessToken); status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, status)
		}
	}

	// Thumbnails are new bytes, but both families serve an image.
	for _, c := range []struct{ path, token string }{
		{"/_matrix/media/v3/thumbnail/" + media + "?width=32&height=32&method=crop", ""},
		{"/_matrix/client/v1/media/thumbnail/" + media + "?width=32&height=32&method=scale", alice.AccessToken},
	} {
		status, got, h := Download(t, hs.URL, c.path, c.token)
		if status != http.StatusOK || len(got) == 0 || !strings.HasPrefix(h.Get("Content-Type"), "image/") {
			t.Errorf("GET %s: %d %s, %d bytes", c.path, status, h.Get("Content-Type"), len(got))
		}
	}

	// max_file_size_bytes is raised above Dendrite's 10 MB default.
	big := bytes.Repeat([]byte{0xA5}, 11<<20)
	if status, body, _ := alice.Upload(t, hs.URL, "application/octet-stream", "big.bin", big); status != http.StatusOK {
		t.Errorf("11 MB upload: %d %s, want 200", status, body)
	}

	// Rooms: the admin sends a notice, alice joins and reads it back.
	room := admin.CreateRoom(t)
	admin.Invite(t, room, alice.ID)
	alice.Join(t, room)
	ev := admin.SendMessage(t, room, map[string]any{
		"msgtype": "m.notice", "body": "blocked " + mxc,
		"format": "org.matrix.custom.html", "formatted_body": "<b>blocked</b> " + mxc,
	})
	alice.SendMessage(t, room, map[string]any{"msgtype": "m.text", "body": "hello"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		notices := alice.Notices(t, room, 20)
		if len(notices) == 1 && notices[0] == "blocked "+mxc {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("notices in %s = %q, want the one sent as %s", room, notices, ev)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSetYAML(t *testing.T) {
	in := "version: 2\nglobal:\n  server_name: localhost\n  database:\n    connection_string: \"\"\n  disable_federation: false\nclient_api:\n  rate_limiting:\n    enabled: true\nlogging:\n- type: std\n  level: trace\n  params:\n    path: /x\n"
	out, err := setYAML([]byte(in), map[string]string{
		"global.disable_federation":         "true",
		"global.database.connection_string": "file:/tmp/a b.db",
		"client_api.rate_limiting.enabled":  "false",
		"logging.level":                     "info",
		"logging.type":                      "file",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := "version: 2\nglobal:\n  server_name: localhost\n  database:\n    connection_string: \"file:/tmp/a b.db\"\n  disable_federation: true\nclient_api:\n  rate_limiting:\n    enabled: false\nlogging:\n- type: \"file\"\n  level: \"info\"\n  params:\n    path: /x\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if _, err := setYAML([]byte(in), map[string]string{"global.nope": "1"}); err == nil {
		t.Error("a missing key was not reported")
	}
}
