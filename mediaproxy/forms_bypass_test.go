package mediaproxy

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mediaguard/mediaguard/internal/bypass"
)

func TestImageBypassCorpus(t *testing.T) {
	listedImg := testPhoto(80, 240, 180)
	cleanImg := testPhoto(81, 240, 180)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listedImg)).String()}, func(c *Config) { c.MaxDownloadBuffer = 512 << 10 })
	forms := bypass.All(t)
	for i, f := range forms {
		t.Run(f.Name, func(t *testing.T) {
			ct := f.ContentType
			listed, clean := f.Make(listedImg), f.Make(cleanImg)
			before := e.up.uploads.Load()
			if resp, code := e.upload(t, ct, listed); resp.StatusCode != 403 || code != "M_FORBIDDEN" {
				t.Fatalf("listed upload: %d %s (%s)", resp.StatusCode, code, e.obs.last().Outcome)
			}
			if e.up.uploads.Load() != before {
				t.Fatal("a listed upload reached the homeserver")
			}
			if d := e.obs.last(); len(d.Verdict.Evidence) > 0 {
				t.Logf("matched %s form %q (%s) at distance %d", d.Verdict.HashType, d.Verdict.Evidence[0].Form, d.Verdict.Variant, d.Verdict.Distance)
				if d.Verdict.Variant == "" {
					t.Error("a block without the kind of what matched")
				}
			}
			if resp, _ := e.upload(t, ct, clean); resp.StatusCode != 200 {
				t.Fatalf("clean twin upload: %d (%s: %s)", resp.StatusCode, e.obs.last().Outcome, e.obs.last().UnscannableReason)
			}
			bad, good := fmt.Sprintf("fb%d", i), fmt.Sprintf("fg%d", i)
			e.up.put(bad, listed, ct)
			e.up.put(good, clean, ct)
			if resp, _ := e.do(t, "GET", "/_matrix/client/v1/media/download/hs.example/"+bad, "", nil); resp.StatusCode != 404 {
				t.Fatalf("listed download: %d", resp.StatusCode)
			}
			if resp, body := e.do(t, "GET", "/_matrix/client/v1/media/download/hs.example/"+good, "", nil); resp.StatusCode != 200 || !bytes.Equal(body, clean) {
				t.Fatalf("clean twin download: %d", resp.StatusCode)
			}
		})
	}
}
