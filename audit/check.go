package audit

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// PathCheck is what CheckPath found where a log is to be kept.
type PathCheck struct {
	// Exists is whether the live file exists.
	Exists bool
	// Mode and Size are the live file's permission bits and size, when it
	// exists.
	Mode fs.FileMode
	Size int64
	// Dir is the live file's directory when it exists, else the nearest
	// existing ancestor, under which Open creates the rest (0700).
	Dir string
	// DirMode is Dir's permission bits.
	DirMode fs.FileMode
	// Warnings name permissions looser than those Open creates: the log
	// works, but others may read or replace it.
	Warnings []string
}

// CheckPath tells whether Open(path) would succeed, as far as can be
// seen without opening the log: the file (if it exists) must be a regular
// file this process can read and write, and its directory (or the nearest
// existing ancestor, when Open has directories to create) must take new
// files, since rotation renames the live file and creates another. It
// never writes the log nor repairs it (Open would truncate a torn last
// line, which a running mediaguard may be in the middle of writing); the
// directory is probed with an empty file created and removed at once.
func CheckPath(path string) (PathCheck, error) {
	var pc PathCheck
	if path == "" {
		return pc, errors.New("audit: empty path")
	}
	fi, err := os.Stat(path)
	switch {
	case err == nil:
		if !fi.Mode().IsRegular() {
			return pc, fmt.Errorf("audit: %s is not a regular file", path)
		}
		pc.Exists, pc.Mode, pc.Size = true, fi.Mode().Perm(), fi.Size()
		f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
		if err != nil {
			return pc, fmt.Errorf("audit: %w", err)
		}
		f.Close()
		if pc.Mode&0o077 != 0 {
			pc.Warnings = append(pc.Warnings, fmt.Sprintf("%s has mode %04o: other users may read it (Open creates %04o; chmod %o %s)", path, pc.Mode, fileMode, fileMode, path))
		}
		pc.Dir = filepath.Dir(path)
	case errors.Is(err, fs.ErrNotExist):
		// Open creates what is missing under the nearest existing
		// ancestor.
		pc.Dir = filepath.Dir(path)
		for {
			st, err := os.Stat(pc.Dir)
			if err == nil {
				if !st.IsDir() {
					return pc, fmt.Errorf("audit: %s is not a directory", pc.Dir)
				}
				break
			}
			if !errors.Is(err, fs.ErrNotExist) || filepath.Dir(pc.Dir) == pc.Dir {
				return pc, fmt.Errorf("audit: %w", err)
			}
			pc.Dir = filepath.Dir(pc.Dir)
		}
	default:
		return pc, fmt.Errorf("audit: %w", err)
	}
	st, err := os.Stat(pc.Dir)
	if err != nil {
		return pc, fmt.Errorf("audit: %w", err)
	}
	pc.DirMode = st.Mode().Perm()
	probe, err := os.CreateTemp(pc.Dir, ".mediaguard-audit-check-*")
	if err != nil {
		return pc, fmt.Errorf("audit: directory %s does not take new files (rotation needs it): %w", pc.Dir, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	if pc.Exists && pc.DirMode&0o022 != 0 && st.Mode()&fs.ModeSticky == 0 {
		pc.Warnings = append(pc.Warnings, fmt.Sprintf("directory %s has mode %04o: other users may replace the log (Open creates directories %04o)", pc.Dir, pc.DirMode, dirMode))
	}
	return pc, nil
}
