package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Defaults for Options.
const (
	// DefaultMaxBytes is the rotation size; it also bounds how much Open
	// must scan for a torn line.
	DefaultMaxBytes = 64 << 20
	// DefaultKeep is the number of rotated files kept.
	DefaultKeep = 5
)

// The modes Open creates the log's directory and files with: the log
// names users and media involved in abuse reports.
const (
	dirMode  = 0o700
	fileMode = 0o600
)

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("audit: log closed")

// Options configures Open.
type Options struct {
	// Path is the live log file; rotated files are Path.1 ... Path.Keep.
	Path string
	// MaxBytes is the size at which the live file is rotated; 0 means
	// DefaultMaxBytes.
	MaxBytes int64
	// Keep is how many rotated files survive; 0 means DefaultKeep.
	Keep int
	// Now supplies record times; nil means time.Now. Tests pin it.
	Now func() time.Time
}

// Recovery describes what Open found in an existing live file, so the
// caller can log that a crash cut a write short.
type Recovery struct {
	// Records is how many valid records the live file held.
	Records int
	// Invalid is how many complete but unparsable lines were left in
	// place; history is never rewritten, Read skips them.
	Invalid int
	// TornBytes is how many trailing bytes were truncated: a last line
	// without newline, or a last line that is not valid JSON. Such a line
	// was never acknowledged, since Append returns only after the whole
	// line, newline included, is synced.
	TornBytes int64
}

// Log is an open audit log. It is safe for concurrent use.
type Log struct {
	opt Options
	rec Recovery

	mu      sync.Mutex
	cond    *sync.Cond // signals synced/err/syncing changes
	f       *os.File
	size    int64
	written uint64 // sequence number of the last line written
	synced  uint64 // sequence number of the last line known durable
	syncing bool   // a goroutine is in f.Sync without mu held
	err     error  // sticky: after a failed write or fsync nothing is trusted
	closed  bool
	syncs   uint64 // fsyncs issued, to observe group commit in tests

	// fsync is (*os.File).Sync; tests replace it to inject failures.
	fsync func(*os.File) error
}

