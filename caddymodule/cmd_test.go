package caddymodule

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
)

func TestHashCommandJSON(t *testing.T) {
	dir := t.TempDir()
	notImage := filepath.Join(dir, "notes.txt")
	os.WriteFile(notImage, []byte("hello"), 0o600)
	var out, errOut bytes.Buffer
	failed := runHash(&out, &errOut, []string{notImage, filepath.Join(dir, "missing.jpg")}, hashing.FileOptions{PDQ: pdq.Options{Dihedral: true}}, true)
	if failed != 1 || !strings.Contains(errOut.String(), "missing.jpg") {
		t.Fatalf("failed=%d stderr=%q: a missing file must be reported and counted", failed, errOut.String())
	}
	var obj map[string]any
	if err := json.Unmarshal(out.Bytes(), &obj); err != nil {
		t.Fatalf("not one JSON object per line: %v", err)
	}
	for _, k := range []string{"file", "md5", "sha1", "sha256", "pdq", "pdq_quality", "error"} {
		if _, ok := obj[k]; !ok {
			t.Errorf("key %q missing from %v", k, obj)
		}
	}
	if obj["md5"] != "5d41402abc4b2a76b9719d911017c592" || obj["pdq"] != "" {
		t.Errorf("unexpected report %v", obj)
	}
}

func TestHashCommandText(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.bin")
	os.WriteFile(f, nil, 0o600)
	var out, errOut bytes.Buffer
	if runHash(&out, &errOut, []string{f}, hashing.FileOptions{}, false) != 0 {
		t.Fatal(errOut.String())
	}
	if !strings.Contains(out.String(), "sha256       e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") {
		t.Fatalf("text output: %q", out.String())
	}
}

func TestAuditCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	l.Append(audit.Record{Time: old, Kind: audit.KindBlock, Direction: "upload", Endpoint: "upload", User: "@old:example.org"})
	l.Append(audit.Record{Kind: audit.KindBlock, Direction: "download", Endpoint: "client_download", User: "@new:example.org", Media: "example.org/abc"})
	l.Close()
	var out bytes.Buffer
	from, err := parseSince("24h", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := runAudit(&out, path, from, false); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "@old") || !strings.Contains(out.String(), "user=@new:example.org media=example.org/abc") {
		t.Fatalf("text output: %q", out.String())
	}
	out.Reset()
	if err := runAudit(&out, path, time.Time{}, true); err != nil || strings.Count(out.String(), "\n") != 2 {
		t.Fatalf("json output: %v %q", err, out.String())
	}
	if _, err := parseSince("yesterday", time.Now()); err == nil {
		t.Fatal("bad --since accepted")
	}
}

func TestAuditPathFromConfig(t *testing.T) {
	dir := t.TempDir()
	cf := filepath.Join(dir, "Caddyfile")
	os.WriteFile(cf, []byte("{\n\tmediaguard {\n\t\taudit_log /var/lib/mediaguard/audit.log\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"), 0o600)
	if got, err := auditPathFromConfig(cf, "caddyfile"); err != nil || got != "/var/lib/mediaguard/audit.log" {
		t.Fatalf("got %q, %v", got, err)
	}
	os.WriteFile(cf, []byte(":8080 {\n\trespond ok\n}\n"), 0o600)
	if _, err := auditPathFromConfig(cf, "caddyfile"); err == nil || !strings.Contains(err.Error(), "--log") {
		t.Fatalf("config without audit_log: %v", err)
	}
}
