package ledger

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := pgtest.Run(m)
	removeRetroFixtures()
	os.Exit(code)
}

// storeKind opens a fresh store of one kind; reopen closes s and opens
// the same ledger again.
type storeKind struct {
	name string
	open func(t *testing.T) (s Store, reopen func(t *testing.T, s Store) Store)
}

var storeKinds = []storeKind{
	{"bolt", func(t *testing.T) (Store, func(*testing.T, Store) Store) {
		path := filepath.Join(t.TempDir(), "ledger", "media.ledger")
		open := func(t *testing.T) Store {
			s, err := Open(context.Background(), Spec{Path: path})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(t), func(t *testing.T, s Store) Store { s.Close(); return open(t) }
	}},
	{"postgres", func(t *testing.T) (Store, func(*testing.T, Store) Store) {
		dsn := pgtest.Start(t)
		open := func(t *testing.T) Store {
			s, err := Open(context.Background(), Spec{DSN: dsn, Postgres: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
		return open(t), func(t *testing.T, s Store) Store { s.Close(); return open(t) }
	}},
}

// TestStoreConformance runs every check of the Store contract against
// both stores.
func TestStoreConformance(t *testing.T) {
	ctx := context.Background()
	checks := []struct {
		name string
		run  func(t *testing.T, s Store, reopen func(*testing.T, Store) Store)
	}{
		{"get and put", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			want := fullRecord()
			if _, ok, err := s.Get(ctx, want.Key); ok || err != nil {
				t.Fatalf("Get before Put = %v, %v", ok, err)
			}
			mustPut(t, s, want)
			mustGet(t, s, want)
			other := sampleRecord(8, 3)
			other.Key.Server = "other.example"
			other.Banks = ""
			mustPut(t, s, other)
			mustGet(t, s, other)
			mustGet(t, s, want)
			if _, ok, err := s.Get(ctx, Key{Server: "unknown.example", ID: want.Key.ID}); ok || err != nil {
				t.Errorf("Get of an unknown server = %v, %v", ok, err)
			}
		}},
		{"invalid records are refused", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			for name, edit := range map[string]func(*Record){
				"no verdict":  func(r *Record) { r.Verdict = 0 },
				"bad verdict": func(r *Record) { r.Verdict = Undecodable + 1 },
				"no server":   func(r *Record) { r.Key.Server = "" },
				"no id":       func(r *Record) { r.Key.ID = "" },
			} {
				r := sampleRecord(1, 0)
				edit(&r)
				if err := s.Put(ctx, r); err == nil {
					t.Errorf("%s: Put accepted it", name)
				}
			}
		}},
		{"upsert keeps the older first seen", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			r := sampleRecord(2, 1)
			mustPut(t, s, r)
			later := sampleRecord(2, 2)
			later.FirstSeen = r.FirstSeen.Add(time.Hour)
			later.LastSeen = r.LastSeen.Add(5 * time.Hour)
			later.Verdict, later.Reason = Blocked, "listed"
			mustPut(t, s, later)
			want := later
			want.FirstSeen = r.FirstSeen
			mustGet(t, s, want)
			earlier := later
			earlier.FirstSeen = r.FirstSeen.Add(-time.Hour)
			mustPut(t, s, earlier)
			mustGet(t, s, earlier)
			unknown := later
			unknown.FirstSeen = time.Time{}
			mustPut(t, s, unknown)
			mustGet(t, s, earlier)
		}},
		{"set verdict", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			r := sampleRecord(3, 2)
			mustPut(t, s, r)
			ok, err := s.SetVerdict(ctx, r.Key, Blocked, "retro-scan: listed in bank b", "sha256:new")
			if !ok || err != nil {
				t.Fatalf("SetVerdict = %v, %v", ok, err)
			}
			r.Verdict, r.Reason, r.Banks = Blocked, "retro-scan: listed in bank b", "sha256:new"
			mustGet(t, s, r)
			if ok, err := s.SetVerdict(ctx, r.Key, Clean, "", ""); !ok || err != nil {
				t.Fatalf("SetVerdict = %v, %v", ok, err)
			}
			r.Verdict, r.Reason, r.Banks = Clean, "", ""
			mustGet(t, s, r)
			for _, k := range []Key{{r.Key.Server, "absent"}, {"absent.example", r.Key.ID}} {
				if ok, err := s.SetVerdict(ctx, k, Blocked, "x", ""); ok || err != nil {
					t.Errorf("SetVerdict(%s) = %v, %v", k, ok, err)
				}
			}
			if _, err := s.SetVerdict(ctx, r.Key, 0, "", ""); err == nil {
				t.Error("SetVerdict accepted an invalid verdict")
			}
		}},
		{"scan visits every record once", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			if err := s.Scan(ctx, 4, func(*Record) error { return errors.New("called") }); err != nil {
				t.Fatalf("Scan of an empty ledger: %v", err)
			}
			want := map[Key]Record{}
			for i := range 3*scanChunk + 7 {
				r := sampleRecord(i, i%3)
				if i%5 == 0 {
					r.Key.Server = "other.example"
				}
				want[r.Key] = r
			}
			putAll(t, s, want)
			for _, parts := range []int{1, 4, 0} {
				var mu sync.Mutex
				seen := map[Key]int{}
				err := s.Scan(ctx, parts, func(r *Record) error {
					mu.Lock()
					defer mu.Unlock()
					seen[r.Key]++
					if w, ok := want[r.Key]; !ok || !sameRecord(*r, w) {
						t.Errorf("parts %d: scanned %s differs", parts, r.Key)
					}
					return nil
				})
				if err != nil {
					t.Fatalf("parts %d: %v", parts, err)
				}
				if len(seen) != len(want) {
					t.Errorf("parts %d: saw %d records, want %d", parts, len(seen), len(want))
				}
				for k, n := range seen {
					if n != 1 {
						t.Errorf("parts %d: %s seen %d times", parts, k, n)
					}
				}
			}
			stop := errors.New("stop")
			if err := s.Scan(ctx, 4, func(*Record) error { return stop }); err != stop {
				t.Errorf("Scan returned %v, want fn's error", err)
			}
		}},
		{"prune", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			all := map[Key]Record{}
			for i := range 40 {
				r := sampleRecord(i, 0)
				r.LastSeen = sampleTime.Add(time.Duration(i) * time.Hour)
				r.FirstSeen = r.LastSeen.Add(-time.Minute)
				all[r.Key] = r
			}
			putAll(t, s, all)
			n, err := s.Prune(ctx, sampleTime.Add(10*time.Hour))
			if n != 10 || err != nil {
				t.Fatalf("Prune = %d, %v; want 10", n, err)
			}
			for k, r := range all {
				_, ok, err := s.Get(ctx, k)
				if err != nil || ok != !r.LastSeen.Before(sampleTime.Add(10*time.Hour)) {
					t.Errorf("%s last seen %s: Get after Prune = %v, %v", k, r.LastSeen, ok, err)
				}
			}
			if l, err := s.Len(ctx); l != 30 || err != nil {
				t.Errorf("Len = %d, %v; want 30", l, err)
			}
		}},
		{"meta", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			if _, ok, err := s.Meta(ctx, "retro.banks"); ok || err != nil {
				t.Fatalf("Meta before SetMeta = %v, %v", ok, err)
			}
			for _, v := range []string{"sha256:1", "", "sha256:2"} {
				if err := s.SetMeta(ctx, "retro.banks", v); err != nil {
					t.Fatal(err)
				}
				if got, ok, err := s.Meta(ctx, "retro.banks"); got != v || !ok || err != nil {
					t.Errorf("Meta = %q, %v, %v; want %q", got, ok, err, v)
				}
			}
			if err := s.SetMeta(ctx, "", "x"); err == nil {
				t.Error("SetMeta accepted an empty name")
			}
		}},
		{"try lock", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			release, ok, err := s.TryLock(ctx, "retro-scan")
			if !ok || err != nil {
				t.Fatalf("TryLock = %v, %v", ok, err)
			}
			if _, ok, err := s.TryLock(ctx, "retro-scan"); ok || err != nil {
				t.Fatalf("second TryLock = %v, %v; want held", ok, err)
			}
			other, ok, err := s.TryLock(ctx, "backfill")
			if !ok || err != nil {
				t.Fatalf("TryLock of another name = %v, %v", ok, err)
			}
			other()
			release()
			release()
			again, ok, err := s.TryLock(ctx, "retro-scan")
			if !ok || err != nil {
				t.Fatalf("TryLock after release = %v, %v", ok, err)
			}
			again()
		}},
		{"concurrent puts", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			const writers, each = 16, 25
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						r := sampleRecord(w*each+i, i%2)
						r.Key.Server = fmt.Sprintf("s%d.example", i%3)
						r.Banks = fmt.Sprintf("sha256:%d", w%4)
						if err := s.Put(ctx, r); err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if n, err := s.Len(ctx); n != writers*each || err != nil {
				t.Errorf("Len = %d, %v; want %d", n, err, writers*each)
			}
			r := sampleRecord(3*each+4, 0)
			r.Key.Server, r.Banks = "s1.example", "sha256:3"
			mustGet(t, s, r)
		}},
		{"reopen keeps data", func(t *testing.T, s Store, reopen func(*testing.T, Store) Store) {
			r := fullRecord()
			mustPut(t, s, r)
			if err := s.SetMeta(ctx, "m", "v"); err != nil {
				t.Fatal(err)
			}
			s = reopen(t, s)
			mustGet(t, s, r)
			if v, ok, err := s.Meta(ctx, "m"); v != "v" || !ok || err != nil {
				t.Errorf("Meta after reopen = %q, %v, %v", v, ok, err)
			}
			// A new string after reopen gets a new id, not an old one.
			n := sampleRecord(9, 0)
			n.Key.Server, n.Banks = "new.example", "sha256:new"
			mustPut(t, s, n)
			mustGet(t, s, n)
			mustGet(t, s, r)
		}},
		{"closed", func(t *testing.T, s Store, _ func(*testing.T, Store) Store) {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Get(ctx, Key{"a", "b"}); !errors.Is(err, ErrClosed) {
				t.Errorf("Get after Close: %v", err)
			}
			if err := s.Put(ctx, sampleRecord(1, 0)); !errors.Is(err, ErrClosed) {
				t.Errorf("Put after Close: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v", err)
			}
		}},
	}
	for _, kind := range storeKinds {
		t.Run(kind.name, func(t *testing.T) {
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					s, reopen := kind.open(t)
					c.run(t, s, reopen)
				})
			}
		})
	}
}

