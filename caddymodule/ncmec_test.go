package caddymodule

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddytest"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/ncmec"
)

func TestNCMECCaddyfileErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"ncmec NCMEC", "ncmec: want `ncmec NAME PATH"},
		{"ncmec lower /x {\n environment test\n }", "ncmec: name \"lower\""},
		{"ncmec NCMEC /x {\n username u\n password p\n }", "environment (industry, npo or test) or base_url is required"},
		{"ncmec NCMEC /x {\n environment prod\n }", "environment must be industry, npo or test"},
		{"ncmec NCMEC /x {\n environment test\n username u\n }", "username and password are required"},
		{"ncmec NCMEC /x {\n colour blue\n }", "ncmec: unknown option \"colour\""},
		{"ncmec NCMEC /x {\n start yesterday\n }", "start \"yesterday\" is neither a date"},
		{"ncmec NCMEC /x {\n every 0s\n }", "every: want a positive duration"},
		{"ncmec NCMEC /x {\n username a b\n }", "ncmec username: unexpected extra argument"},
	} {
		src := "{\n\tmediaguard {\n\t\t" + tc.in + "\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"
		_, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
}

// provisionNCMEC validates a config with the given ncmec block (and the
// bank paths given), as `caddy validate` and a start do.
func provisionNCMEC(t *testing.T, global string) error {
	t.Helper()
	src := fmt.Sprintf("{\n admin off\n mediaguard {\n %s\n }\n}\nhttp://127.0.0.1:0 {\n bind 127.0.0.1\n mediaguard\n}\n", global)
	cfg, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(src), nil)
	if err != nil {
		t.Fatalf("adapt: %v\n%s", err, src)
	}
	var c caddy.Config
	if err := json.Unmarshal(cfg, &c); err != nil {
		t.Fatal(err)
	}
	return caddy.Validate(&c)
}

// An NCMEC password that resolves empty stops the start, naming the
// option; so do two syncs of one file and a name another bank has. A
// valid config creates the empty bank the matcher loads before the
// first sync.
func TestNCMECConfigAtStart(t *testing.T) {
	const unset = "MEDIAGUARD_TEST_SURELY_UNSET"
	os.Unsetenv(unset)
	dir := t.TempDir()
	bank := filepath.Join(dir, "ncmec.bank")
	other := filepath.Join(dir, "other.bank")
	os.WriteFile(other, []byte("md5 "+strings.Repeat("0", 32)+"\n"), 0o600)
	block := func(name, path, pass string) string {
		return fmt.Sprintf("ncmec %s %s {\n environment test\n username esp\n password %s\n }", name, path, pass)
	}
	for _, tc := range []struct{ global, want string }{
		{block("NCMEC", bank, "{env."+unset+"}"), "ncmec NCMEC password {env." + unset + "} resolves to an empty value"},
		{block("NCMEC", bank, "p") + "\n" + block("NCMEC2", bank, "p"), "is also bank NCMEC's path"},
		{"bank NCMEC " + other + "\n" + block("NCMEC", bank, "p"), "a bank of that name is configured already"},
	} {
		if err := provisionNCMEC(t, tc.global); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.global, err, tc.want)
		}
	}
	if _, err := os.Stat(bank); !os.IsNotExist(err) {
		t.Fatal("a refused config created the bank file")
	}
	if err := provisionNCMEC(t, block("NCMEC", bank, "p")); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(bank); err != nil || !strings.HasPrefix(string(b), "# mediaguard-ncmec-sync v1 bank=NCMEC base=https://exttest.cybertip.org/hashsharing through=-") {
		t.Fatalf("the empty bank: %q %v", b, err)
	}
}

