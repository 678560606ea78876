package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
)

// TestCheck is `make demo`'s proof: the -check scenario against a real
// Dendrite and a Caddy built the way `make build` builds bin/caddy. The
// listed picture is refused, the clean one stored and served back, the
// lookup API blocks, the notice reaches the management room; afterwards
// the temporary directory is gone and nothing answers on the demo's ports.
func TestCheck(t *testing.T) {
	e2e.RequireDendrite(t)
	caddy := buildCaddy(t)

	var buf bytes.Buffer
	out := &syncWriter{w: &buf}
	start := time.Now()
	rep, err := run(context.Background(), options{
		Caddy:  caddy,
		Bank:   filepath.Join("..", "..", "examples", "demo.bank"),
		Listed: filepath.Join("..", "..", "examples", "demo-listed.png"),
		Check:  true,
		Out:    out, Log: out,
	})
	t.Logf("mgdemo -check took %v:\n%s", time.Since(start).Round(time.Millisecond), buf.String())
	if err != nil {
		t.Fatalf("check failed: %v", err)
	}
	for _, want := range []string{`"errcode":"M_FORBIDDEN"`, "HTTP 403", "MEDIA=localhost/", `"action":"block"`, "mediaguard blocked an upload", "check passed"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the output lacks %q", want)
		}
	}
	if rep.Dir == "" {
		t.Fatal("no directory reported")
	}
	if _, err := os.Stat(rep.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s is still there (%v)", rep.Dir, err)
	}
	if len(rep.URLs) != 3 {
		t.Fatalf("addresses reported: %q", rep.URLs)
	}
	for _, u := range rep.URLs {
		if resp, err := http.Get(u + "/"); err == nil {
			resp.Body.Close()
			t.Errorf("%s still answers (%s) after the demo stopped", u, resp.Status)
		}
	}
}

// buildCaddy builds ./xcaddy as `make build` does, into the test's
// directory rather than the working tree's bin/. After `go vet` (which
// make test runs first) every package is compiled already and this is
// a link, about 15 s on 2 cores.
func buildCaddy(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "caddy")
	cmd := exec.Command("go", "build", "-tags", "nodynamic", "-o", bin, "./xcaddy")
	cmd.Dir = filepath.Join("..", "..")
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./xcaddy: %v\n%s", err, out)
	}
	t.Logf("built %s in %v", bin, time.Since(start).Round(time.Millisecond))
	return bin
}

func TestShellQuote(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"/tmp/mgdemo-1/clean.png", "/tmp/mgdemo-1/clean.png"},
		{`{"hashes":{}}`, `'{"hashes":{}}'`},
		{"it's", `'it'\''s'`},
		{"a b", "'a b'"},
		{"$HOME", "'$HOME'"},
		{"", "''"},
	} {
		if got := shellQuote(c.in); got != c.want {
			t.Errorf("shellQuote(%q) = %s, want %s", c.in, got, c.want)
		}
		if c.in == "" {
			continue
		}
		// sh must read the quoted word back as the original.
		if out, err := exec.Command("sh", "-c", "printf %s "+shellQuote(c.in)).Output(); err == nil && string(out) != c.in {
			t.Errorf("sh reads %s as %q, want %q", shellQuote(c.in), out, c.in)
		}
	}
}

// TestCallRunners: a call run through sh and curl and the same call run
// through Go agree on the status, what is captured and what is written,
// so -check proves the same thing on machines without curl.
func TestCallRunners(t *testing.T) {
	for _, tool := range []string{"sh", "curl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED LOUDLY: no %s here to compare the Go runner with (install curl to run this test)", tool)
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, `{"errcode":"M_MISSING_TOKEN"}`, http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/upload":
			b, _ := io.ReadAll(r.Body)
			if string(b) == "listed" {
				w.WriteHeader(http.StatusForbidden)
				io.WriteString(w, `{"errcode":"M_FORBIDDEN","error":"This media cannot be uploaded"}`)
				return
			}
			io.WriteString(w, `{"content_uri":"mxc://localhost/abc123"}`)
		case "/download/localhost/abc123":
			io.WriteString(w, "picture bytes")
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	listed, clean := filepath.Join(dir, "listed"), filepath.Join(dir, "clean")
	os.WriteFile(listed, []byte("listed"), 0o600)
	os.WriteFile(clean, []byte("clean"), 0o600)

	for _, c := range []struct {
		name       string
		call       call
		wantStatus int
		wantVar    string // the captured MEDIA
		wantFile   string // what the call wrote
	}{
		{"refused upload", call{url: "$MG/upload", token: "TOKEN", ctype: "image/png", file: listed}, 403, "", ""},
		{"upload kept", call{url: "$MG/upload", token: "TOKEN", ctype: "image/png", file: clean, capture: "MEDIA"}, 200, "localhost/abc123", ""},
		{"download", call{url: "$MG/download/$MEDIA", token: "TOKEN", output: filepath.Join(dir, "out")}, 200, "", "picture bytes"},
		{"json", call{url: "$MG/nothing", token: "TOKEN", ctype: "application/json", data: `{"a":"it's"}`}, 404, "", ""},
		{"no token", call{url: "$MG/upload", file: clean}, 401, "", ""},
	} {
		for _, runner := range []string{"sh", "go"} {
			vars := map[string]string{"MG": srv.URL, "TOKEN": "s3cret", "MEDIA": "localhost/abc123"}
			run := c.call.runShell
			if runner == "go" {
				run = c.call.runGo
			}
			os.Remove(filepath.Join(dir, "out"))
			res, err := run(context.Background(), vars)
			if err != nil {
				t.Errorf("%s via %s: %v\n%s", c.name, runner, err, res.output)
				continue
			}
			if res.status != c.wantStatus {
				t.Errorf("%s via %s: status %d, want %d; output %q", c.name, runner, res.status, c.wantStatus, res.output)
			}
			if c.wantVar != "" && vars["MEDIA"] != c.wantVar {
				t.Errorf("%s via %s: MEDIA=%q, want %q; output %q", c.name, runner, vars["MEDIA"], c.wantVar, res.output)
			}
			if c.wantFile != "" {
				if b, _ := os.ReadFile(c.call.output); string(b) != c.wantFile {
					t.Errorf("%s via %s: wrote %q, want %q", c.name, runner, b, c.wantFile)
				}
			}
		}
	}
}
