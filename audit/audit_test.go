package audit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func openT(t testing.TB, opt Options) *Log {
	t.Helper()
	l, err := Open(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func readAll(t testing.TB, path string, since time.Time) []Record {
	t.Helper()
	var out []Record
	if err := Read(path, since, func(r Record) error { out = append(out, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAppendReadBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openT(t, Options{Path: path})
	want := Record{
		Time:      time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		ID:        "d1",
		Kind:      KindBlock,
		Direction: "upload",
		Endpoint:  "/_matrix/media/v3/upload?access_token=SECRET",
		User:      "@a:example.org",
		Media:     "example.org/abc",
		Digests:   map[string]string{"sha256": "00ff", "pdq": "abcd"},
		Verdict:   json.RawMessage(`{"bank":"x","distance":3}`),
	}
	if err := l.Append(want); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(Record{Kind: KindUnscannable}); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(Record{}); err == nil {
		t.Fatal("record without kind accepted")
	}
	got := readAll(t, path, time.Time{})
	if len(got) != 2 {
		t.Fatalf("got %d records, want 2", len(got))
	}
	want.Endpoint = "/_matrix/media/v3/upload"
	a, _ := json.Marshal(got[0])
	b, _ := json.Marshal(want)
	if !bytes.Equal(a, b) {
		t.Errorf("round trip:\n got %s\nwant %s", a, b)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte("SECRET")) {
		t.Error("query string token reached the disk")
	}
	if got[1].ID == "" || got[1].Time.IsZero() {
		t.Errorf("ID/Time not assigned: %+v", got[1])
	}
}

func TestSinceFilter(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := openT(t, Options{Path: path})
	for i := range 5 {
		if err := l.Append(Record{Kind: KindBlock, Time: base.Add(time.Duration(i) * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		since time.Time
		want  int
	}{
		{"zero", time.Time{}, 5},
		{"first", base, 5},
		{"inclusive", base.Add(2 * time.Hour), 3},
		{"between", base.Add(150 * time.Minute), 2},
		{"future", base.Add(24 * time.Hour), 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := len(readAll(t, path, tc.since)); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

func TestConcurrentAppends(t *testing.T) {
	const workers, each = 8, 200
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openT(t, Options{Path: path})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("w%d-%d", w, i)
				if err := l.Append(Record{ID: id, Kind: KindUnscanned}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d appends, %d fsyncs", workers*each, l.syncs)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	if len(lines) != workers*each {
		t.Fatalf("%d lines, want %d", len(lines), workers*each)
	}
	seen := map[string]int{}
	for i, ln := range lines {
		var r Record
		if err := json.Unmarshal([]byte(ln), &r); err != nil {
			t.Fatalf("line %d invalid: %v: %q", i, err, ln)
		}
		seen[r.ID]++
	}
	for w := range workers {
		for i := range each {
			if id := fmt.Sprintf("w%d-%d", w, i); seen[id] != 1 {
				t.Errorf("%s present %d times", id, seen[id])
			}
		}
	}
}

// TestGroupCommit holds the first fsync open while more Appends arrive and
// checks they all ride on one further fsync, none returning before it.
func TestGroupCommit(t *testing.T) {
	const waiters = 5
	l := openT(t, Options{Path: filepath.Join(t.TempDir(), "audit.log")})
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	l.fsync = func(f *os.File) error {
		select {
		case entered <- struct{}{}:
			<-release // only the first fsync blocks
		default:
		}
		return f.Sync()
	}
	errs := make(chan error, waiters+1)
	go func() { errs <- l.Append(Record{Kind: KindBlock}) }()
	<-entered
	for range waiters {
		go func() { errs <- l.Append(Record{Kind: KindBlock}) }()
	}
	for {
		l.mu.Lock()
		w := l.written
		l.mu.Unlock()
		if w == waiters+1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case err := <-errs:
		t.Fatalf("an Append returned (%v) before its fsync", err)
	default:
	}
	close(release)
	for range waiters + 1 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if l.syncs != 2 {
		t.Errorf("%d fsyncs for %d appends, want 2", l.syncs, waiters+1)
	}
}

// TestSyncFailureSticky checks that after a failed fsync no Append reports
// success, since the lost pages cannot be rewritten by retrying.
func TestSyncFailureSticky(t *testing.T) {
	l := openT(t, Options{Path: filepath.Join(t.TempDir(), "audit.log")})
	boom := errors.New("EIO")
	l.fsync = func(*os.File) error { return boom }
	if err := l.Append(Record{Kind: KindBlock}); !errors.Is(err, boom) {
		t.Fatalf("append with failing fsync: %v", err)
	}
	l.fsync = (*os.File).Sync
	if err := l.Append(Record{Kind: KindBlock}); !errors.Is(err, boom) {
		t.Fatalf("append after failed fsync: %v", err)
	}
}

func TestTornLastLine(t *testing.T) {
	for _, tc := range []struct {
		name    string
		garbage string
	}{
		{"partial record", `{"time":"2026-01-01T00:00:00Z","id":"torn","ki`},
		{"zeros", "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"invalid line with newline", "{not json\n"},
		{"valid json without newline", `{"time":"2026-01-01T00:00:00Z","id":"unacked","kind":"block"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l := openT(t, Options{Path: path})
			if err := l.Append(Record{ID: "good", Kind: KindBlock}); err != nil {
				t.Fatal(err)
			}
			l.Close()
			f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString(tc.garbage)
			f.Close()

			l = openT(t, Options{Path: path})
			rec := l.Recovery()
			if rec.TornBytes != int64(len(tc.garbage)) || rec.Records != 1 || rec.Invalid != 0 {
				t.Errorf("recovery = %+v, want 1 record, %d torn bytes", rec, len(tc.garbage))
			}
			if err := l.Append(Record{ID: "new", Kind: KindAction}); err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range readAll(t, path, time.Time{}) {
				ids = append(ids, r.ID)
			}
			if strings.Join(ids, ",") != "good,new" {
				t.Errorf("records = %v, want [good new]", ids)
			}
			raw, _ := os.ReadFile(path)
			for i, ln := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
				if !json.Valid([]byte(ln)) {
					t.Errorf("line %d invalid after recovery: %q", i, ln)
				}
			}
		})
	}
}

// TestReadSkipsTornLines covers readers that see a crashed file before any
// Open has repaired it, and invalid lines in the middle that Open keeps.
func TestReadSkipsTornLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	data := `{"time":"2026-01-01T00:00:00Z","id":"a","kind":"block"}` + "\n" +
		"garbage\n" +
		`{"time":"2026-01-01T00:00:01Z","id":"b","kind":"block"}` + "\n" +
		`{"time":"2026-01-01T00:00:02Z","id":"c","ki`
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, path, time.Time{}); len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Errorf("got %+v", got)
	}
	l := openT(t, Options{Path: path})
	if rec := l.Recovery(); rec.Records != 2 || rec.Invalid != 1 || rec.TornBytes == 0 {
		t.Errorf("recovery = %+v", rec)
	}
}

const helperEnv = "MEDIAGUARD_AUDIT_HELPER_PATH"

// TestHelperProcess is the child of TestCrashKill, not a test by itself.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	l, err := Open(Options{Path: path})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	id := NewID()
	if err := l.Append(Record{ID: id, Kind: KindBlock, User: "@u:example.org"}); err != nil {
		fmt.Println("ERR", err)
		os.Exit(2)
	}
	// This line stands in for the blocking response: it is only sent once
	// Append has returned.
	fmt.Println("SYNCED", id)
	// Keep writing so the kill is likely to land mid-write.
	verdict := json.RawMessage(`{"pad":"` + strings.Repeat("x", 4000) + `"}`)
	for {
		l.Append(Record{Kind: KindUnscanned, Verdict: verdict})
	}
}

func TestCrashKill(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("reading child: %v (got %q)", err, line)
	}
	id, ok := strings.CutPrefix(strings.TrimSpace(line), "SYNCED ")
	if !ok {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("child said %q", line)
	}
	time.Sleep(20 * time.Millisecond)
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	cmd.Wait()

	l := openT(t, Options{Path: path})
	t.Logf("recovery after kill: %+v", l.Recovery())
	if err := l.Append(Record{ID: "after", Kind: KindAction}); err != nil {
		t.Fatal(err)
	}
	var found, after bool
	for _, r := range readAll(t, path, time.Time{}) {
		found = found || (r.ID == id && r.Kind == KindBlock && r.User == "@u:example.org")
		after = after || r.ID == "after"
	}
	if !found || !after {
		t.Errorf("synced record found=%v, post-crash record found=%v", found, after)
	}
	raw, _ := os.ReadFile(path)
	for i, ln := range strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n") {
		if !json.Valid([]byte(ln)) {
			t.Fatalf("line %d invalid after crash recovery", i)
		}
	}
}

func TestRotation(t *testing.T) {
	const maxBytes, keep, n = 1000, 2, 60
	path := filepath.Join(t.TempDir(), "audit.log")
	l := openT(t, Options{Path: path, MaxBytes: maxBytes, Keep: keep})
	for i := range n {
		if err := l.Append(Record{ID: strconv.Itoa(i), Kind: KindBlock}); err != nil {
			t.Fatal(err)
		}
	}
	for i, name := range []string{path, path + ".1", path + ".2"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatalf("file %d: %v", i, err)
		}
		if fi.Size() > maxBytes {
			t.Errorf("%s is %d bytes > MaxBytes", name, fi.Size())
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s mode %v", name, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(path + ".3"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("path.3 exists beyond Keep: %v", err)
	}
	got := readAll(t, path, time.Time{})
	if len(got) == 0 || len(got) >= n {
		t.Fatalf("read %d records; want a rotated-away prefix missing", len(got))
	}
	first, _ := strconv.Atoi(got[0].ID)
	for i, r := range got {
		if r.ID != strconv.Itoa(first+i) {
			t.Fatalf("record %d has ID %s, want %d: files out of order", i, r.ID, first+i)
		}
	}
	if got[len(got)-1].ID != strconv.Itoa(n-1) {
		t.Errorf("last record %s, want %d", got[len(got)-1].ID, n-1)
	}
}

func TestPending(t *testing.T) {
	notify := func(ref, outcome string) Record {
		return Record{Kind: KindAction, Action: ActionNotify, Outcome: outcome, Ref: ref}
	}
	for _, tc := range []struct {
		name string
		recs []Record
		want []string
	}{
		{"block notified", []Record{{ID: "a", Kind: KindBlock}, notify("a", OutcomeOK)}, nil},
		{"block not notified", []Record{{ID: "a", Kind: KindBlock}}, []string{"a"}},
		{"late block", []Record{{ID: "a", Kind: KindLateBlock}}, []string{"a"}},
		{"notify failed", []Record{{ID: "a", Kind: KindBlock}, notify("a", "failed: timeout")}, []string{"a"}},
		{"other action ok", []Record{{ID: "a", Kind: KindBlock}, {Kind: KindAction, Action: "quarantine", Outcome: OutcomeOK, Ref: "a"}}, []string{"a"}},
		{"notify before block", []Record{notify("a", OutcomeOK), {ID: "a", Kind: KindBlock}}, []string{"a"}},
		{"not a detection", []Record{{ID: "a", Kind: KindUnscannable}, {ID: "b", Kind: KindRefused}}, nil},
		{"order kept", []Record{{ID: "a", Kind: KindBlock}, {ID: "b", Kind: KindBlock}, {ID: "c", Kind: KindBlock}, notify("b", OutcomeOK)}, []string{"a", "c"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l := openT(t, Options{Path: path})
			for _, r := range tc.recs {
				if err := l.Append(r); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Pending(path)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, r := range got {
				ids = append(ids, r.ID)
			}
			if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
				t.Errorf("pending = %v, want %v", ids, tc.want)
			}
		})
	}
}

func TestFileModes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "dir")
	path := filepath.Join(dir, "audit.log")
	l := openT(t, Options{Path: path})
	if err := l.Append(Record{Kind: KindBlock}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		want os.FileMode
	}{{path, 0o600}, {dir, 0o700}} {
		fi, err := os.Stat(tc.name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != tc.want {
			t.Errorf("%s mode %v, want %v", tc.name, fi.Mode().Perm(), tc.want)
		}
	}
}

func TestReadMissing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nodir", "audit.log")
	if got := readAll(t, path, time.Time{}); len(got) != 0 {
		t.Errorf("got %d records from a missing log", len(got))
	}
	if p, err := Pending(path); err != nil || len(p) != 0 {
		t.Errorf("Pending on missing log = %v, %v", p, err)
	}
}

func TestClosed(t *testing.T) {
	l := openT(t, Options{Path: filepath.Join(t.TempDir(), "audit.log")})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(Record{Kind: KindBlock}); !errors.Is(err, ErrClosed) {
		t.Errorf("append after close: %v", err)
	}
}

func BenchmarkAppend(b *testing.B) {
	l := openT(b, Options{Path: filepath.Join(b.TempDir(), "audit.log")})
	r := Record{Kind: KindBlock, User: "@u:example.org", Media: "example.org/abc", Digests: map[string]string{"sha256": strings.Repeat("0", 64)}}
	for b.Loop() {
		if err := l.Append(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendParallel(b *testing.B) {
	l := openT(b, Options{Path: filepath.Join(b.TempDir(), "audit.log")})
	r := Record{Kind: KindBlock, User: "@u:example.org", Media: "example.org/abc", Digests: map[string]string{"sha256": strings.Repeat("0", 64)}}
	b.SetParallelism(8) // many requests in flight, as in the proxy
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := l.Append(r); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
