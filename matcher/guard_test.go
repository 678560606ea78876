package matcher

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestGuard(t testing.TB, cfg GuardConfig) *Guard {
	t.Helper()
	g, err := NewGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	return g
}

// md5Query is an image query with the MD5 of s.
func md5Query(s string) Query {
	return Query{Has: HasMD5, MD5: md5.Sum([]byte(s)), Kind: KindImage}
}

var noCache = CacheConfig{MaxEntries: -1}

func TestNewGuardConfig(t *testing.T) {
	b := newFakeBackend(answer(Verdict{}, nil))
	for _, tc := range []struct {
		name    string
		cfg     GuardConfig
		wantErr string
	}{
		{"no remotes", GuardConfig{}, ""},
		{"unnamed remote", GuardConfig{Remotes: []Remote{{Matcher: b}}}, "needs a name"},
		{"nil matcher", GuardConfig{Remotes: []Remote{{Name: "x"}}}, "needs a name and a matcher"},
		{"duplicate", GuardConfig{Remotes: []Remote{{Name: "x", Matcher: b}, {Name: "x", Matcher: b}}}, "used twice"},
		{"ratio", GuardConfig{Breaker: BreakerConfig{FailureRatio: 1.5}}, "failure ratio"},
		{"policy", GuardConfig{FailPolicy: 7}, "fail policy"},
		{"negative timeout", GuardConfig{Breaker: BreakerConfig{CallTimeout: -1}}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := NewGuard(tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				g.Close()
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v; want %q", err, tc.wantErr)
			}
		})
	}
	if p, err := ParseFailPolicy("Closed"); err != nil || p != FailClosed || p.String() != "closed" {
		t.Fatalf("ParseFailPolicy = %v, %v", p, err)
	}
}

// A local match answers in microseconds and no remote is asked.
func TestGuardLocalMatchShortCircuits(t *testing.T) {
	local := newFakeBackend(answer(Verdict{Match: true, Source: "local:NCMEC", Bank: "NCMEC"}, nil))
	remote := newFakeBackend(answer(remoteMatch("hma:X"), nil))
	g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{Name: "hma", Matcher: remote}}})
	v, err := g.Match(context.Background(), md5Query("x"))
	if err != nil || !v.Match || v.Source != "local:NCMEC" {
		t.Fatalf("Match = %+v, %v", v, err)
	}
	if remote.calls.Load() != 0 || g.Stats().Remotes["hma"].Calls != 0 {
		t.Fatal("remote consulted after a local match")
	}
}

// Remotes are asked in order, the first match wins, and the notes and
// evidence of everything consulted are kept.
func TestGuardRemoteOrder(t *testing.T) {
	local := newFakeBackend(answer(Verdict{Notes: []string{"local: pdq quality low"}}, nil))
	a := newFakeBackend(answer(Verdict{Notes: []string{"a: nothing"}}, nil))
	b := newFakeBackend(answer(remoteMatch("service:b"), nil))
	c := newFakeBackend(answer(remoteMatch("service:c"), nil))
	g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{Name: "a", Matcher: a}, {Name: "b", Matcher: b}, {Name: "c", Matcher: c}}})
	v, err := g.Match(context.Background(), md5Query("x"))
	if err != nil || !v.Match || v.Source != "service:b" || v.Reason != "matched by service:b" {
		t.Fatalf("Match = %+v, %v", v, err)
	}
	if want := []string{"local: pdq quality low", "a: nothing"}; !reflect.DeepEqual(v.Notes, want) {
		t.Fatalf("notes %q; want %q", v.Notes, want)
	}
	if len(v.Evidence) != 1 || v.Evidence[0].Source != "service:b" {
		t.Fatalf("evidence %+v", v.Evidence)
	}
	if a.calls.Load() != 1 || b.calls.Load() != 1 || c.calls.Load() != 0 {
		t.Fatalf("calls a=%d b=%d c=%d; want 1 1 0", a.calls.Load(), b.calls.Load(), c.calls.Load())
	}
}

func TestGuardFailPolicy(t *testing.T) {
	failures := map[string]func(context.Context, Query) (Verdict, error){
		"unavailable":  answer(Verdict{}, fmt.Errorf("%w: hma: index not ready (503)", ErrUnavailable)),
		"bad response": answer(Verdict{}, fmt.Errorf("%w: hma: not JSON", ErrBadResponse)),
		"other error":  answer(Verdict{}, errors.New("socket closed")),
		"timeout":      blockUntilDone,
	}
	for fname, fail := range failures {
		for _, policy := range []FailPolicy{FailOpen, FailClosed} {
			t.Run(fname+"/fail-"+policy.String(), func(t *testing.T) {
				down := newFakeBackend(fail)
				g := newTestGuard(t, GuardConfig{
					Remotes:    []Remote{{Name: "hma", Matcher: down}},
					FailPolicy: policy,
					Breaker:    BreakerConfig{CallTimeout: 30 * time.Millisecond},
				})
				v, err := g.Match(context.Background(), md5Query("x"))
				st := g.Stats()
				if policy == FailOpen {
					if err != nil || v.Match || !v.Unscanned {
						t.Fatalf("Match = %+v, %v; want allowed unscanned", v, err)
					}
					if len(v.Notes) != 1 || !strings.Contains(v.Notes[0], "remote hma not consulted") {
						t.Fatalf("notes %q; want one naming the backend", v.Notes)
					}
					if st.FailOpen != 1 || st.FailClosed != 0 {
						t.Fatalf("stats %+v", st)
					}
				} else {
					if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "hma") {
						t.Fatalf("Match = %+v, %v; want ErrUnavailable naming hma", v, err)
					}
					if st.FailClosed != 1 || st.FailOpen != 0 {
						t.Fatalf("stats %+v", st)
					}
					if fname == "bad response" && !errors.Is(err, ErrBadResponse) {
						t.Fatalf("err = %v; the cause must stay visible", err)
					}
				}
				if st.Remotes["hma"].Failures != 1 {
					t.Fatalf("failures %+v; want 1", st.Remotes["hma"])
				}
			})
		}
	}
}

