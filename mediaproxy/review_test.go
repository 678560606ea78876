package mediaproxy

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/matcher"
)

// Media in the review band passes as review under review_action allow,
// and is refused as held (403 upload, 404 download) under hold; either
// way it is decided once per media ID, so one review is requested.
func TestReviewOutcomes(t *testing.T) {
	img := encodePNG(testPhoto(31, 256, 256))
	h := pdqOf(t, img)
	for k := 0; k < 36; k++ {
		h[k/64] ^= 1 << (k % 64)
	}
	for _, tc := range []struct {
		action           string
		upload, download int
		outcome, again   Outcome
	}{
		{ReviewAllow, 200, 200, Review, KnownClean},
		{ReviewHold, 403, 404, Held, KnownBlocked},
	} {
		t.Run(tc.action, func(t *testing.T) {
			bank := filepath.Join(t.TempDir(), "near.bank")
			if err := os.WriteFile(bank, []byte("pdq "+h.String()+" near\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			local, err := matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "NEAR", Path: bank}}, ReviewThreshold: 45, ReloadInterval: -1})
			if err != nil {
				t.Fatal(err)
			}
			defer local.Close()
			e := newEnv(t, nil, func(c *Config) { c.Matcher, c.ReviewAction = local, tc.action })
			resp, _ := e.upload(t, "image/png", img)
			if d := e.obs.last(); resp.StatusCode != tc.upload || d.Outcome != tc.outcome || !d.Verdict.Review || d.Verdict.Distance != 36 {
				t.Fatalf("upload: %d %s %+v", resp.StatusCode, d.Outcome, d.Verdict)
			}
			e.up.Put("near", img, "image/png")
			path := "/_matrix/client/v1/media/download/hs.example/near"
			if resp, _ := e.do(t, "GET", path, "", nil); resp.StatusCode != tc.download || e.obs.last().Outcome != tc.outcome {
				t.Fatalf("download: %d %s", resp.StatusCode, e.obs.last().Outcome)
			}
			if resp, _ := e.do(t, "GET", path, "", nil); resp.StatusCode != tc.download || e.obs.last().Outcome != tc.again {
				t.Fatalf("second download: %d %s", resp.StatusCode, e.obs.last().Outcome)
			}
			e.noTempFiles(t)
		})
	}
	var err error
	newEnv(t, nil, func(c *Config) {
		c.ReviewAction = "maybe"
		_, err = New(*c)
		c.ReviewAction = ""
	})
	if err == nil || !strings.Contains(err.Error(), "review_action") {
		t.Errorf("review_action maybe: %v", err)
	}
}
