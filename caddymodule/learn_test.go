package caddymodule

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testkit"
	"github.com/mediaguard/mediaguard/learn"
)

func TestLearnCaddyfile(t *testing.T) {
	src := func(inner string) string {
		return "{\n\tmediaguard {\n\t\tbank LEARNED /var/lib/mediaguard/learned.bank\n\t\tsynapse_admin {\n\t\t\thomeserver http://127.0.0.1:8008\n\t\t\taccess_token {env.SYNAPSE_ADMIN_TOKEN}\n" +
			inner + "\n\t\t}\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"
	}
	out, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src("learn_quarantines LEARNED\nlearn_every 10s")), nil)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Apps struct {
			Mediaguard App `json:"mediaguard"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	if sa := cfg.Apps.Mediaguard.SynapseAdmin; sa == nil || sa.LearnQuarantines != "LEARNED" || time.Duration(sa.LearnEvery) != 10*time.Second {
		t.Fatalf("adapted: %s", out)
	}
	for in, want := range map[string]string{
		"learn_quarantines":                     "want `learn_quarantines BANK`",
		"learn_quarantines A B":                 "want `learn_quarantines BANK`",
		"learn_every 10s":                       "learn_every without learn_quarantines",
		"learn_quarantines X\nlearn_every soon": "learn_every: want a positive duration",
	} {
		if _, _, err := (caddyfile.Adapter{ServerType: serverType()}).Adapt([]byte(src(in)), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", in, err, want)
		}
	}
}

// learn_quarantines names a declared bank whose path is a file: anything
// else stops the start with what to do, and so does an operator's bank,
// which mediaguard never rewrites.
func TestLearnProvisionErrors(t *testing.T) {
	dir := t.TempDir()
	operators := filepath.Join(dir, "operator.bank")
	os.WriteFile(operators, []byte("sha256 "+strings.Repeat("ab", 32)+" mine\n"), 0o600)
	for _, tc := range []struct {
		bankPath, learnBank, want string
	}{
		{filepath.Join(dir, "x.bank"), "OTHER", "no bank OTHER is declared; add `bank OTHER PATH`"},
		{dir, "LEARNED", "its bank is the directory"},
		{operators, "LEARNED", "not written by mediaguard"},
	} {
		app := fmt.Sprintf(`{"banks":[{"name":"LEARNED","path":%q}],"hashing":"inline","temp_dir":%q,
			"synapse_admin":{"homeserver":"http://127.0.0.1:1","access_token":"t","learn_quarantines":%q}}`, tc.bankPath, dir, tc.learnBank)
		err := caddy.Validate(&caddy.Config{AppsRaw: caddy.ModuleMap{"mediaguard": json.RawMessage(app)}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.bankPath, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(operators); !strings.HasSuffix(string(b), " mine\n") {
		t.Fatal("an operator's bank was rewritten")
	}
	learners.Range(func(k, _ any) bool {
		if strings.Contains(k.(string), dir) {
			t.Errorf("learner %s left after a failed start", k)
		}
		return true
	})
}

func countLearners() int {
	n := 0
	learners.Range(func(_, _ any) bool { n++; return true })
	return n
}

func learnerOf(t *testing.T) *learn.Poller {
	t.Helper()
	var p *learn.Poller
	learners.Range(func(_, v any) bool { p = v.(*liveLearner).poller; return false })
	if p == nil {
		t.Fatal("no learner")
	}
	return p
}

// One learner per bank across reloads: a reload hands the running
// learner the new config's proxy and matcher (it neither starts a second
// one nor fetches again what it learned); a reload that fails leaves the
// old config's in use; a stop closes it.
func TestLearnerSharedAcrossReloads(t *testing.T) {
	dir := t.TempDir()
	f := fakes.NewSynapse(t)
	f.Admins["moderator-token"] = "@moderator:hs.example"
	bank := filepath.Join(dir, "learned.bank")
	config := func(every, routes string) []byte {
		return []byte(fmt.Sprintf(`{"admin":{"disabled":true,"config":{"persist":false}},"apps":{
			"mediaguard":{"banks":[{"name":"LEARNED","path":%q}],"hashing":"inline","temp_dir":%q,
			"synapse_admin":{"homeserver":%q,"access_token":%q,"learn_quarantines":"LEARNED","learn_every":%q}}%s}}`,
			bank, dir, f.URL, f.AdminToken, every, routes))
	}
	quarantine := func(id string) {
		f.Put(id, []byte("bytes of "+id), "application/octet-stream")
		req, _ := http.NewRequest("POST", f.URL+"/_synapse/admin/v1/media/quarantine/hs.example/"+id, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer moderator-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	downloads := func(id string) int {
		n := 0
		for _, c := range f.Calls() {
			if strings.HasSuffix(c.Path, "/media/download/hs.example/"+id) {
				n++
			}
		}
		return n
	}
	if err := caddy.Load(config("50ms", ""), true); err != nil {
		t.Fatal(err)
	}
	defer caddy.Stop()
	quarantine("one")
	p := learnerOf(t)
	testkit.Eventually(t, "one learned", func() bool { return p.Stats().Learned == 1 })

	if err := caddy.Load(config("60ms", ""), true); err != nil {
		t.Fatal(err)
	}
	quarantine("two")
	testkit.Eventually(t, "two learned after the reload", func() bool { return p.Stats().Learned == 2 })
	if n := countLearners(); n != 1 || learnerOf(t) != p {
		t.Fatalf("%d learners after a reload, or another one", n)
	}
	failing := fmt.Sprintf(`,"http":{"servers":{"s":{"listen":["127.0.0.1:%d"],"routes":[{"handle":[
		{"handler":"mediaguard"},{"handler":"mediaguard_lookup","api_key":"{env.MEDIAGUARD_TEST_UNSET_KEY}"}]}]}}}`, testkit.FreePort(t))
	os.Unsetenv("MEDIAGUARD_TEST_UNSET_KEY")
	if err := caddy.Load(config("70ms", failing), true); err == nil {
		t.Fatal("the failing config loaded")
	}
	quarantine("three")
	testkit.Eventually(t, "three learned after a failed reload", func() bool { return p.Stats().Learned == 3 })
	if downloads("one") != 1 || downloads("two") != 1 {
		t.Fatalf("media fetched again: %d %d", downloads("one"), downloads("two"))
	}
	// The running matcher holds the learned entries (the bank is written
	// once the feed's page is applied).
	testkit.Eventually(t, "the running matcher holding the three", func() bool {
		b := live().Local().Bank("LEARNED")
		return b != nil && b.Counts().SHA256 == 3
	})
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if n := countLearners(); n != 0 {
		t.Fatalf("%d learners after the stop", n)
	}
	if _, err := p.Use(learn.Settings{Scanner: nopScanner{}, Admin: homeserver.AdminConfig{Homeserver: f.URL, AccessToken: f.AdminToken}}); err == nil {
		t.Fatal("the learner still runs after the stop")
	}
}

type nopScanner struct{ learn.Scanner }

// `mediaguard doctor` reads learn_quarantines from the Caddyfile: before
// the first start the learned bank is a warning, and a Synapse without
// the quarantine feed fails the check, saying which version it needs.
func TestDoctorLearnQuarantines(t *testing.T) {
	syn := fakes.NewSynapse(t)
	dir := t.TempDir()
	caddyfile := filepath.Join(dir, "Caddyfile")
	os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin off
	mediaguard {
		bank LEARNED %s
		temp_dir %s
		synapse_admin {
			homeserver %s
			access_token {env.MG_TEST_ADMIN_TOKEN}
			learn_quarantines LEARNED
		}
	}
}
`, filepath.Join(dir, "learned.bank"), dir, syn.URL)), 0o600)
	t.Setenv("MG_TEST_ADMIN_TOKEN", syn.AdminToken)
	out, err := runDoctorCommand(t, "--config", caddyfile)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	wantLines(t, out, "! bank LEARNED does not exist yet: learn_quarantines creates it", "✓ learn_quarantines LEARNED the quarantine feed answers from position 0")
	syn.NoQuarantineFeed.Store(true)
	out, err = runDoctorCommand(t, "--config", caddyfile)
	if err == nil {
		t.Fatalf("a Synapse without the feed passed:\n%s", out)
	}
	wantLines(t, out, "✗ learn_quarantines LEARNED "+syn.URL+" has no quarantine feed")
	if !strings.Contains(out, "needs Synapse 1.152 or later") || strings.Contains(out, syn.AdminToken) {
		t.Fatalf("doctor output:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(dir, "learned.bank")); err == nil {
		t.Fatal("the doctor created the learned bank")
	}
}
