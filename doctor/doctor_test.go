package doctor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/notify"
)

const sha = "f4bd8dc88fc6483397995f9ecdef1b5f58143550140597baa4b9b99357c38c4a"

// want is one expected line: its status and words its detail holds.
type want struct {
	name   string
	status Status
	detail []string
}

// check runs the doctor on cfg (with the temp dir and audit log in a
// test directory unless set) and compares the named lines.
func check(t *testing.T, cfg Config, wants ...want) []Result {
	t.Helper()
	if cfg.TempDir == "" {
		cfg.TempDir = t.TempDir()
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	rs := Run(context.Background(), cfg)
	for _, w := range wants {
		r, ok := find(rs, w.name)
		if !ok {
			t.Errorf("no line %q in\n%s", w.name, printed(rs))
			continue
		}
		if r.Status != w.status {
			t.Errorf("%s: status %s, want %s: %s", w.name, r.Status, w.status, r.Detail)
		}
		for _, d := range w.detail {
			if !strings.Contains(r.Detail, d) {
				t.Errorf("%s: detail %q lacks %q", w.name, r.Detail, d)
			}
		}
	}
	return rs
}

func find(rs []Result, name string) (Result, bool) {
	for _, r := range rs {
		if r.Name == name {
			return r, true
		}
	}
	return Result{}, false
}

func printed(rs []Result) string {
	var b bytes.Buffer
	Print(&b, rs)
	return b.String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestBanks(t *testing.T) {
	good := writeFile(t, "good.bank", "sha256 "+sha+" listed\npdq 995662a98956138b66749d0676a9f8765489a37066ce5f89bb76648f89549b74 x\n")
	bad := writeFile(t, "bad.bank", "sha256 "+sha+"\nsha256 not-a-hash\nmd6 abc\n")
	empty := writeFile(t, "empty.bank", "# nothing yet\n")
	missing := filepath.Join(t.TempDir(), "missing.bank")
	for _, tc := range []struct {
		name  string
		local matcher.LocalConfig
		hma   bool
		wants []want
	}{
		{"loads", matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "GOOD", Path: good}}},
			false, []want{{"bank GOOD", OK, []string{"2 entries (sha256 1, pdq 1) from " + good}}}},
		{"bad entries are skipped", matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "BAD", Path: bad}}},
			false, []want{{"bank BAD", Warn, []string{"1 entry (sha256 1)", "2 entries skipped", "the first: " + bad + ":2:"}}}},
		{"empty", matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "EMPTY", Path: empty}}},
			false, []want{{"bank EMPTY", Warn, []string{"matches nothing"}}}},
		{"missing file, the others still loaded", matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "GONE", Path: missing}, {Name: "GOOD", Path: good}}},
			false, []want{{"bank GONE", Fail, []string{"loading bank GONE", "no such file"}}, {"bank GOOD", OK, nil}}},
		{"disabled", matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "OFF", Path: missing, Disabled: true}}},
			false, []want{{"bank OFF", Warn, []string{"disabled"}}}},
		{"the set is validated", matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "GOOD", Path: good}, {Name: "GOOD", Path: bad}}},
			false, []want{{"banks", Fail, []string{"configured twice"}}}},
		{"bad name", matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "lower", Path: good}}},
			false, []want{{"banks", Fail, []string{"invalid"}}, {"bank lower", Fail, nil}}},
		{"nothing to match against", matcher.LocalConfig{},
			false, []want{{"banks", Warn, []string{"every upload is allowed"}}}},
		{"report only, said every time", matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "TRIAL", Path: good, Mode: matcher.ModeReport, Category: "ncii"}}},
			false, []want{{"bank TRIAL", OK, []string{"category ncii", "REPORT ONLY"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check(t, Config{Local: tc.local, AuditLog: filepath.Join(t.TempDir(), "audit.log")}, tc.wants...)
		})
	}
	// The global mode reaches the banks that set none, and only those.
	t.Run("global report mode", func(t *testing.T) {
		check(t, Config{Mode: matcher.ModeReport, AuditLog: filepath.Join(t.TempDir(), "audit.log"), Local: matcher.LocalConfig{Banks: []matcher.BankConfig{
			{Name: "INHERITS", Path: good}, {Name: "ENFORCED", Path: good, Mode: matcher.ModeEnforce}}}},
			want{"bank INHERITS", OK, []string{"REPORT ONLY"}}, want{"bank ENFORCED", OK, nil})
	})
}

