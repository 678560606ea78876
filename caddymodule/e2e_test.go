package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/bypass"
	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

func reportOf(t *testing.T, b []byte) hashing.Report {
	t.Helper()
	// As the proxy hashes (and mediaguard hash by default): JPEGs from
	// their DCT blocks, which may sit a bit or two from the reference.
	r, err := hashing.HashReadSeeker("x", bytes.NewReader(b), hashing.FileOptions{Decode: pdq.DecodeOptions{Viewed: true}})
	if err != nil || r.PDQ == "" {
		t.Fatalf("hashing test image: %v %s", err, r.Error)
	}
	return r
}

// TestEndToEndDendrite runs a real Dendrite behind a real Caddy with the
// mediaguard module, configured by the minimal Caddyfile.
func TestEndToEndDendrite(t *testing.T) {
	hs := e2e.StartDendrite(t)
	alice := hs.RegisterUser(t, "alice", "correct-horse-battery", false)

	listedImg := testimg.Photo(42, 480, 360)
	listed := testimg.JPEG(listedImg, 92)
	rep := reportOf(t, listed)
	bank := filepath.Join(t.TempDir(), "test.bank")
	os.WriteFile(bank, []byte(fmt.Sprintf("sha256 %s listed-original\npdq %s listed-original\n", rep.SHA256, rep.PDQ)), 0o600)

	proxyPort, lookupPort := testkit.FreePort(t), testkit.FreePort(t)
	auditPath := filepath.Join(t.TempDir(), "audit", "audit.log")
	hsAddr := strings.TrimPrefix(hs.URL, "http://")
	tester := caddytest.NewTester(t)
	tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	mediaguard {
		bank TEST %s
		audit_log %s
		homeserver %s
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
http://127.0.0.1:%d {
	mediaguard_lookup
}
`, bank, auditPath, hs.URL, proxyPort, hsAddr, lookupPort), "caddyfile")
	front := fmt.Sprintf("http://127.0.0.1:%d", proxyPort)

	t.Run("listed upload refused", func(t *testing.T) {
		status, body, uri := alice.Upload(t, front, "image/jpeg", "a.jpg", listed)
		if status != 403 || uri != "" || !strings.Contains(string(body), "M_FORBIDDEN") {
			t.Fatalf("listed upload: %d %s", status, body)
		}
		// The block was on disk before the 403 was sent.
		var found bool
		audit.Read(auditPath, time.Time{}, func(r audit.Record) error {
			found = found || (r.Kind == audit.KindBlock && r.Direction == "upload" && r.Digests["sha256"] == rep.SHA256 && r.User == alice.ID)
			return nil
		})
		if !found {
			t.Fatal("no audit record of the blocked upload naming its uploader")
		}
	})

	t.Run("re-encoded copy refused via PDQ", func(t *testing.T) {
		copy70 := testimg.JPEG(testimg.Resize(listedImg, 432, 324), 70)
		if reportOf(t, copy70).SHA256 == rep.SHA256 {
			t.Fatal("test copy must differ in bytes")
		}
		if status, body, _ := alice.Upload(t, front, "image/jpeg", "b.jpg", copy70); status != 403 {
			t.Fatalf("re-encoded copy: %d %s", status, body)
		}
	})

	t.Run("listed media already on the server is not served", func(t *testing.T) {
		// Stored before mediaguard was installed: straight to Dendrite.
		status, _, uri := alice.Upload(t, hs.URL, "image/jpeg", "old.jpg", listed)
		if status != 200 {
			t.Fatalf("direct upload: %d", status)
		}
		path := e2e.MediaPath(t, uri)
		for _, p := range []string{"/_matrix/media/v3/download/" + path, "/_matrix/client/v1/media/download/" + path, "/_matrix/media/v3/thumbnail/" + path + "?width=96&height=96&method=scale"} {
			if status, body, hdr := e2e.Download(t, front, p, alice.AccessToken); status != 404 || !strings.Contains(string(body), "M_NOT_FOUND") || hdr.Get("ETag") != "" {
				t.Fatalf("%s: %d %s", p, status, body)
			}
		}
	})

	t.Run("bypass corpus", func(t *testing.T) {
		// Each trick on a listed photo is refused on upload and, stored
		// behind mediaguard's back, on every download method; the same
		// trick on a clean photo passes both ways.
		cleanImg := testimg.Photo(43, 480, 360)
		for _, f := range bypass.All(t) {
			listed, clean := f.Make(listedImg), f.Make(cleanImg)
			if status, body, _ := alice.Upload(t, front, f.ContentType, "x", listed); status != 403 {
				t.Errorf("%s: listed upload answered %d %s", f.Name, status, body)
			}
			if status, body, _ := alice.Upload(t, front, f.ContentType, "x", clean); status != 200 {
				t.Errorf("%s: clean upload answered %d %s", f.Name, status, body)
			}
			_, _, luri := alice.Upload(t, hs.URL, f.ContentType, "x", listed)
			_, _, curi := alice.Upload(t, hs.URL, f.ContentType, "x", clean)
			lpath, cpath := e2e.MediaPath(t, luri), e2e.MediaPath(t, curi)
			for _, p := range []string{"/_matrix/client/v1/media/thumbnail/" + lpath + "?width=64&height=64&method=crop", "/_matrix/client/v1/media/download/" + lpath, "/_matrix/media/v3/download/" + lpath} {
				if status, body, _ := e2e.Download(t, front, p, alice.AccessToken); status != 404 || bytes.Contains(body, listed[:32]) {
					t.Errorf("%s: %s answered %d", f.Name, p, status)
				}
			}
			if status, got, _ := e2e.Download(t, front, "/_matrix/client/v1/media/download/"+cpath, alice.AccessToken); status != 200 || !bytes.Equal(got, clean) {
				t.Errorf("%s: clean download answered %d", f.Name, status)
			}
		}
		// OPTIONS on a stored listed picture: Dendrite would send it whole.
		_, _, uri := alice.Upload(t, hs.URL, "image/jpeg", "o.jpg", listed)
		req, _ := http.NewRequest("OPTIONS", front+"/_matrix/media/v3/download/"+e2e.MediaPath(t, uri), nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != 0 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("OPTIONS on a listed download: %d, %d bytes", resp.StatusCode, len(body))
		}
	})

	t.Run("clean upload arrives identical and downloads", func(t *testing.T) {
		clean := testimg.PNG(testimg.Photo(7, 300, 200))
		status, body, uri := alice.Upload(t, front, "image/png", "clean.png", clean)
		if status != 200 {
			t.Fatalf("clean upload: %d %s", status, body)
		}
		path := e2e.MediaPath(t, uri)
		if _, direct, _ := e2e.Download(t, hs.URL, "/_matrix/media/v3/download/"+path, ""); !bytes.Equal(direct, clean) {
			t.Fatal("Dendrite stored different bytes")
		}
		for _, p := range []string{"/_matrix/media/v3/download/" + path, "/_matrix/client/v1/media/download/" + path} {
			if status, got, _ := e2e.Download(t, front, p, alice.AccessToken); status != 200 || !bytes.Equal(got, clean) {
				t.Fatalf("%s: %d, %d bytes", p, status, len(got))
			}
		}
	})

	t.Run("lookup API answers the plugin's contract", func(t *testing.T) {
		lookup := fmt.Sprintf("http://127.0.0.1:%d/", lookupPort)
		for _, tc := range []struct {
			hashes map[string]string
			action string
		}{
			{map[string]string{"sha256": rep.SHA256, "md5": rep.MD5, "pdq": "stubbed_pdq_placeholder_0123456789abcdef"}, "block"},
			{map[string]string{"pdq": rep.PDQ}, "block"},
			{map[string]string{"sha256": strings.Repeat("0", 64), "md5": strings.Repeat("1", 32)}, "allow"},
		} {
			body, _ := json.Marshal(map[string]any{"hashes": tc.hashes, "eventId": "$e:localhost", "roomId": "!r:localhost", "userId": alice.ID, "mediaType": "m.image", "timestamp": 1703123456789})
			req, _ := http.NewRequest("POST", lookup, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("User-Agent", "Mjolnir-HMA-Plugin/1.0")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out map[string]any
			json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode != 200 || out["action"] != tc.action {
				t.Fatalf("%v: %d %v", tc.hashes, resp.StatusCode, out)
			}
			for _, k := range []string{"action", "reason", "matchedHash", "hashType", "confidence"} {
				if _, ok := out[k]; !ok {
					t.Errorf("answer lacks %q: %v", k, out)
				}
			}
		}
	})
}
