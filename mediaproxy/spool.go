package mediaproxy

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mediaguard/mediaguard/hashing"
)

// ErrTooLarge is returned when a body exceeds the configured maximum.
var ErrTooLarge = errors.New("mediaproxy: body exceeds the maximum size")

// ErrSpoolDisk wraps failures to create or write the spool file (disk full,
// temp dir unwritable): the body is refused with 503, never forwarded or
// served truncated.
var ErrSpoolDisk = errors.New("mediaproxy: cannot spool to disk")

// memoryBudget is the allowance all concurrent spools draw their memory
// from (the Proxy's MaxBufferedTotal): what a spool cannot get goes to
// disk instead, so many slow clients cannot exhaust memory.
type memoryBudget interface {
	reserve(n int64) bool
	release(n int64)
}

// spoolOptions bound a spool.
type spoolOptions struct {
	// memoryLimit is how much is kept in memory before spilling to disk.
	memoryLimit int64
	// maxSize is the hard cap: a write past it fails with ErrTooLarge
	// and keeps nothing of that write.
	maxSize int64
	// tempDir is where spill files go ("" = os.TempDir()); the Proxy
	// passes its private directory (PrivateSpoolDir). Files are created
	// 0600 and removed by close.
	tempDir string
	// declared is the body's declared length (-1 when unknown, as for a
	// chunked body). A body declared larger than memoryLimit goes
	// straight to disk, and a smaller one gets an exact buffer: many
	// concurrent large bodies then cost kilobytes of memory each, not
	// memoryLimit.
	declared int64
	// budget, when set, is charged for the memory buffer.
	budget memoryBudget
	// recycle takes the memory buffer from bodyBuffers and gives it back
	// on close. Only for bodies nobody else reads after close: a request
	// body handed to http.Transport may still be read by its write loop
	// after RoundTrip returns.
	recycle bool
	// noDigest skips the digests (a federation body's multipart wrapping
	// is never matched; its media part is spooled and digested on its
	// own).
	noDigest bool
	// onDisk, when set, is told how many bytes went to disk, and the
	// same amount negated when the file is removed (a gauge of spool
	// usage).
	onDisk func(delta int64)
}

// spool holds a body while it arrives, pushed to it by Write: in memory
// while the budget allows, then in a private temp file, digesting it in
// the same pass. Uploads and downloads both spool through it.
type spool struct {
	opt      spoolOptions
	mem      []byte
	reserved int64
	file     spoolFile
	size     int64
	disk     int64
	dg       *hashing.Digester
	digests  hashing.Digests
	summed   bool
	// err is sticky: after a failed write the spool takes no more.
	err error
}

func newSpool(opt spoolOptions) *spool {
	s := &spool{opt: opt}
	if !opt.noDigest {
		s.dg = hashing.NewDigester()
	}
	if opt.declared > 0 && opt.declared <= opt.memoryLimit && opt.declared <= opt.maxSize {
		s.growMem(opt.declared)
	}
	return s
}

// Write keeps b. Past maxSize it fails with ErrTooLarge; a failing disk
// fails with ErrSpoolDisk.
func (s *spool) Write(b []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.size+int64(len(b)) > s.opt.maxSize {
		s.err = ErrTooLarge
		return 0, s.err
	}
	if s.file == nil && s.fitsInMemory(len(b)) {
		s.mem = append(s.mem, b...)
	} else {
		if err := s.toDisk(b); err != nil {
			s.err = fmt.Errorf("%w: %w", ErrSpoolDisk, err)
			return 0, s.err
		}
	}
	s.size += int64(len(b))
	if s.dg != nil {
		s.dg.Write(b)
	}
	return len(b), nil
}

// fitsInMemory makes room for n more bytes in memory, within memoryLimit
// and the budget, and reports whether it could.
func (s *spool) fitsInMemory(n int) bool {
	need := int64(len(s.mem) + n)
	if need <= int64(cap(s.mem)) {
		return true
	}
	if need > s.opt.memoryLimit || s.opt.declared > s.opt.memoryLimit {
		return false
	}
	// Unknown length: grow geometrically, never past the limit.
	return s.growMem(min(max(need, 2*int64(cap(s.mem))), s.opt.memoryLimit))
}

