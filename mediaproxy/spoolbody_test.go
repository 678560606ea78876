package mediaproxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/matcher"
)

// TestSpoolBody: a body spooled outside the media endpoints is held as an
// upload is (memory up to memory_buffer, then a 0600 file in the private
// spool directory), judged exactly as ScanFile judges the same bytes, and
// leaves nothing behind when closed or refused.
func TestSpoolBody(t *testing.T) {
	listed := testPhoto(92, 240, 180)
	e := newEnv(t, []string{"pdq " + pdqOf(t, encodePNG(listed)).String()}, nil)
	small := jpegBytes(listed, 90)
	big := append(bytes.Clone(small), bytes.Repeat([]byte{0}, 100<<10)...) // past the 64 KiB memory buffer
	for _, tc := range []struct {
		name   string
		body   []byte
		onDisk bool
	}{
		{"in memory", small[:min(len(small), 60<<10)], false},
		{"spilled to disk", big, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := e.proxy.SpoolBody(bytes.NewReader(tc.body), 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			if b.OnDisk() != tc.onDisk || b.Size() != int64(len(tc.body)) || b.Digests() != hashing.DigestBytes(tc.body) {
				t.Fatalf("on disk %v, size %d, digests match %v", b.OnDisk(), b.Size(), b.Digests() == hashing.DigestBytes(tc.body))
			}
			files := spoolFiles(t, e.tmp)
			if tc.onDisk {
				if len(files) != 1 {
					t.Fatalf("spool files %v", files)
				}
				if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("spool file mode %v (%v)", fi.Mode(), err)
				}
			}
			fs, err := b.Scan(context.Background(), "application/octet-stream")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "f")
			os.WriteFile(path, tc.body, 0o600)
			f, _ := os.Open(path)
			defer f.Close()
			want, err := e.proxy.ScanFile(context.Background(), f, int64(len(tc.body)), "application/octet-stream")
			if err != nil {
				t.Fatal(err)
			}
			if fs.Query.PDQ != want.Query.PDQ || fs.Query.PDQQuality != want.Query.PDQQuality || fs.Query.Has != want.Query.Has ||
				fs.Format != want.Format || len(fs.Query.Forms) != len(want.Query.Forms) || fs.Undecodable != want.Undecodable {
				t.Errorf("spooled scan differs from ScanFile: %+v vs %+v", fs.Query.Has, want.Query.Has)
			}
			if v, _ := e.local.Match(context.Background(), fs.Query); v.Match != (fs.Query.Has&matcher.HasPDQ != 0) {
				t.Errorf("match %v", v.Match)
			}
			b.Close()
			b.Close()
			if files := spoolFiles(t, e.tmp); len(files) != 0 {
				t.Errorf("left behind: %v", files)
			}
			if n := e.proxy.Buffered(); n != 0 {
				t.Errorf("budget still charged %d bytes", n)
			}
		})
	}
	t.Run("a size hint past memory_buffer goes straight to disk", func(t *testing.T) {
		b, err := e.proxy.SpoolBody(bytes.NewReader(small[:1000]), 0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !b.OnDisk() || b.Size() != 1000 {
			t.Errorf("on disk %v, size %d", b.OnDisk(), b.Size())
		}
		b.Close()
		if files := spoolFiles(t, e.tmp); len(files) != 0 {
			t.Errorf("left behind: %v", files)
		}
	})
	t.Run("too large", func(t *testing.T) {
		_, err := e.proxy.SpoolBody(bytes.NewReader(big), 1000, -1)
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("err %v", err)
		}
		if files := spoolFiles(t, e.tmp); len(files) != 0 || e.proxy.Buffered() != 0 {
			t.Errorf("left behind: %v, %d buffered", files, e.proxy.Buffered())
		}
	})
	t.Run("reader fails", func(t *testing.T) {
		_, err := e.proxy.SpoolBody(io.MultiReader(bytes.NewReader(big), errReader{}), 0, -1)
		if err == nil || errors.Is(err, ErrTooLarge) {
			t.Errorf("err %v", err)
		}
		if files := spoolFiles(t, e.tmp); len(files) != 0 {
			t.Errorf("left behind: %v", files)
		}
	})
	if e.proxy.MaxUploadSize() != 8<<20 {
		t.Errorf("MaxUploadSize %d", e.proxy.MaxUploadSize())
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// spoolFiles lists the spool files in dir.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, spoolPrefix+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}
