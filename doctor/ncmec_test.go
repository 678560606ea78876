package doctor

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/ncmec"
)

// An NCMEC sync's line says whose credentials NCMEC accepted and how far
// the bank is synced; before the first start its bank is pending, not
// failing; refused credentials fail, naming the user and never the
// password.
func TestCheckNCMEC(t *testing.T) {
	f := fakes.NewNCMEC(t, "esp-user", "doctor-secret-pw", fakes.NCMECEntry{Kind: "image", Member: 1, ID: "1", Timestamp: time.Now().Add(-time.Hour),
		Classification: "A1", MD5: strings.Repeat("ab", 16), SHA1: strings.Repeat("cd", 20), PDQ: strings.Repeat("ef", 32)})
	path := filepath.Join(t.TempDir(), "ncmec.bank")
	nc := ncmec.Config{Name: "NCMEC", Path: path, BaseURL: f.BaseURL(), Username: "esp-user", Password: "doctor-secret-pw"}
	cfg := Config{Local: matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "NCMEC", Path: path}}}, NCMEC: []ncmec.Config{nc}}
	check(t, cfg,
		want{"bank NCMEC", Warn, []string{"not synced from NCMEC yet"}},
		want{"ncmec NCMEC", Warn, []string{`user "esp-user" (member 1 Sir Testington) accepted by ` + f.BaseURL(), "not synced yet"}})
	if _, err := ncmec.Sync(context.Background(), nc); err != nil {
		t.Fatal(err)
	}
	check(t, cfg,
		want{"bank NCMEC", OK, []string{"3 entries (md5 1, sha1 1, pdq 1)"}},
		want{"ncmec NCMEC", OK, []string{"synced through", "1 entries (md5 1, sha1 1, pdq 1, video_md5 0)"}})
	cfg.NCMEC[0].Password = "wrong-doctor-pw"
	rs := check(t, cfg, want{"ncmec NCMEC", Fail, []string{`user "esp-user"`, "HTTP 401"}})
	if out := printed(rs); strings.Contains(out, "doctor-secret-pw") || strings.Contains(out, "wrong-doctor-pw") {
		t.Fatalf("a password in the checklist:\n%s", out)
	}
}