func TestHMA(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakes.HMA)
		banks []string
		wants []want
	}{
		{"banks present", func(f *fakes.HMA) { f.SetBank("CSAM", 1); f.SetBank("OTHER", 1) }, []string{"CSAM"},
			[]want{{"hma HOST", OK, []string{"answers lookups (timeout 1s)"}}, {"hma HOST banks", OK, []string{"present: CSAM"}}}},
		{"all banks", func(f *fakes.HMA) {}, nil,
			[]want{{"hma HOST", OK, []string{"answers lookups (timeout 1s); lookups in all its banks"}}}},
		{"bank missing", func(f *fakes.HMA) { f.SetBank("CSAM", 1) }, []string{"CSAM", "TYPO"},
			[]want{{"hma HOST", OK, nil}, {"hma HOST banks", Fail, []string{"missing in HMA: TYPO", "present: CSAM"}}}},
		{"matching off", func(f *fakes.HMA) { f.SetBank("CSAM", 0) }, []string{"CSAM"},
			[]want{{"hma HOST banks", Warn, []string{"matching is turned off in HMA for CSAM"}}}},
		{"no curator role", func(f *fakes.HMA) { f.NoCurator.Store(true) }, []string{"CSAM"},
			[]want{{"hma HOST", OK, nil}, {"hma HOST banks", Warn, []string{"cannot list HMA's banks", "404"}}}},
		{"index not loaded", func(f *fakes.HMA) { f.Loaded.Store(false) }, []string{"CSAM"},
			[]want{{"hma HOST", Fail, []string{"does not answer lookups", "503"}}}},
		{"slow", func(f *fakes.HMA) { f.SetBank("CSAM", 1); f.SetDelay(600 * time.Millisecond) }, []string{"CSAM"},
			[]want{{"hma HOST", Warn, []string{"slowly", "of its 1s timeout"}}}},
		{"down", func(f *fakes.HMA) { f.Down(t) }, []string{"CSAM"},
			[]want{{"hma HOST", Fail, []string{"does not answer lookups"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakes.NewHMA(t)
			host := strings.TrimPrefix(f.URL, "http://")
			url := f.URL
			tc.setup(f)
			for i := range tc.wants {
				tc.wants[i].name = strings.Replace(tc.wants[i].name, "HOST", host, 1)
			}
			rs := check(t, Config{HMA: []matcher.HMAConfig{{URL: url, Banks: tc.banks, Timeout: time.Second}}}, tc.wants...)
			if _, ok := find(rs, "banks"); ok {
				t.Errorf("an HMA is something to match against:\n%s", printed(rs))
			}
		})
	}
}

func TestService(t *testing.T) {
	hma := fakes.NewHMA(t) // not a lookup service: its answer to a POST is 404
	rs := check(t, Config{Services: []matcher.ServiceConfig{{Name: "peer", URL: hma.URL + "/lookup"}}},
		want{"service peer", Fail, []string{"does not answer lookups"}})
	if r, _ := find(rs, "service peer"); r.Took <= 0 {
		t.Errorf("no latency: %+v", r)
	}
}

func TestHomeserver(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(*fakes.Synapse, *Config)
		wants []want
	}{
		{"all well", func(f *fakes.Synapse, cfg *Config) {
			f.Users["bot-token"] = "@bot:hs.example"
			f.Joined["@bot:hs.example"] = []string{"!mgmt:hs.example"}
			cfg.ServerName = "hs.example"
		}, []want{
			{"homeserver URL", OK, []string{"answers, Matrix v1.11 (used by homeserver, notify matrix, synapse_admin)"}},
			{"server_name", OK, []string{"hs.example (from its /_matrix/key/v2/server), as configured"}},
			{"notify bot", OK, []string{"token valid: @bot:hs.example"}},
			{"notify room", OK, []string{"@bot:hs.example is in !mgmt:hs.example"}},
			{"synapse_admin", OK, []string{"@admin:hs.example is a server admin"}},
		}},
		{"wrong server_name", func(f *fakes.Synapse, cfg *Config) { cfg.ServerName = "other.example" }, []want{
			{"server_name", Fail, []string{"the homeserver is hs.example", "server_name is other.example"}},
		}},
		{"server_name learned", func(f *fakes.Synapse, cfg *Config) {}, []want{
			{"server_name", OK, []string{"learned from the first upload"}},
		}},
		{"bot token wrong", func(f *fakes.Synapse, cfg *Config) { delete(f.Users, "bot-token") }, []want{
			{"notify bot", Fail, []string{"does not know it (401 M_UNKNOWN_TOKEN)"}},
		}},
		{"bot not in the room yet", func(f *fakes.Synapse, cfg *Config) {
			f.Users["bot-token"] = "@bot:hs.example"
			f.Joined["@bot:hs.example"] = []string{"!other:hs.example"}
		}, []want{
			{"notify room", Warn, []string{"is not in !mgmt:hs.example yet", "joins it at start"}},
		}},
		{"room alias", func(f *fakes.Synapse, cfg *Config) {
			f.Users["bot-token"] = "@bot:hs.example"
			f.Aliases["#mod:hs.example"] = "!mgmt:hs.example"
			f.Joined["@bot:hs.example"] = []string{"!mgmt:hs.example"}
			cfg.Matrix.Room = "#mod:hs.example"
		}, []want{
			{"notify room", OK, []string{"is in #mod:hs.example (!mgmt:hs.example)"}},
		}},
		{"unknown alias", func(f *fakes.Synapse, cfg *Config) {
			f.Users["bot-token"] = "@bot:hs.example"
			cfg.Matrix.Room = "#nope:hs.example"
		}, []want{
			{"notify room", Fail, []string{"resolving the room alias #nope:hs.example", "404 M_NOT_FOUND"}},
		}},
		{"admin token of a user who is not admin", func(f *fakes.Synapse, cfg *Config) {
			cfg.SynapseAdmin.AccessToken = "user-token"
		}, []want{
			{"synapse_admin", Fail, []string{"@uploader:example.org is not a server admin (403 M_FORBIDDEN)"}},
		}},
		{"admin token unknown", func(f *fakes.Synapse, cfg *Config) {
			cfg.SynapseAdmin.AccessToken = "made-up"
		}, []want{
			{"synapse_admin", Fail, []string{"the access token does not work", "401"}},
		}},
		{"no Synapse admin API", func(f *fakes.Synapse, cfg *Config) { f.NoAdminAPI.Store(true) }, []want{
			{"synapse_admin", Warn, []string{"not applicable", "has no Synapse admin API (404 M_UNRECOGNIZED"}},
		}},
		{"room neither an ID nor an alias", func(f *fakes.Synapse, cfg *Config) { cfg.Matrix.Room = "mgmt" }, []want{
			{"notify bot", Fail, []string{"neither a room ID"}},
		}},
		{"down", func(f *fakes.Synapse, cfg *Config) { f.Close() }, []want{
			{"homeserver URL", Fail, []string{"does not answer the client API"}},
			{"notify bot", Fail, []string{"cannot check the access token"}},
			{"synapse_admin", Fail, []string{"cannot check the access token"}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fakes.NewSynapse(t)
			f.Users["bot-token"] = "@bot:hs.example"
			cfg := Config{
				Homeserver:   f.URL,
				Matrix:       &notify.MatrixConfig{Homeserver: f.URL, AccessToken: "bot-token", Room: "!mgmt:hs.example"},
				SynapseAdmin: &homeserver.AdminConfig{Homeserver: f.URL, AccessToken: f.AdminToken},
				AuditLog:     filepath.Join(t.TempDir(), "audit.log"),
			}
			tc.setup(f, &cfg)
			for i := range tc.wants {
				tc.wants[i].name = strings.Replace(tc.wants[i].name, "URL", f.URL, 1)
			}
			check(t, cfg, tc.wants...)
		})
	}
}

func TestPaths(t *testing.T) {
	notDir := writeFile(t, "file", "x")
	loose := writeFile(t, "loose.log", "")
	os.Chmod(loose, 0o644)
	existing := writeFile(t, "audit.log", `{"kind":"block"}`+"\n")
	cases := []struct {
		name    string
		temp    string
		auditTo string
		wants   []want
	}{
		{"fine", "", existing, []want{
			{"temp_dir", OK, []string{"mode 0700", "takes spill files"}},
			{"audit_log", OK, []string{existing + ": 17 B, mode 0600, writable"}},
		}},
		{"created at start", "", filepath.Join(t.TempDir(), "new", "dir", "audit.log"), []want{
			{"audit_log", OK, []string{"created at start (0600) under "}},
		}},
		{"temp_dir is a file", notDir, "", []want{
			{"temp_dir", Fail, []string{"uploads cannot spill to disk", "not a directory"}},
			{"audit_log", Warn, []string{"not set"}},
		}},
		{"audit log under a file", "", filepath.Join(notDir, "audit.log"), []want{
			{"audit_log", Fail, []string{"not a directory"}},
		}},
		{"audit log readable by others", "", loose, []want{
			{"audit_log", Warn, []string{"mode 0644: other users may read it", "chmod 600 " + loose}},
		}},
	}
	if os.Getuid() != 0 {
		// Root writes anywhere: an unwritable directory only exists for
		// other users.
		ro := t.TempDir()
		os.Chmod(ro, 0o500)
		t.Cleanup(func() { os.Chmod(ro, 0o700) })
		cases = append(cases, struct {
			name    string
			temp    string
			auditTo string
			wants   []want
		}{"unwritable directories", ro, filepath.Join(ro, "audit.log"), []want{
			{"temp_dir", Fail, []string{"permission denied"}},
			{"audit_log", Fail, []string{"does not take new files"}},
		}})
	} else {
		t.Log("running as root: the unwritable-directory case is not exercised (root writes anywhere)")
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			check(t, Config{TempDir: tc.temp, AuditLog: tc.auditTo, Local: matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "B", Path: existing + ".none", Disabled: true}}}}, tc.wants...)
		})
	}
}

