package caddymodule

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/service"
)

var update = flag.Bool("update", false, "rewrite the golden adapt files")

// TestCaddyfileAdapt adapts each testdata/caddyfile_adapt/*.caddyfiletest
// (a Caddyfile, a line of dashes, the expected JSON) and compares.
func TestCaddyfileAdapt(t *testing.T) {
	files, _ := filepath.Glob("testdata/caddyfile_adapt/*.caddyfiletest")
	if len(files) == 0 {
		t.Fatal("no golden files")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			in, want, ok := strings.Cut(string(raw), "\n----------\n")
			if !ok {
				t.Fatal("missing ---------- separator")
			}
			got, warnings, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(in), nil)
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Logf("warning: %v", w)
			}
			var pretty bytes.Buffer
			json.Indent(&pretty, got, "", "\t")
			if *update {
				os.WriteFile(f, []byte(in+"\n----------\n"+pretty.String()+"\n"), 0o644)
				return
			}
			if strings.TrimSpace(pretty.String()) != strings.TrimSpace(want) {
				t.Errorf("adapted JSON differs (run go test -update to accept):\n%s", pretty.String())
			}
		})
	}
}

// TestCaddyfileErrorsNameTheDirective: a bad value must say where it is.
func TestCaddyfileErrorsNameTheDirective(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"bank lower /x", "bank: name"},
		{"bank TEST", "bank: want"},
		{"pdq_threshold 64", "pdq_threshold"},
		{"upload_idle_timeout 0s", "upload_idle_timeout"},
		{"upload_idle_timeout", "upload_idle_timeout"},
		{"pdq_threshold x", "pdq_threshold"},
		{"min_pdq_quality 101", "min_pdq_quality"},
		{"on_matcher_error maybe", "on_matcher_error"},
		{"on_undecodable_image maybe", "on_undecodable_image"},
		{"max_upload_size lots", "max_upload_size"},
		{"dihedral sideways", "dihedral"},
		{"pdq_exact sometimes", "pdq_exact: want on or off"},
		{"pdq_search sideways", "pdq_search: want default, deep or off"},
		{"hma http://h {\n colour blue\n }", "hma: unknown option"},
		{"cache {\n match_ttl -1s\n }", "match_ttl"},
		{"breaker {\n failure_ratio 2\n }", "failure_ratio"},
		{"frobnicate", "unknown option \"frobnicate\""},
		{"temp_dir /a /b", "unexpected extra argument"},
		{"notify matrix {\n homeserver http://h\n access_token t\n room #mods:example.org\n }", "must be quoted"},
		{"notify matrix {\n homeserver http://h\n }", "are required"},
		{"notify slack", "notify: want"},
		{"mode dry-run", "mode must be enforce or report"},
		{"mode", "mode: want"},
		{"bank B /b {\n mode maybe\n }", "bank B: mode must be"},
		{"bank B /b {\n category porn\n }", "bank B: category must be one of"},
		{"bank B /b {\n label\n }", "bank B: want `label TEXT`"},
		{"bank B /b {\n colour blue\n }", "bank B: unknown option"},
		{"hma http://h {\n mode off\n }", "hma: mode must be"},
		{"service http://s {\n category x\n }", "service: category must be"},
	} {
		src := "{\n\tmediaguard {\n\t\t" + tc.in + "\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"
		_, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}
	for _, src := range []string{":8080 {\n\tmediaguard extra\n}\n", ":8080 {\n\tmediaguard_lookup {\n\t\tnope\n\t}\n}\n"} {
		if _, _, err := (caddyfile.Adapter{ServerType: serverType()}).Adapt([]byte(src), nil); err == nil {
			t.Errorf("%q adapted without error", src)
		}
	}
}

// pdq_search takes default, deep or off; unset is the default search, not
// pdq's zero value (off), and a bad value stops the config at provision.
func TestPDQSearchOption(t *testing.T) {
	for in, want := range map[string]pdq.Search{"": pdq.SearchDefault, "default": pdq.SearchDefault, "deep": pdq.SearchDeep, "off": pdq.SearchOff} {
		if got, err := service.ParsePDQSearch(in); err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"sideways", "Deep", "on"} {
		if _, err := service.ParsePDQSearch(in); err == nil || !strings.Contains(err.Error(), "pdq_search must be default, deep or off") {
			t.Errorf("%q: %v", in, err)
		}
	}
	err := caddy.Validate(&caddy.Config{AppsRaw: caddy.ModuleMap{"mediaguard": json.RawMessage(`{"pdq_search":"sideways"}`)}})
	if err == nil || !strings.Contains(err.Error(), `pdq_search must be default, deep or off, not "sideways"`) {
		t.Fatalf("provisioning a bad pdq_search: %v", err)
	}
	for _, src := range []string{"pdq_search", "pdq_search sideways", `pdq_search ""`, "pdq_search deep off"} {
		in := "{\n\tmediaguard {\n\t\t" + src + "\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"
		if _, _, err := (caddyfile.Adapter{ServerType: serverType()}).Adapt([]byte(in), nil); err == nil || !strings.Contains(err.Error(), "pdq_search") {
			t.Errorf("%q: %v", src, err)
		}
	}
}

// The JSON names are the Caddyfile's (audit_max_size, max_body_size); the
// old JSON names are still read, the new one winning, and an unknown
// field is still an error, as Caddy decodes module configs.
func TestJSONSizeAliases(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{`{"audit_max_size":1000}`, 1000},
		{`{"audit_max_bytes":2000}`, 2000},
		{`{"audit_max_size":1000,"audit_max_bytes":2000}`, 1000},
		{`{}`, 0},
	} {
		var a App
		if err := caddy.StrictUnmarshalJSON([]byte(tc.in), &a); err != nil || a.AuditMaxSize != tc.want {
			t.Errorf("app %s: audit_max_size %d, %v; want %d", tc.in, a.AuditMaxSize, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{`{"max_body_size":1000}`, 1000},
		{`{"max_body_bytes":2000,"rate_limit":3}`, 2000},
		{`{"max_body_size":1000,"max_body_bytes":2000}`, 1000},
	} {
		var l Lookup
		if err := caddy.StrictUnmarshalJSON([]byte(tc.in), &l); err != nil || l.MaxBodySize != tc.want {
			t.Errorf("lookup %s: max_body_size %d, %v; want %d", tc.in, l.MaxBodySize, err, tc.want)
		}
	}
	var a App
	if err := caddy.StrictUnmarshalJSON([]byte(`{"audit_max_sise":1000}`), &a); err == nil {
		t.Error("an unknown app field was accepted")
	}
	var l Lookup
	if err := caddy.StrictUnmarshalJSON([]byte(`{"max_body":1000}`), &l); err == nil {
		t.Error("an unknown lookup field was accepted")
	}
	// Configs are written in the new names.
	b, err := json.Marshal(App{AuditMaxSize: 5})
	if err != nil || !strings.Contains(string(b), `"audit_max_size":5`) {
		t.Errorf("marshalled %s, %v", b, err)
	}
}
