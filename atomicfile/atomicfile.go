// Package atomicfile replaces a file's content all at once and durably: a
// reader (a bank reload, a restart) sees the old content or the new, never
// a truncated or half-written file, and once Write returns the new content
// survives a crash or a power failure.
//
// The recipe is the one POSIX allows: write a temporary file in the same
// directory, fsync it, rename it over the target (rename(2) is atomic
// within a file system) and fsync the directory so that the rename itself
// is on disk. It is for files mediaguard owns and rewrites whole: the
// banks it learns, their checkpoints.
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// TempPrefix starts the name of every temporary file Write creates. The
// leading dot and the .tmp suffix keep a bank directory's loader from
// reading a half-written file (matcher skips both).
const TempPrefix = ".mediaguard-"

// Write replaces path's content with what write produces, created with
// mode perm (the umask does not apply) when path does not exist and
// keeping the existing file's mode otherwise. Nothing at path changes unless write
// and every step after it succeed; on failure the temporary file is
// removed. write receives a buffered writer; it need not flush it.
func Write(path string, perm os.FileMode, write func(io.Writer) error) (err error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return fmt.Errorf("atomicfile: %s is not a regular file", path)
		}
		perm = st.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, TempPrefix+base+"-*.tmp")
	if err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600; the target's mode is set before
	// any byte is written, so the content is never more exposed than it
	// will be.
	if err := f.Chmod(perm); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	if err := write(bw); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: writing %s: %w", tmp, err)
	}
	// Without this fsync the rename may reach the disk before the data:
	// after a crash the file would exist, empty or with holes.
	if err := f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: syncing %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	// The rename is an entry in the directory: until the directory is
	// synced a crash may bring back the old content.
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("atomicfile: syncing the directory of %s: %w", path, err)
	}
	return nil
}

// WriteBytes is Write with the content at hand.
func WriteBytes(path string, perm os.FileMode, data []byte) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		// Some file systems (and platforms) cannot sync a directory;
		// ErrInvalid is how Go reports that, and there is nothing
		// better to do than trust the rename.
		return err
	}
	return nil
}

// Rename moves from over to (both in one directory) and makes the rename
// durable: for a file built whole beside the one in use over many writes
// (a bank synced anew), which replaces it only once complete.
func Rename(from, to string) error {
	if err := os.Rename(from, to); err != nil {
		return fmt.Errorf("atomicfile: %w", err)
	}
	if err := syncDir(filepath.Dir(to)); err != nil {
		return fmt.Errorf("atomicfile: syncing the directory of %s: %w", to, err)
	}
	return nil
}