// TestPostgresLockExcludesOtherProcesses: a second store on the same
// database (another proxy) cannot take a held lock, and can once it is
// released or its holder's connection is gone.
func TestPostgresLockExcludesOtherProcesses(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.Start(t)
	a, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenPostgres(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	release, ok, err := a.TryLock(ctx, "retro-scan")
	if !ok || err != nil {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "retro-scan"); ok || err != nil {
		t.Fatalf("other store's TryLock = %v, %v; want held", ok, err)
	}
	release()
	rb, ok, err := b.TryLock(ctx, "retro-scan")
	if !ok || err != nil {
		t.Fatalf("other store's TryLock after release = %v, %v", ok, err)
	}
	// The holder dies: its connection ends and the server frees the lock.
	b.Close()
	rb()
	if _, ok, err := a.TryLock(ctx, "retro-scan"); !ok || err != nil {
		t.Fatalf("TryLock after the holder closed = %v, %v", ok, err)
	}
}

func TestBoltFile(t *testing.T) {
	old := BoltLockTimeout
	BoltLockTimeout = 200 * time.Millisecond
	defer func() { BoltLockTimeout = old }()
	path := filepath.Join(t.TempDir(), "media.ledger")
	s, err := OpenBolt(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %#o, want 0600", st.Mode().Perm())
	}
	// flock locks belong to an open file, so a second open in this
	// process meets the lock a second process would.
	if _, err := OpenBolt(path); err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second open: %v; want an error naming %s in use", err, path)
	}
	s.Close()

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBolt(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("open of a group-readable file: %v; want a refusal", err)
	}
	if err := os.WriteFile(filepath.Join(t.TempDir(), "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenBolt(t.TempDir()); err == nil {
		t.Error("opened a directory")
	}
}

func TestSplitKeys(t *testing.T) {
	cases := []struct {
		first, last string
		parts, want int
	}{
		{"\x01aaaa", "\x01zzzz", 4, 4},
		{"\x01aaaa", "\x01aaaa", 4, 1},
		{"\x01a", "\x01ab", 3, 3},
		{"\x01abc", "\x05", 8, 8},
		{"\x01abc", "\x01abd", 1, 1},
	}
	for _, c := range cases {
		b := splitKeys([]byte(c.first), []byte(c.last), c.parts)
		if len(b)-1 != c.want || b[0] != nil || b[len(b)-1] != nil {
			t.Errorf("splitKeys(%q, %q, %d) = %q, want %d ranges", c.first, c.last, c.parts, b, c.want)
		}
		for i := 1; i+1 < len(b)-1; i++ {
			if string(b[i]) >= string(b[i+1]) || string(b[i]) <= c.first {
				t.Errorf("splitKeys(%q, %q, %d) bounds not increasing: %q", c.first, c.last, c.parts, b)
			}
		}
	}
	if b := splitKeys(nil, nil, 4); b != nil {
		t.Errorf("no keys: %q", b)
	}
}

func TestParseSpec(t *testing.T) {
	cases := []struct {
		args    []string
		want    Spec
		wantErr string
	}{
		{[]string{"/var/lib/mediaguard/media.ledger"}, Spec{Path: "/var/lib/mediaguard/media.ledger"}, ""},
		{[]string{"postgres", "postgres://mg:secret@db/mediaguard"}, Spec{DSN: "postgres://mg:secret@db/mediaguard", Postgres: true}, ""},
		{[]string{"postgres", "host=db user=mg"}, Spec{DSN: "host=db user=mg", Postgres: true}, ""},
		{[]string{"postgres"}, Spec{}, "DSN"},
		{[]string{"postgres", ""}, Spec{}, "DSN"},
		{[]string{""}, Spec{}, "path is empty"},
		{nil, Spec{}, "takes a path"},
		{[]string{"a", "b"}, Spec{}, "takes a path"},
	}
	for _, c := range cases {
		got, err := ParseSpec(c.args)
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("ParseSpec(%q) error %v, want %q", c.args, err, c.wantErr)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseSpec(%q) = %+v, %v", c.args, got, err)
		}
		if strings.Contains(got.String(), "secret") {
			t.Errorf("Spec.String shows the DSN: %s", got)
		}
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		spec Spec
		want string
	}{
		{Spec{}, "path is empty"},
		{Spec{Postgres: true}, "DSN is empty"},
		{Spec{Path: "x", DSN: "host=y"}, "choose one"},
		{Spec{DSN: "postgres://mg:hunter2@db:notaport/x"}, "does not parse"},
	} {
		_, err := Open(ctx, c.spec)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Open(%s) = %v, want %q", c.spec, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error shows the password: %v", err)
		}
	}
}

func mustPut(t *testing.T, s Store, r Record) {
	t.Helper()
	if err := s.Put(context.Background(), r); err != nil {
		t.Fatal(err)
	}
}

func mustGet(t *testing.T, s Store, want Record) {
	t.Helper()
	got, ok, err := s.Get(context.Background(), want.Key)
	if err != nil || !ok {
		t.Fatalf("Get(%s) = %v, %v", want.Key, ok, err)
	}
	if !sameRecord(got, want) {
		t.Errorf("Get(%s):\n got %+v\nwant %+v", want.Key, got, want)
	}
}

// putAll writes rs from a few goroutines (the embedded store batches
// concurrent Puts; one at a time each would wait out the batch delay).
func putAll(t *testing.T, s Store, rs map[Key]Record) {
	t.Helper()
	ch := make(chan Record)
	var wg sync.WaitGroup
	var failed sync.Once
	for range 32 {
		wg.Go(func() {
			for r := range ch {
				if err := s.Put(context.Background(), r); err != nil {
					failed.Do(func() { t.Error(err) })
				}
			}
		})
	}
	for _, r := range rs {
		ch <- r
	}
	close(ch)
	wg.Wait()
}
