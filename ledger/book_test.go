package ledger

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/matcher"
)

// listMatcher matches the queries whose SHA-256 is listed: the banks as
// the Book's re-derivations see them.
type listMatcher struct {
	mu     sync.Mutex
	listed map[[32]byte]bool
	calls  atomic.Int64
}

func (m *listMatcher) Match(_ context.Context, q matcher.Query) (matcher.Verdict, error) {
	m.calls.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.listed[q.SHA256] {
		return matcher.Verdict{Match: true, Bank: "TEST", HashType: matcher.SHA256, Reason: "sha256 listed"}, nil
	}
	return matcher.Verdict{}, nil
}

func (m *listMatcher) list(d [32]byte, on bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.listed[d] = on
}

// matches is m as a retro-scan's question.
func (m *listMatcher) matches(q *matcher.Query) (matcher.Verdict, bool) {
	v, _ := m.Match(context.Background(), *q)
	return v, v.Match
}

func newBook(t *testing.T, s Store, fp *atomic.Pointer[string]) (*Book, *listMatcher) {
	m := &listMatcher{listed: map[[32]byte]bool{}}
	b := NewBook(BookConfig{Store: s, Matcher: m, Fingerprint: func() string { return *fp.Load() }})
	t.Cleanup(func() { b.Close() })
	return b, m
}

func TestBookRecall(t *testing.T) {
	for _, st := range storeKinds {
		t.Run(st.name, func(t *testing.T) {
			s, _ := st.open(t)
			ctx := context.Background()
			var fp atomic.Pointer[string]
			f1 := "banks-1"
			fp.Store(&f1)
			b, m := newBook(t, s, &fp)
			clean, blocked, undecodable := sampleRecord(1, 0), sampleRecord(2, 0), sampleRecord(3, 0)
			clean.Banks, blocked.Banks = f1, f1
			blocked.Verdict, blocked.Reason = Blocked, "sha256 listed"
			undecodable.Verdict = Undecodable
			for _, r := range []Record{clean, blocked, undecodable} {
				if !b.Remember(r) {
					t.Fatal("queue refused a record")
				}
			}
			b.Flush()

			check := func(r Record, wantBlocked, wantOK bool) {
				t.Helper()
				bl, _, ok := b.Recall(ctx, r.Key)
				if bl != wantBlocked || ok != wantOK {
					t.Errorf("%s: Recall = blocked %v ok %v, want %v %v", r.Key, bl, ok, wantBlocked, wantOK)
				}
			}
			check(clean, false, true)
			check(blocked, true, true)
			check(undecodable, false, false) // a newer decoder deserves to see it
			check(sampleRecord(4, 0), false, false)
			if n := m.calls.Load(); n != 0 {
				t.Fatalf("banks unchanged, yet the matcher was asked %d times", n)
			}

			// The banks change and now list the clean media: re-derived from
			// its digests, no bytes.
			f2 := "banks-2"
			fp.Store(&f2)
			m.list(clean.Query.SHA256, true)
			check(clean, true, true)
			m.list(clean.Query.SHA256, false)
			check(clean, false, true)
			if n := m.calls.Load(); n != 2 {
				t.Fatalf("matcher asked %d times, want one per re-derivation", n)
			}
		})
	}
}

