package mediaproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mediaguard/mediaguard/hashing"
)

// ErrTooLarge is returned when a body exceeds the configured maximum.
var ErrTooLarge = errors.New("mediaproxy: body exceeds the maximum size")

// ErrSpoolDisk wraps failures to create or write the spool file (disk full,
// temp dir unwritable): the upload is refused with 503, never forwarded
// truncated.
var ErrSpoolDisk = errors.New("mediaproxy: cannot spool to disk")

// Spool holds a body read in full, in memory up to a threshold and then in
// a temp file, with its digests computed in the same pass.
type Spool struct {
	mem     []byte
	file    spoolFile
	size    int64
	digests hashing.Digests
	// onDisk and disk account the bytes this spool holds on disk.
	onDisk func(delta int64)
	disk   int64
}

// SpoolOptions bound a spool.
type SpoolOptions struct {
	// MemoryLimit is how much is kept in memory before spilling to disk.
	MemoryLimit int64
	// MaxSize is the hard cap; more is ErrTooLarge.
	MaxSize int64
	// TempDir is where spill files go ("" = os.TempDir()); the Proxy
	// passes its private directory (PrivateSpoolDir). Files are created
	// 0600 and removed by Close.
	TempDir string
	// Declared is the body's declared length (-1 when unknown, as for a
	// chunked upload). A body declared larger than MemoryLimit goes
	// straight to disk, and a smaller one gets an exact buffer: concurrent
	// large uploads then cost kilobytes of memory each, not MemoryLimit.
	Declared int64
	// OnDisk, when set, is told how many bytes went to disk, and the same
	// amount negated when the file is removed (a gauge of spool usage).
	OnDisk func(delta int64)
}

// NewSpool reads r to EOF. On any error nothing is left on disk.
func NewSpool(r io.Reader, opt SpoolOptions) (s *Spool, err error) {
	s = &Spool{}
	d := hashing.NewDigester()
	defer func() {
		if err != nil {
			d.Close()
			s.Close()
			s = nil
		}
	}()
	var buf bytes.Buffer
	limit := opt.MemoryLimit
	if limit > opt.MaxSize {
		limit = opt.MaxSize
	}
	var n int64
	if opt.Declared < 0 || opt.Declared <= limit {
		if opt.Declared >= 0 {
			buf.Grow(int(opt.Declared) + 1)
		}
		// Memory phase: read up to limit+1 so we know whether it all fits.
		var err error
		n, err = io.Copy(io.MultiWriter(&buf, d), io.LimitReader(r, limit+1))
		if err != nil {
			return s, err
		}
		s.size = n
		if n <= limit {
			s.mem = buf.Bytes()
			s.digests = d.Sum()
			return s, nil
		}
		if n > opt.MaxSize {
			return s, ErrTooLarge
		}
	}
	// Disk phase.
	f, err := createSpoolFile(opt.TempDir)
	if err != nil {
		return s, fmt.Errorf("%w: %w", ErrSpoolDisk, err)
	}
	s.file = f
	if _, err := f.Write(buf.Bytes()); err != nil {
		return s, fmt.Errorf("%w: %w", ErrSpoolDisk, err)
	}
	buf = bytes.Buffer{}
	w := &diskWriter{f: f}
	m, err := io.Copy(io.MultiWriter(w, d), io.LimitReader(r, opt.MaxSize-n+1))
	s.size += m
	if opt.OnDisk != nil {
		s.onDisk, s.disk = opt.OnDisk, s.size
		s.onDisk(s.disk)
	}
	if w.err != nil {
		return s, fmt.Errorf("%w: %w", ErrSpoolDisk, w.err)
	}
	if err != nil {
		return s, err
	}
	if s.size > opt.MaxSize {
		return s, ErrTooLarge
	}
	s.digests = d.Sum()
	return s, nil
}

// diskWriter remembers a write error so it can be told apart from a client
// read error (503 for our disk, 400 for their body).
type diskWriter struct {
	f   io.Writer
	err error
}

func (w *diskWriter) Write(p []byte) (int, error) {
	n, err := w.f.Write(p)
	if err != nil && w.err == nil {
		w.err = err
	}
	return n, err
}

// Size is the body length.
func (s *Spool) Size() int64 { return s.size }

// Digests are the exact hashes of the body.
func (s *Spool) Digests() hashing.Digests { return s.digests }

// OnDisk reports whether the body spilled to a temp file.
func (s *Spool) OnDisk() bool { return s.file != nil }

// Bytes returns the body if it is in memory (nil otherwise).
func (s *Spool) Bytes() []byte { return s.mem }

// Reader returns a fresh reader over the whole body from the start.
func (s *Spool) Reader() io.ReadSeeker {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return newMemBody(s.mem)
}

// Close removes the temp file, if any. Safe to call twice.
func (s *Spool) Close() error {
	if s == nil || s.file == nil {
		return nil
	}
	name := s.file.Name()
	s.file.Close()
	s.file = nil
	if s.onDisk != nil {
		s.onDisk(-s.disk)
	}
	return os.Remove(name)
}

// spoolFile is what a spool needs of its temp file; tests substitute one
// that fails like a full disk.
type spoolFile interface {
	io.Writer
	io.ReaderAt
	Close() error
	Name() string
}

const spoolPrefix = "mediaguard-spool-"

var createSpoolFile = func(dir string) (spoolFile, error) {
	return os.CreateTemp(dir, spoolPrefix+"*")
}

// PrivateSpoolDir returns the directory spill files go in: a subdirectory
// "mediaguard-UID" of base (os.TempDir() when empty), mode 0700, owned by
// this process's user. Uploads may be abuse material: on a shared /tmp no
// other user may list or open them. A directory of that name that is a
// symlink or belongs to someone else (planted in a world-writable /tmp) is
// an error, not something to write into; one of ours with loose
// permissions is tightened. Spill files left by a crash (older than an
// hour; a live one is never that old without being written) are removed.
func PrivateSpoolDir(base string) (string, error) {
	if base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, "mediaguard-"+strconv.Itoa(os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("spool directory: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("spool directory: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("spool directory %s is not a directory (a symlink?); remove it", dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		return "", fmt.Errorf("spool directory %s belongs to uid %d, not to this process (uid %d); remove it", dir, st.Uid, os.Getuid())
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", fmt.Errorf("spool directory: %w", err)
		}
	}
	sweepStaleSpools(dir, time.Hour)
	return dir, nil
}

func sweepStaleSpools(dir string, age time.Duration) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), spoolPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil && fi.Mode().IsRegular() && time.Since(fi.ModTime()) > age {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