// TestNCMECEndToEnd runs the sync inside a real Caddy against the fake
// NCMEC: entries listing an image by its MD5 only, another by its SHA-1
// only and a third by its PDQ only all block those uploads through the
// proxy; an entry NCMEC adds later blocks within a sync and is
// retro-scanned against the ledger, a tombstone unblocks; a config reload keeps one sync of the file; the metrics
// show it. It binds the admin port localhost:2999: run it under flock
// /tmp/mediaguard-caddy.lock.
func TestNCMECEndToEnd(t *testing.T) {
	byMD5, bySHA1, byPDQ, later, clean := testimg.PNG(testimg.Photo(81, 96, 64)), testimg.PNG(testimg.Photo(82, 96, 64)),
		testimg.Photo(83, 160, 120), testimg.PNG(testimg.Photo(84, 96, 64)), testimg.PNG(testimg.Photo(85, 96, 64))
	// The PDQ entry is of the picture as a PNG; the upload is a JPEG of
	// it: no exact digest in common, only the PDQ.
	pdqHash := reportOf(t, testimg.PNG(byPDQ)).PDQ
	byPDQUpload := testimg.JPEG(byPDQ, 85)
	now := time.Now().Add(-time.Hour)
	img := func(id string, at time.Time, md5, sha1, pdqHex string) fakes.NCMECEntry {
		return fakes.NCMECEntry{Kind: "image", Member: 42, ID: id, Timestamp: at, Classification: "A1", MD5: md5, SHA1: sha1, PDQ: pdqHex}
	}
	f := fakes.NewNCMEC(t, "esp-user", "caddy-ncmec-pw",
		img("md5-only", now, reportOf(t, byMD5).MD5, "", ""),
		img("sha1-only", now, "", reportOf(t, bySHA1).SHA1, ""),
		img("pdq-only", now, "", "", pdqHash),
	)
	f.PageSize = 2
	t.Setenv("MEDIAGUARD_TEST_NCMEC_PASSWORD", "caddy-ncmec-pw")
	repo, forwarded := fakeUploadRepo(t)
	dir := t.TempDir()
	bank := filepath.Join(dir, "ncmec.bank")
	port := testkit.FreePort(t)
	tester := caddytest.NewTester(t)
	load := func(every string) {
		tester.InitServer(fmt.Sprintf(`{
	admin localhost:2999
	skip_install_trust
	metrics
	mediaguard {
		ledger %s
		ncmec NCMEC %s {
			base_url %s
			username esp-user
			password {env.MEDIAGUARD_TEST_NCMEC_PASSWORD}
			every %s
		}
	}
}
http://127.0.0.1:%d {
	mediaguard
	reverse_proxy %s
}
`, filepath.Join(dir, "media.ledger"), bank, f.BaseURL(), every, port, strings.TrimPrefix(repo.URL, "http://")), "caddyfile")
	}
	load("300ms")
	upload := func(body []byte, ct string) int {
		resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/_matrix/media/v3/upload", port), ct, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	metric := func(series string) float64 { return scrapeMetrics(t, "http://localhost:2999/metrics")[series] }
	// Counters outlive a config, and a test run (-count).
	pdqBlocks := metric(`caddy_mediaguard_bank_blocks_total{bank="NCMEC",hash_type="pdq"}`)
	retroBlocked := metric(`caddy_mediaguard_retro_blocked_total`)
	testkit.Eventually(t, "the first sync", func() bool {
		return metric(`caddy_mediaguard_bank_entries{bank="NCMEC",type="pdq"}`) == 1
	})
	for name, c := range map[string]struct {
		body []byte
		ct   string
	}{"md5": {byMD5, "image/png"}, "sha1": {bySHA1, "image/png"}, "pdq": {byPDQUpload, "image/jpeg"}} {
		if st := upload(c.body, c.ct); st != 403 {
			t.Errorf("the picture listed by its %s alone: upload answered %d, want 403", name, st)
		}
	}
	before := forwarded.Load()
	if st := upload(clean, "image/png"); st != 200 || forwarded.Load() != before+1 {
		t.Fatalf("a clean upload answered %d", st)
	}
	// NCMEC adds an entry: it blocks once the next sync has run.
	// Stamped now, as NCMEC stamps a change: a sync sees it once its
	// window's end (5 s behind the clock) has passed it.
	f.Add(img("later", time.Now(), reportOf(t, later).MD5, "", ""))
	testkit.EventuallyWithin(t, 15*time.Second, "the later entry to block", func() bool { return upload(later, "image/png") == 403 })
	// It was uploaded clean before: the ledger's retro-scan, started by
	// the synced bank's change like any bank's, finds it.
	testkit.Eventually(t, "the retro-scan of the synced entry", func() bool {
		return metric(`caddy_mediaguard_retro_blocked_total`) >= retroBlocked+1
	})

	// A reload with the same bank path: one sync, the same Runner, still
	// syncing (the tombstone below is only seen by a live sync).
	r1, _ := ncmecRunners.Load(bank)
	load("200ms")
	r2, _ := ncmecRunners.Load(bank)
	if r1 == nil || r1 != r2 {
		t.Fatalf("the reload replaced the bank's sync: %p then %p", r1, r2)
	}
	n := 0
	ncmecRunners.Range(func(_, _ any) bool { n++; return true })
	if n != 1 {
		t.Fatalf("%d syncs running after a reload, want 1", n)
	}
	f.Add(fakes.NCMECEntry{Kind: "deletedImage", Member: 42, ID: "md5-only", Timestamp: time.Now()})
	testkit.EventuallyWithin(t, 15*time.Second, "the tombstone to unblock", func() bool { return upload(byMD5, "image/png") == 200 })

	m := scrapeMetrics(t, "http://localhost:2999/metrics")
	for series, want := range map[string]float64{
		`caddy_mediaguard_ncmec_entries{bank="NCMEC",type="md5"}`:  1,
		`caddy_mediaguard_ncmec_entries{bank="NCMEC",type="sha1"}`: 1,
		`caddy_mediaguard_ncmec_entries{bank="NCMEC",type="pdq"}`:  1,
		`caddy_mediaguard_ncmec_sync_failures_total{bank="NCMEC"}`: 0,
		`caddy_mediaguard_bank_entries{bank="NCMEC",type="md5"}`:   1,
	} {
		if m[series] != want {
			t.Errorf("%s = %v, want %v", series, m[series], want)
		}
	}
	if n := m[`caddy_mediaguard_bank_blocks_total{bank="NCMEC",hash_type="pdq"}`] - pdqBlocks; n != 1 {
		t.Errorf("pdq blocks of bank NCMEC: %v, want 1", n)
	}
	if lag := m[`caddy_mediaguard_ncmec_lag_seconds{bank="NCMEC"}`]; lag < 5 || lag > 60 {
		t.Errorf("lag %v s", lag)
	}
	if ts := m[`caddy_mediaguard_ncmec_last_success_timestamp_seconds{bank="NCMEC"}`]; time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("last success %v", ts)
	}
	// Wrong credentials after a reload: counted as failures, the bank
	// stays as it was.
	t.Setenv("MEDIAGUARD_TEST_NCMEC_PASSWORD", "now-wrong")
	load("100ms")
	testkit.EventuallyWithin(t, 10*time.Second, "a failed sync", func() bool {
		return metric(`caddy_mediaguard_ncmec_sync_failures_total{bank="NCMEC"}`) >= 1
	})
	if st := upload(bySHA1, "image/png"); st != 403 {
		t.Fatalf("after failed syncs the listed upload answered %d", st)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the sync to stop with Caddy", func() bool {
		n := 0
		ncmecRunners.Range(func(_, _ any) bool { n++; return true })
		return n == 0
	})
	if ck, ok, err := ncmec.LoadCheckpoint(bank); err != nil || !ok || ck.Entries != 3 {
		t.Fatalf("checkpoint after stop: %+v %v %v", ck, ok, err)
	}
}