// Local banks are consulted whatever the remotes' state, and a remote match
// blocks even when another remote is down, under either policy.
func TestGuardMatchDespiteRemoteDown(t *testing.T) {
	down := newFakeBackend(answer(Verdict{}, ErrUnavailable))
	for _, policy := range []FailPolicy{FailOpen, FailClosed} {
		local := newFakeBackend(answer(Verdict{Match: true, Source: "local:L"}, nil))
		g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{Name: "down", Matcher: down}}, FailPolicy: policy})
		if v, err := g.Match(context.Background(), md5Query("x")); err != nil || !v.Match {
			t.Fatalf("%v: local match lost: %+v, %v", policy, v, err)
		}

		up := newFakeBackend(answer(remoteMatch("service:up"), nil))
		g = newTestGuard(t, GuardConfig{Remotes: []Remote{{Name: "down", Matcher: down}, {Name: "up", Matcher: up}}, FailPolicy: policy})
		v, err := g.Match(context.Background(), md5Query("x"))
		if err != nil || !v.Match || v.Unscanned || v.Source != "service:up" {
			t.Fatalf("%v: Match = %+v, %v; want the match from up", policy, v, err)
		}
	}
}

// transitions collects OnBreakerChange calls.
type transitions struct {
	mu  sync.Mutex
	got []string
}

func (tr *transitions) add(name, from, to string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.got = append(tr.got, name+":"+from+"->"+to)
}

func (tr *transitions) list() []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return append([]string(nil), tr.got...)
}

func TestGuardClose(t *testing.T) {
	var tr transitions
	backend := newFakeBackend(answer(Verdict{}, nil))
	g, err := NewGuard(GuardConfig{Remotes: []Remote{{Name: "hma", Matcher: backend}}, OnBreakerChange: tr.add})
	if err != nil {
		t.Fatal(err)
	}
	g.Match(context.Background(), md5Query("x"))
	if g.Stats().CacheEntries != 1 {
		t.Fatal("not cached")
	}
	g.Close()
	g.Close() // idempotent
	if g.Stats().CacheEntries != 0 {
		t.Fatal("Close left the cache full")
	}
	// Still answers, uncached.
	g.Match(context.Background(), md5Query("x"))
	g.Match(context.Background(), md5Query("x"))
	if backend.calls.Load() != 3 || g.Stats().CacheEntries != 0 {
		t.Fatalf("calls %d, entries %d after Close", backend.calls.Load(), g.Stats().CacheEntries)
	}
}

// OnBackendCall hears the local banks on every Match and each remote call
// a breaker let through, timeouts included, with how long it took; cache
// hits and calls an open breaker refused are not calls.
func TestGuardReportsBackendCalls(t *testing.T) {
	var mu sync.Mutex
	took := map[string][]time.Duration{}
	slow := newFakeBackend(func(ctx context.Context, _ Query) (Verdict, error) {
		time.Sleep(20 * time.Millisecond)
		return Verdict{}, nil
	})
	dead := newFakeBackend(blockUntilDone)
	g := newTestGuard(t, GuardConfig{
		Local:   newFakeBackend(answer(Verdict{}, nil)),
		Remotes: []Remote{{Name: "service:slow", Matcher: slow}, {Name: "hma:dead", Matcher: dead}},
		Breaker: BreakerConfig{CallTimeout: 30 * time.Millisecond, ConsecutiveFailures: 2, OpenTimeout: time.Hour},
		OnBackendCall: func(backend string, d time.Duration) {
			mu.Lock()
			took[backend] = append(took[backend], d)
			mu.Unlock()
		},
	})
	for _, q := range []string{"a", "a", "b", "c"} { // "a" again: a cache miss too (failures are not cached)
		if _, err := g.Match(context.Background(), md5Query(q)); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	// Four Matches; the dead remote opened its breaker after two
	// timeouts, so the last two queries were refused without a call.
	for _, c := range []struct {
		backend string
		n       int
		atLeast time.Duration
	}{
		{LocalBackend, 4, 0},
		{"service:slow", 4, 20 * time.Millisecond},
		{"hma:dead", 2, 30 * time.Millisecond},
	} {
		if len(took[c.backend]) != c.n {
			t.Errorf("%s: %d calls reported; want %d", c.backend, len(took[c.backend]), c.n)
		}
		for _, d := range took[c.backend] {
			if d < c.atLeast {
				t.Errorf("%s: call reported as taking %v; want at least %v", c.backend, d, c.atLeast)
			}
		}
	}
	if st := g.Stats().Remotes["hma:dead"]; st.Rejected != 2 {
		t.Errorf("hma:dead stats %+v; want 2 refused by the open breaker", st)
	}
}