// growMem replaces the memory buffer by one of capacity n, charging the
// budget for the whole buffer (a recycled one can be a quarter larger
// than asked for).
func (s *spool) growMem(n int64) bool {
	charge := n
	if s.opt.recycle {
		if _, size := bodyClass(int(n)); size > 0 {
			charge = int64(size)
		}
	}
	if s.opt.budget != nil && !s.opt.budget.reserve(charge-s.reserved) {
		return false
	}
	var b []byte
	if s.opt.recycle {
		b = getBody(int(n))
	} else {
		b = make([]byte, 0, n)
	}
	b = append(b, s.mem...)
	if s.opt.recycle && s.mem != nil {
		putBody(s.mem)
	}
	s.mem, s.reserved = b, charge
	return true
}

// toDisk writes b to the spool file, moving what memory holds there first.
func (s *spool) toDisk(b []byte) error {
	if s.file == nil {
		f, err := createSpoolFile(s.opt.tempDir)
		if err != nil {
			return err
		}
		s.file = f
		if err := s.writeFile(s.mem); err != nil {
			return err
		}
		s.dropMem()
	}
	return s.writeFile(b)
}

func (s *spool) writeFile(b []byte) error {
	n, err := s.file.Write(b)
	s.disk += int64(n)
	if s.opt.onDisk != nil && n > 0 {
		s.opt.onDisk(int64(n))
	}
	return err
}

// ReadFrom fills the spool from r to EOF; the error is r's or the spool's.
func (s *spool) ReadFrom(r io.Reader) (int64, error) {
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	return io.CopyBuffer(struct{ io.Writer }{s}, r, *buf)
}

// copyBuffers are the 32 KiB buffers bodies are copied through.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// Size is the body length.
func (s *spool) Size() int64 { return s.size }

// Digests are the exact hashes of the body; call it once the body is
// complete.
func (s *spool) Digests() hashing.Digests {
	if !s.summed && s.dg != nil {
		s.digests, s.summed, s.dg = s.dg.Sum(), true, nil
	}
	return s.digests
}

// takeDigester hands over the running digester, to go on hashing a body
// that outgrew the spool and is streamed.
func (s *spool) takeDigester() *hashing.Digester {
	dg := s.dg
	s.dg = nil
	return dg
}

// OnDisk reports whether the body spilled to a temp file.
func (s *spool) OnDisk() bool { return s.file != nil }

// Bytes returns the body if it is in memory (nil otherwise).
func (s *spool) Bytes() []byte {
	if s.file != nil {
		return nil
	}
	return s.mem
}

// Reader returns a fresh reader over the whole body from the start.
func (s *spool) Reader() io.ReadSeeker {
	if s.file != nil {
		return io.NewSectionReader(s.file, 0, s.size)
	}
	return newMemBody(s.mem)
}

// Head returns up to n bytes from the start of the body.
func (s *spool) Head(n int) []byte {
	b := make([]byte, min(int64(n), s.size))
	k, _ := io.ReadFull(s.Reader(), b)
	return b[:k]
}

// Close releases the memory, the budget and the temp file. Safe to call
// twice.
func (s *spool) Close() error {
	if s == nil {
		return nil
	}
	if s.dg != nil {
		s.dg.Close()
		s.dg = nil
	}
	s.dropMem()
	if s.file == nil {
		return nil
	}
	name := s.file.Name()
	s.file.Close()
	s.file = nil
	if s.opt.onDisk != nil && s.disk != 0 {
		s.opt.onDisk(-s.disk)
	}
	s.disk = 0
	return os.Remove(name)
}

// dropMem gives the memory buffer and its charge back.
func (s *spool) dropMem() {
	if s.opt.recycle && s.mem != nil {
		putBody(s.mem)
	}
	s.mem = nil
	if s.reserved > 0 && s.opt.budget != nil {
		s.opt.budget.release(s.reserved)
	}
	s.reserved = 0
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
