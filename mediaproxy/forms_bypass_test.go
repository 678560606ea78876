package mediaproxy

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/bypass"
)

// TestImageBypassCorpus runs the whole corpus (bypass.All: tricks of
// format and display, containers, and the edits of #13) at the search
// level caddymodule defaults to.
func TestImageBypassCorpus(t *testing.T) {
	runBypassCorpus(t, bypass.All(t), pdq.SearchDefault)
}

// TestDeepEditBypassCorpus: the edits only the deep search undoes (a
// busy canvas, small rotations) are refused with pdq_search deep.
func TestDeepEditBypassCorpus(t *testing.T) {
	runBypassCorpus(t, bypass.DeepEdits, pdq.SearchDeep)
}

func runBypassCorpus(t *testing.T, forms []bypass.Form, search pdq.Search) {
	listedImg := testPhoto(80, 240, 180)
	cleanImg := testPhoto(81, 240, 180)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listedImg)).String()}, func(c *Config) {
		c.MaxDownloadBuffer = 512 << 10
		c.PDQSearch = search
	})
	for i, f := range forms {
		t.Run(f.Name, func(t *testing.T) {
			ct := f.ContentType
			listed, clean := f.Make(listedImg), f.Make(cleanImg)
			before := e.up.Uploads.Load()
			if resp, code := e.upload(t, ct, listed); resp.StatusCode != 403 || code != "M_FORBIDDEN" {
				t.Fatalf("listed upload: %d %s (%s)", resp.StatusCode, code, e.obs.last().Outcome)
			}
			if e.up.Uploads.Load() != before {
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
			e.up.Put(bad, listed, ct)
			e.up.Put(good, clean, ct)
			if resp, _ := e.do(t, "GET", "/_matrix/client/v1/media/download/hs.example/"+bad, "", nil); resp.StatusCode != 404 {
				t.Fatalf("listed download: %d", resp.StatusCode)
			}
			if resp, body := e.do(t, "GET", "/_matrix/client/v1/media/download/hs.example/"+good, "", nil); resp.StatusCode != 200 || !bytes.Equal(body, clean) {
				t.Fatalf("clean twin download: %d", resp.StatusCode)
			}
		})
	}
}
