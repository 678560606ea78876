package mediaproxy

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/matcher"
)

// ScanFile judges a stored file as an upload of the same bytes is judged:
// same query, hence same verdict; past max_upload_size by its exact
// digests only.
func TestScanFileAsUpload(t *testing.T) {
	listed := testPhoto(90, 240, 180)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listed)).String()}, nil)
	dir := t.TempDir()
	cases := []struct {
		name    string
		body    []byte
		format  string
		match   bool
		pdq     bool
		maxSize int64
	}{
		{"listed jpeg", jpegBytes(listed, 90), "jpeg", true, true, 0},
		{"clean png", encodePNG(testPhoto(91, 200, 200)), "png", false, true, 0},
		{"not an image", bytes.Repeat([]byte("text "), 1000), "", false, false, 0},
		{"listed jpeg over the size limit", jpegBytes(listed, 90), "jpeg", false, false, 100},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := e.proxy
			if c.maxSize > 0 {
				q, err := New(Config{Matcher: e.proxy.cfg.Matcher, TempDir: t.TempDir(), MaxUploadSize: c.maxSize, PDQSearch: e.proxy.cfg.PDQSearch})
				if err != nil {
					t.Fatal(err)
				}
				p = q
			}
			path := filepath.Join(dir, string(rune('a'+i)))
			if err := os.WriteFile(path, c.body, 0o600); err != nil {
				t.Fatal(err)
			}
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			fs, err := p.ScanFile(context.Background(), f, int64(len(c.body)), "")
			if err != nil {
				t.Fatal(err)
			}
			if fs.Digests != hashing.DigestBytes(c.body) || fs.Format != c.format || fs.ExactOnly != (c.maxSize > 0) {
				t.Errorf("digests/format/exact-only wrong: %q %v", fs.Format, fs.ExactOnly)
			}
			if got := fs.Query.Has&matcher.HasPDQ != 0; got != c.pdq {
				t.Errorf("has pdq %v, want %v", got, c.pdq)
			}
			if c.maxSize == 0 {
				want := p.scan(context.Background(), bytes.NewReader(c.body), "", hashing.DigestBytes(c.body))
				if fs.Query.PDQ != want.query.PDQ || len(fs.Query.Forms) != len(want.query.Forms) || len(fs.Query.Embedded) != len(want.query.Embedded) {
					t.Errorf("file query differs from the body's: %d forms vs %d", len(fs.Query.Forms), len(want.query.Forms))
				}
			}
			v, err := p.cfg.Matcher.Match(context.Background(), fs.Query)
			if err != nil || v.Match != c.match {
				t.Errorf("match %v (%v), want %v", v.Match, err, c.match)
			}
			if _, err := p.ScanFile(context.Background(), f, int64(len(c.body))+1, ""); err == nil {
				t.Error("a file shorter than its stated size was judged")
			}
		})
	}
}