// Open opens or creates the log at opt.Path. A missing directory is
// created 0700 and a missing file 0600, since the log names users and
// media involved in abuse reports. A torn last line is truncated (see
// Recovery) so new records start on a clean line.
func Open(opt Options) (*Log, error) {
	if opt.Path == "" {
		return nil, errors.New("audit: empty path")
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = DefaultMaxBytes
	}
	if opt.Keep <= 0 {
		opt.Keep = DefaultKeep
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	dir := filepath.Dir(opt.Path)
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	_, statErr := os.Stat(opt.Path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := os.OpenFile(opt.Path, os.O_RDWR|os.O_CREATE|os.O_APPEND, fileMode)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	l := &Log{opt: opt, f: f, fsync: (*os.File).Sync}
	l.cond = sync.NewCond(&l.mu)
	if l.rec, l.size, err = recoverFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("audit: recover %s: %w", opt.Path, err)
	}
	if created {
		// The file's directory entry must be durable too, or the first
		// synced record can vanish with it after a power loss.
		if err := syncDir(dir); err != nil {
			f.Close()
			return nil, fmt.Errorf("audit: %w", err)
		}
	}
	return l, nil
}

// recoverFile scans f, truncates a torn tail and returns the resulting size.
func recoverFile(f *os.File) (Recovery, int64, error) {
	var rec Recovery
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return rec, 0, err
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var off, goodEnd, lastStart int64
	lastValid := true
	for {
		line, err := br.ReadBytes('\n')
		if n := len(line); n > 0 && line[n-1] == '\n' {
			valid := validLine(line[:n-1])
			if valid {
				rec.Records++
			} else {
				rec.Invalid++
			}
			lastStart, lastValid = off, valid
			off += int64(n)
			goodEnd = off
		} else {
			off += int64(n)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return rec, 0, err
		}
	}
	end := goodEnd
	if !lastValid {
		// A crash can leave a full-length line of garbage (e.g. zeros
		// from an extended but unwritten block) that happens to end in a
		// newline; only the last line can be such a torn write.
		end = lastStart
		rec.Invalid--
	}
	rec.TornBytes = off - end
	if rec.TornBytes > 0 {
		if err := f.Truncate(end); err != nil {
			return rec, 0, err
		}
		if err := f.Sync(); err != nil {
			return rec, 0, err
		}
	}
	return rec, end, nil
}

func validLine(b []byte) bool {
	var r Record
	return len(bytes.TrimSpace(b)) > 0 && json.Unmarshal(b, &r) == nil
}

// Recovery reports what Open found in the existing file.
func (l *Log) Recovery() Recovery { return l.rec }

// Path is the live log file, as Read and Pending take it.
func (l *Log) Path() string { return l.opt.Path }

// Append writes r as one JSON line and returns only after it is fsynced,
// so a caller may answer a request knowing the decision is on disk. It
// sets Time and ID when they are empty and strips Endpoint's query string.
// Concurrent Appends share an fsync (group commit). After a failed write
// or fsync every later Append fails too: the kernel may have dropped the
// dirty pages, so retrying the fsync would falsely report success.
func (l *Log) Append(r Record) error {
	if r.Kind == "" {
		return errors.New("audit: record without kind")
	}
	if r.Time.IsZero() {
		r.Time = l.opt.Now()
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	r.Endpoint = stripQuery(r.Endpoint)
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("audit: encode: %w", err)
	}
	line = append(line, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.err != nil {
		return l.err
	}
	if l.size > 0 && l.size+int64(len(line)) > l.opt.MaxBytes {
		if err := l.rotate(); err != nil {
			l.fail(err)
			return l.err
		}
	}
	// One write call per line: O_APPEND keeps lines whole with respect to
	// each other and a crash can tear at most the last one.
	n, err := l.f.Write(line)
	l.size += int64(n)
	if err != nil {
		l.fail(err)
		return l.err
	}
	l.written++
	seq := l.written
	for l.synced < seq && l.err == nil {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		// Become the syncer for everything written so far; writers that
		// arrive meanwhile queue up for the next fsync.
		l.syncing = true
		target, f := l.written, l.f
		l.syncs++
		l.mu.Unlock()
		err := l.fsync(f)
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			l.fail(err)
		} else if target > l.synced {
			l.synced = target
		}
		l.cond.Broadcast()
	}
	return l.err
}

// fail records a sticky error; mu must be held.
func (l *Log) fail(err error) {
	if l.err == nil {
		l.err = fmt.Errorf("audit: %s: %w", l.opt.Path, err)
	}
	l.cond.Broadcast()
}

// quiesce waits until no fsync runs outside mu and makes everything
// written durable; mu must be held.
func (l *Log) quiesce() error {
	for l.syncing {
		l.cond.Wait()
	}
	if l.synced == l.written {
		return nil
	}
	l.syncs++
	if err := l.fsync(l.f); err != nil {
		return err
	}
	l.synced = l.written
	l.cond.Broadcast()
	return nil
}

// rotate shifts path.i to path.i+1 (dropping path.Keep) and path to
// path.1, then starts a fresh live file; mu must be held.
func (l *Log) rotate() error {
	if err := l.quiesce(); err != nil {
		return err
	}
	if err := l.f.Close(); err != nil {
		return err
	}
	p := l.opt.Path
	for i := l.opt.Keep - 1; i >= 1; i-- {
		err := os.Rename(p+"."+strconv.Itoa(i), p+"."+strconv.Itoa(i+1))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	if err := os.Rename(p, p+".1"); err != nil {
		return err
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_APPEND|os.O_EXCL, fileMode)
	if err != nil {
		return err
	}
	l.f, l.size = f, 0
	// Without this the renames may be lost on power failure and the new
	// file's records with them.
	return syncDir(filepath.Dir(p))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Close syncs and closes the log. Appends after Close return ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	err := l.err
	if err == nil {
		err = l.quiesce()
	}
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
