package atomicfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "bank.txt")
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		write   func(io.Writer) error
		want    string // content after
		wantErr error
	}{
		{"creates", func(w io.Writer) error { _, err := io.WriteString(w, "one\n"); return err }, "one\n", nil},
		{"replaces", func(w io.Writer) error { _, err := io.WriteString(w, "two\n"); return err }, "two\n", nil},
		{"a failed write leaves the old content", func(w io.Writer) error { io.WriteString(w, "half"); return boom }, "two\n", boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Write(path, 0o640, tc.write); !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if b, _ := os.ReadFile(path); string(b) != tc.want {
				t.Fatalf("content %q, want %q", b, tc.want)
			}
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.HasPrefix(e.Name(), TempPrefix) {
					t.Fatalf("temporary file left behind: %s", e.Name())
				}
			}
		})
	}
	// The mode of the first creation is kept by later writes.
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteBytes(path, 0o644, []byte("three\n")); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode after a rewrite %v, want the file's 0600", st.Mode().Perm())
	}
	if err := WriteBytes(dir, 0o600, nil); err == nil {
		t.Fatal("writing over a directory succeeded")
	}
}
