package audit

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Read calls fn for every record with Time >= since (a zero since means
// all), oldest file first (path.N ... path.1, then path), in file order.
// Torn and invalid lines are skipped: a reader may race a writer or read a
// file whose crash Open has not yet repaired. Any path.N is read, not just
// up to Keep, so files left by a larger earlier Keep are not hidden. A
// rotation during Read can make it miss or repeat a file's records. An
// error from fn stops Read and is returned.
func Read(path string, since time.Time, fn func(Record) error) error {
	files, err := logFiles(path)
	if err != nil {
		return err
	}
	for _, name := range files {
		if err := readFile(name, since, fn); err != nil {
			return err
		}
	}
	return nil
}

// logFiles lists path's rotated files, highest (oldest) number first, then
// path itself.
func logFiles(path string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Dir(path))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // nothing logged yet: no records, not an error
	}
	if err != nil {
		return nil, err
	}
	base := filepath.Base(path) + "."
	var nums []int
	for _, e := range entries {
		suffix, ok := strings.CutPrefix(e.Name(), base)
		if !ok {
			continue
		}
		if n, err := strconv.Atoi(suffix); err == nil && n > 0 && strconv.Itoa(n) == suffix {
			nums = append(nums, n)
		}
	}
	sort.Sort(sort.Reverse(sort.IntSlice(nums)))
	files := make([]string, 0, len(nums)+1)
	for _, n := range nums {
		files = append(files, path+"."+strconv.Itoa(n))
	}
	return append(files, path), nil
}

func readFile(name string, since time.Time, fn func(Record) error) error {
	f, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil // rotated away or never created
	}
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 64<<10)
	for {
		line, err := br.ReadBytes('\n')
		if n := len(line); n > 0 && line[n-1] == '\n' {
			var r Record
			if json.Unmarshal(line[:n-1], &r) == nil && !r.Time.Before(since) {
				if err := fn(r); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// Pending returns, in log order, the block, late_block, retro_block,
// would_block and review detections that have no later notify action with outcome
// ok referring to them; the
// notifier redelivers these after a restart. Detections rotated out of the
// kept files are not returned.
func Pending(path string) ([]Record, error) {
	var order []Record
	open := map[string]bool{}
	err := Read(path, time.Time{}, func(r Record) error {
		switch {
		case r.Kind == KindBlock || r.Kind == KindLateBlock || r.Kind == KindRetroBlock || r.Kind == KindWouldBlock || r.Kind == KindReview:
			if _, seen := open[r.ID]; !seen {
				open[r.ID] = true
				order = append(order, r)
			}
		case r.Kind == KindAction && r.Action == ActionNotify && r.Outcome == OutcomeOK:
			if _, seen := open[r.Ref]; seen {
				open[r.Ref] = false
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, r := range order {
		if open[r.ID] {
			out = append(out, r)
		}
	}
	return out, nil
}