// TestNoSecretInOutput: tokens and keys never reach the checklist, even
// when every check fails and error messages quote requests.
func TestNoSecretInOutput(t *testing.T) {
	f := fakes.NewSynapse(t)
	hma := fakes.NewHMA(t)
	hma.Token = "hma-proxy-secret"
	cfg := Config{
		Homeserver:   "http://user:url-password@" + strings.TrimPrefix(f.URL, "http://") + "/?access_token=query-secret",
		Matrix:       &notify.MatrixConfig{Homeserver: f.URL, AccessToken: "bot-secret-token", Room: "!r:hs.example"},
		SynapseAdmin: &homeserver.AdminConfig{Homeserver: "http://127.0.0.1:1", AccessToken: "admin-secret-token-2"},
		HMA:          []matcher.HMAConfig{{URL: hma.URL, APIKey: "wrong-hma-secret", Banks: []string{"X"}}},
		Services:     []matcher.ServiceConfig{{URL: "http://127.0.0.1:1/lookup?api_key=svc-query-secret", APIKey: "svc-secret"}},
	}
	rs := check(t, cfg, want{"hma " + strings.TrimPrefix(hma.URL, "http://"), Fail, []string{"401"}})
	out := printed(rs)
	for _, s := range []string{"url-password", "bot-secret-token", "admin-secret-token-2", "wrong-hma-secret", "svc-secret", "svc-query-secret", "hma-proxy-secret", "query-secret"} {
		if strings.Contains(out, s) {
			t.Errorf("secret %q printed:\n%s", s, out)
		}
	}
	if Count(rs, Fail) == 0 {
		t.Fatalf("nothing failed:\n%s", out)
	}
}

func TestPrint(t *testing.T) {
	var b bytes.Buffer
	Print(&b, []Result{
		{Name: "bank A", Status: OK, Detail: "1 entry", Took: 1500 * time.Microsecond},
		{Name: "audit_log", Status: Warn, Detail: "not set"},
		{Name: "hma h", Status: Fail, Detail: "down", Took: 10 * time.Microsecond},
	})
	want := "✓ bank A     1 entry (2ms)\n! audit_log  not set\n✗ hma h      down (<1ms)\n1 of 3 checks FAILED, 1 warning\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	Print(&b, []Result{{Name: "x", Status: OK}})
	if !strings.HasSuffix(b.String(), "all checks passed, 0 warnings\n") {
		t.Fatal(b.String())
	}
}

func TestLatest(t *testing.T) {
	for in, want := range map[string]string{
		"r0.5.0 r0.6.1 v1.1 v1.11 v1.2": "v1.11",
		"r0.5.0 r0.6.1":                 "r0.6.1",
		"v2.0 v1.12":                    "v2.0",
	} {
		if got := latest(strings.Fields(in)); got != want {
			t.Errorf("latest(%s) = %s, want %s", in, got, want)
		}
	}
}