func TestBookRetro(t *testing.T) {
	for _, st := range storeKinds {
		t.Run(st.name, func(t *testing.T) {
			s, _ := st.open(t)
			ctx := context.Background()
			var fp atomic.Pointer[string]
			f1 := "banks-1"
			fp.Store(&f1)
			b, m := newBook(t, s, &fp)
			var recs []Record
			for i := range 50 {
				r := sampleRecord(i, 2)
				r.Banks = f1
				recs = append(recs, r)
				b.Remember(r)
			}
			b.Flush()
			// The first scan after a start finds an unknown mark: a catch-up
			// against the full banks (here: nothing listed).
			st0, err := b.Retro(ctx, Change{To: f1, Full: m.matches}, nil, nil)
			if err != nil || !st0.CatchUp || st0.Hits != 0 || st0.Scanned != 50 {
				t.Fatalf("catch-up: %+v %v", st0, err)
			}

			// A bank gains the digests of records 7 and 31.
			m.list(recs[7].Query.SHA256, true)
			m.list(recs[31].Query.SHA256, true)
			f2 := "banks-2"
			fp.Store(&f2)
			var hits []Key
			ch := Change{ID: "1>2:TEST", From: f1, To: f2, Full: m.matches, Added: m.matches}
			st1, err := b.Retro(ctx, ch, func(h Hit) { hits = append(hits, h.Record.Key) }, nil)
			if err != nil || st1.CatchUp || st1.Hits != 2 || len(hits) != 2 {
				t.Fatalf("retro: %+v %v, hits %v", st1, err, hits)
			}
			if r, _, _ := s.Get(ctx, recs[7].Key); r.Verdict != Blocked || r.Banks != f2 {
				t.Fatalf("hit recorded as %v against %q", r.Verdict, r.Banks)
			}
			// Another instance of the fleet sees the same change: done already.
			st2, err := b.Retro(ctx, ch, func(Hit) { t.Error("a second notice for the same change") }, nil)
			if err != nil || !st2.Skipped {
				t.Fatalf("second scan of one change: %+v %v", st2, err)
			}

			// Record 31's entry is removed (a tombstone): it is re-derived
			// and unblocked; record 7 stays blocked.
			m.list(recs[31].Query.SHA256, false)
			f3 := "banks-3"
			fp.Store(&f3)
			removed := func(q *matcher.Query) bool { return q.SHA256 == recs[31].Query.SHA256 }
			var unblocked []Key
			st3, err := b.Retro(ctx, Change{ID: "2>3:TEST", From: f2, To: f3, Full: m.matches, Removed: removed}, nil, func(k Key) { unblocked = append(unblocked, k) })
			if err != nil || st3.Unblocked != 1 || len(unblocked) != 1 || unblocked[0] != recs[31].Key {
				t.Fatalf("removal: %+v %v %v", st3, err, unblocked)
			}
			if bl, _, _ := b.Recall(ctx, recs[31].Key); bl {
				t.Error("unblocked media still recalled as blocked")
			}
			if bl, _, _ := b.Recall(ctx, recs[7].Key); !bl {
				t.Error("media listed by an entry still banked was unblocked")
			}

			// Record 7's entry leaves its bank while no proxy runs: the
			// catch-up at the next start re-derives it and lifts the block.
			m.list(recs[7].Query.SHA256, false)
			f4 := "banks-4"
			fp.Store(&f4)
			var lifted []Key
			st4, err := b.Retro(ctx, Change{To: f4, Full: m.matches}, func(Hit) { t.Error("a hit in a catch-up that lists nothing") }, func(k Key) { lifted = append(lifted, k) })
			if err != nil || !st4.CatchUp || st4.Unblocked != 1 || len(lifted) != 1 || lifted[0] != recs[7].Key {
				t.Fatalf("catch-up after a removal while down: %+v %v %v", st4, err, lifted)
			}

			// A moderator blocks record 12 by hand: no bank lists it, and
			// a catch-up that re-derives every block leaves it blocked.
			if ok, err := s.SetVerdict(ctx, recs[12].Key, Blocked, ManualReasonPrefix+"@mod:x", f4); !ok || err != nil {
				t.Fatalf("manual block: %v %v", ok, err)
			}
			f5 := "banks-5"
			fp.Store(&f5)
			st5, err := b.Retro(ctx, Change{To: f5, Full: m.matches}, nil, func(k Key) { t.Errorf("a manual block was lifted: %v", k) })
			if err != nil || st5.Unblocked != 0 {
				t.Fatalf("catch-up with a manual block: %+v %v", st5, err)
			}
			if bl, reason, _ := b.Recall(ctx, recs[12].Key); !bl || !Manual(reason) {
				t.Errorf("manual block recalled as %v %q", bl, reason)
			}
		})
	}
}

