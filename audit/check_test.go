package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// CheckPath tells whether Open would work, without opening (or repairing)
// the log.
func TestCheckPath(t *testing.T) {
	dir := t.TempDir()
	existing := filepath.Join(dir, "audit.log")
	l, err := Open(Options{Path: existing})
	if err != nil {
		t.Fatal(err)
	}
	l.Append(Record{Kind: KindBlock})
	l.Close()
	torn := filepath.Join(dir, "torn.log")
	os.WriteFile(torn, []byte(`{"kind":"block"`), 0o600) // a write in progress
	loose := filepath.Join(dir, "loose.log")
	os.WriteFile(loose, nil, 0o644)
	os.Chmod(loose, 0o644)
	file := filepath.Join(dir, "plain")
	os.WriteFile(file, nil, 0o600)
	for _, tc := range []struct {
		name, path string
		exists     bool
		warn, err  string
	}{
		{"existing", existing, true, "", ""},
		{"not yet created, directories too", filepath.Join(dir, "a", "b", "audit.log"), false, "", ""},
		{"a write in progress is left alone", torn, true, "", ""},
		{"readable by others", loose, true, "other users may read it", ""},
		{"a directory", dir, false, "", "not a regular file"},
		{"under a file", filepath.Join(file, "audit.log"), false, "", "not a directory"},
		{"empty", "", false, "", "empty path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := CheckPath(tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || pc.Exists != tc.exists || pc.Dir == "" {
				t.Fatalf("CheckPath = %+v, %v", pc, err)
			}
			if got := strings.Join(pc.Warnings, "; "); !strings.Contains(got, tc.warn) || tc.warn == "" && got != "" {
				t.Fatalf("warnings %q, want %q", got, tc.warn)
			}
		})
	}
	if b, _ := os.ReadFile(torn); string(b) != `{"kind":"block"` {
		t.Fatalf("CheckPath changed a log: %q", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); err == nil {
		t.Fatal("CheckPath created a directory")
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 4 {
		t.Fatalf("probe files left behind: %v", ents)
	}
}