// A recall moves a stale LastSeen forward (retention counts from the last
// sighting) without touching the verdict a retro-scan may have written.
func TestBookRecallTouchesLastSeen(t *testing.T) {
	for _, st := range storeKinds {
		t.Run(st.name, func(t *testing.T) {
			s, _ := st.open(t)
			ctx := context.Background()
			var fp atomic.Pointer[string]
			f := "banks"
			fp.Store(&f)
			b, _ := newBook(t, s, &fp)
			r := sampleRecord(9, 0)
			r.Banks = f
			r.LastSeen = r.FirstSeen // sampleTime: long ago
			if err := s.Put(ctx, r); err != nil {
				t.Fatal(err)
			}
			// A retro-scan blocks it after the recall read it clean.
			if _, _, ok := b.Recall(ctx, r.Key); !ok {
				t.Fatal("not recalled")
			}
			s.SetVerdict(ctx, r.Key, Blocked, "listed", f)
			b.Flush()
			got, _, _ := s.Get(ctx, r.Key)
			if !got.LastSeen.After(r.LastSeen) {
				t.Errorf("LastSeen %v not moved forward from %v", got.LastSeen, r.LastSeen)
			}
			if got.Verdict != Blocked || !got.FirstSeen.Equal(r.FirstSeen) {
				t.Errorf("the touch rewrote the record: %v, first seen %v", got.Verdict, got.FirstSeen)
			}
			// Never backwards.
			if _, err := s.Touch(ctx, r.Key, r.FirstSeen); err != nil {
				t.Fatal(err)
			}
			if again, _, _ := s.Get(ctx, r.Key); !again.LastSeen.Equal(got.LastSeen) {
				t.Errorf("a touch moved LastSeen back to %v", again.LastSeen)
			}
			if ok, err := s.Touch(ctx, Key{Server: "x", ID: "none"}, sampleTime); ok || err != nil {
				t.Errorf("touch of an unknown media: %v %v", ok, err)
			}
		})
	}
}

// errMatcher cannot answer, like a remote backend that is down under
// fail-closed.
type errMatcher struct{}

func (errMatcher) Match(context.Context, matcher.Query) (matcher.Verdict, error) {
	return matcher.Verdict{}, matcher.ErrUnavailable
}

// A ledger that cannot answer, or a matcher that cannot re-derive, never
// turns into a verdict: the proxy judges the bytes, as without a ledger.
func TestBookRecallWhenStoreOrMatcherFails(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Spec{Path: filepath.Join(t.TempDir(), "l", "media.ledger")})
	if err != nil {
		t.Fatal(err)
	}
	r := sampleRecord(5, 0)
	r.Banks = "old-banks"
	r.LastSeen = time.Now() // fresh: the recall queues no touch
	if err := s.Put(ctx, r); err != nil {
		t.Fatal(err)
	}
	b := NewBook(BookConfig{Store: s, Matcher: errMatcher{}, Fingerprint: func() string { return "new-banks" }})
	defer b.Close()
	if bl, _, ok := b.Recall(ctx, r.Key); ok || bl {
		t.Errorf("re-derivation with the matcher down: blocked %v ok %v, want unknown", bl, ok)
	}
	s.Close()
	if bl, _, ok := b.Recall(ctx, r.Key); ok || bl {
		t.Errorf("store closed: blocked %v ok %v, want unknown", bl, ok)
	}
	b.Remember(sampleRecord(6, 0))
	b.Flush()
	if st := b.Stats(); st.ReadFailed != 1 || st.Failed != 1 || st.Written != 0 {
		t.Errorf("stats %+v: want one failed read and one failed write counted", st)
	}
}
