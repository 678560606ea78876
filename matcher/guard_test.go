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

	"github.com/mediaguard/mediaguard/internal/testkit"
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
		{"duplicate", GuardConfig{Remotes: []Remote{{"x", b}, {"x", b}}}, "used twice"},
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
	g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{"hma", remote}}})
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
	g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{"a", a}, {"b", b}, {"c", c}}})
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
					Remotes:    []Remote{{"hma", down}},
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
		g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{"down", down}}, FailPolicy: policy})
		if v, err := g.Match(context.Background(), md5Query("x")); err != nil || !v.Match {
			t.Fatalf("%v: local match lost: %+v, %v", policy, v, err)
		}

		up := newFakeBackend(answer(remoteMatch("service:up"), nil))
		g = newTestGuard(t, GuardConfig{Remotes: []Remote{{"down", down}, {"up", up}}, FailPolicy: policy})
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

// The breaker opens after N consecutive failures, stops calling the backend
// while open, lets one probe through after OpenTimeout, and closes when it
// succeeds.
func TestGuardBreakerOpensAndRecovers(t *testing.T) {
	var healthy sync.Map // set "ok" to heal
	backend := newFakeBackend(func(context.Context, Query) (Verdict, error) {
		if _, ok := healthy.Load("ok"); ok {
			return Verdict{}, nil
		}
		return Verdict{}, fmt.Errorf("%w: 503", ErrUnavailable)
	})
	var tr transitions
	g := newTestGuard(t, GuardConfig{
		Remotes:         []Remote{{"hma", backend}},
		Breaker:         BreakerConfig{ConsecutiveFailures: 3, OpenTimeout: 100 * time.Millisecond},
		Cache:           noCache,
		OnBreakerChange: tr.add,
	})
	ctx := context.Background()
	for i := range 3 {
		if v, err := g.Match(ctx, md5Query("x")); err != nil || !v.Unscanned {
			t.Fatalf("call %d: %+v, %v", i, v, err)
		}
	}
	if s := g.BreakerStates()["hma"]; s != "open" {
		t.Fatalf("state %q after 3 failures; want open", s)
	}
	v, err := g.Match(ctx, md5Query("x"))
	if err != nil || !v.Unscanned || !strings.Contains(v.Notes[0], "circuit breaker open") {
		t.Fatalf("while open: %+v, %v", v, err)
	}
	if backend.calls.Load() != 3 || g.Stats().Remotes["hma"].Rejected != 1 {
		t.Fatalf("backend called %d times, stats %+v; want 3 calls and 1 rejection", backend.calls.Load(), g.Stats().Remotes["hma"])
	}

	healthy.Store("ok", true)
	time.Sleep(150 * time.Millisecond)
	if v, err := g.Match(ctx, md5Query("x")); err != nil || v.Unscanned {
		t.Fatalf("probe: %+v, %v", v, err)
	}
	if s := g.BreakerStates()["hma"]; s != "closed" || backend.calls.Load() != 4 {
		t.Fatalf("state %q, calls %d after a successful probe; want closed, 4", s, backend.calls.Load())
	}
	want := []string{"hma:closed->open", "hma:open->half-open", "hma:half-open->closed"}
	testkit.Eventually(t, "breaker events", func() bool { return len(tr.list()) == len(want) })
	if got := tr.list(); !reflect.DeepEqual(got, want) {
		t.Fatalf("transitions %q; want %q", got, want)
	}
}

// A failed probe reopens the breaker for another OpenTimeout.
func TestGuardBreakerHalfOpenFailureReopens(t *testing.T) {
	backend := newFakeBackend(answer(Verdict{}, ErrUnavailable))
	g := newTestGuard(t, GuardConfig{
		Remotes: []Remote{{"hma", backend}},
		Breaker: BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: 50 * time.Millisecond},
		Cache:   noCache,
	})
	g.Match(context.Background(), md5Query("x"))
	time.Sleep(80 * time.Millisecond)
	g.Match(context.Background(), md5Query("x")) // the probe fails
	if s := g.BreakerStates()["hma"]; s != "open" || backend.calls.Load() != 2 {
		t.Fatalf("state %q, calls %d; want open after a failed probe, 2 calls", s, backend.calls.Load())
	}
}

// The breaker trips on the failure ratio once MinRequests calls were made,
// even without N consecutive failures.
func TestGuardBreakerFailureRatio(t *testing.T) {
	var n int
	var mu sync.Mutex
	backend := newFakeBackend(func(context.Context, Query) (Verdict, error) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n%2 == 0 {
			return Verdict{}, ErrUnavailable
		}
		return Verdict{}, nil
	})
	g := newTestGuard(t, GuardConfig{
		Remotes: []Remote{{"svc", backend}},
		Breaker: BreakerConfig{ConsecutiveFailures: 100, MinRequests: 6, FailureRatio: 0.5},
		Cache:   noCache,
	})
	for i := range 5 {
		g.Match(context.Background(), md5Query("x"))
		if s := g.BreakerStates()["svc"]; s != "closed" {
			t.Fatalf("open after %d calls; MinRequests is 6", i+1)
		}
	}
	g.Match(context.Background(), md5Query("x")) // 3 of 6 failed
	if s := g.BreakerStates()["svc"]; s != "open" {
		t.Fatalf("state %q; want open at 3/6 failures", s)
	}
}

// A caller going away is not the backend's fault; the call timeout is.
func TestGuardClientCancelNotCounted(t *testing.T) {
	backend := newFakeBackend(blockUntilDone)
	g := newTestGuard(t, GuardConfig{
		Remotes: []Remote{{"hma", backend}},
		Breaker: BreakerConfig{ConsecutiveFailures: 1, CallTimeout: 300 * time.Millisecond},
	})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	if _, err := g.Match(ctx, md5Query("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v; want context.Canceled", err)
	}
	// Abandoned is counted after the breaker has accounted for the call.
	testkit.Eventually(t, "the abandoned call", func() bool { return g.Stats().Remotes["hma"].Abandoned == 1 })
	st := g.Stats()
	if s := g.BreakerStates()["hma"]; s != "closed" || st.Remotes["hma"].Failures != 0 || st.FailOpen+st.FailClosed != 0 {
		t.Fatalf("state %q, stats %+v; a cancelled caller must not count", s, st)
	}

	// With nobody cancelling, the call timeout counts as a failure.
	v, err := g.Match(context.Background(), md5Query("x"))
	if err != nil || !v.Unscanned {
		t.Fatalf("Match = %+v, %v; want unscanned after the call timeout", v, err)
	}
	if s := g.BreakerStates()["hma"]; s != "open" || g.Stats().Remotes["hma"].Failures != 1 {
		t.Fatalf("state %q, stats %+v; want open after one timeout", s, g.Stats().Remotes["hma"])
	}
}

// HMA answers 503 until its index is loaded: the breaker opens, stops
// hammering it, and closes once a probe finds the index loaded.
func TestGuardBreakerWithHMAIndexLoad(t *testing.T) {
	f := newFakeHMA(t)
	f.Loaded.Store(false)
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	g := newTestGuard(t, GuardConfig{
		Remotes: []Remote{{"hma", h}},
		Breaker: BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: 100 * time.Millisecond},
	})
	q := pdqQuery(t, hmaBase, 100)
	for range 5 {
		if v, err := g.Match(context.Background(), q); err != nil || !v.Unscanned {
			t.Fatalf("Match = %+v, %v; want unscanned while HMA loads", v, err)
		}
	}
	if f.Lookups.Load() != 2 || g.BreakerStates()["hma"] != "open" {
		t.Fatalf("HMA asked %d times, state %q; want 2 and open", f.Lookups.Load(), g.BreakerStates()["hma"])
	}
	f.Loaded.Store(true)
	time.Sleep(150 * time.Millisecond)
	v, err := g.Match(context.Background(), q)
	if err != nil || !v.Match || v.Source != "hma:OTHER_BANK" && v.Source != "hma:TEST_BANK" {
		t.Fatalf("Match = %+v, %v; want a match once loaded", v, err)
	}
	if g.BreakerStates()["hma"] != "closed" {
		t.Fatalf("state %q; want closed", g.BreakerStates()["hma"])
	}
}

// OnBreakerChange runs outside the breaker's lock, so it may look at the
// breakers (gobreaker would deadlock if it ran under the lock).
func TestGuardOnBreakerChangeMayCallBreakerStates(t *testing.T) {
	backend := newFakeBackend(answer(Verdict{}, ErrUnavailable))
	got := make(chan map[string]string, 4)
	var g *Guard
	var ready sync.WaitGroup
	ready.Add(1)
	g = newTestGuard(t, GuardConfig{
		Remotes: []Remote{{"hma", backend}},
		Breaker: BreakerConfig{ConsecutiveFailures: 1},
		OnBreakerChange: func(string, string, string) {
			ready.Wait()
			got <- g.BreakerStates()
		},
	})
	ready.Done()
	done := make(chan struct{})
	go func() {
		g.Match(context.Background(), md5Query("x"))
		close(done)
	}()
	select {
	case s := <-got:
		if s["hma"] != "open" {
			t.Fatalf("states %v", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("OnBreakerChange deadlocked")
	}
	<-done
}

func TestGuardCache(t *testing.T) {
	var matchSet sync.Map
	backend := newFakeBackend(func(_ context.Context, q Query) (Verdict, error) {
		if _, ok := matchSet.Load(q.MD5); ok {
			return remoteMatch("hma:B"), nil
		}
		return Verdict{Notes: []string{"remote: no match"}}, nil
	})
	matchSet.Store(md5Query("bad").MD5, true)
	g := newTestGuard(t, GuardConfig{
		Remotes: []Remote{{"hma", backend}},
		Cache:   CacheConfig{MatchTTL: time.Hour, MissTTL: 100 * time.Millisecond},
	})
	ctx := context.Background()

	v1, _ := g.Match(ctx, md5Query("clean"))
	v2, _ := g.Match(ctx, md5Query("clean"))
	if backend.calls.Load() != 1 || !reflect.DeepEqual(v1, v2) {
		t.Fatalf("calls %d, %+v vs %+v; want one call and the same answer", backend.calls.Load(), v1, v2)
	}
	if st := g.Stats(); st.CacheHits != 1 || st.CacheMisses != 1 || st.CacheEntries != 1 {
		t.Fatalf("stats %+v", st)
	}

	// A different kind is a different question (HMA looks up video MD5s).
	video := md5Query("clean")
	video.Kind = KindVideo
	g.Match(ctx, video)
	if backend.calls.Load() != 2 {
		t.Fatalf("calls %d; kind must be part of the key", backend.calls.Load())
	}

	// Misses expire after MissTTL; matches are kept for MatchTTL.
	v, _ := g.Match(ctx, md5Query("bad"))
	if !v.Match {
		t.Fatalf("verdict %+v", v)
	}
	time.Sleep(150 * time.Millisecond)
	g.Match(ctx, md5Query("clean"))
	g.Match(ctx, md5Query("bad"))
	if backend.calls.Load() != 4 {
		t.Fatalf("calls %d; want the miss re-asked and the match cached", backend.calls.Load())
	}

	// Cached slices are not shared with callers.
	v, _ = g.Match(ctx, md5Query("bad"))
	v.Evidence[0].Bank = "MUTATED"
	if v, _ := g.Match(ctx, md5Query("bad")); v.Evidence[0].Bank != "B" {
		t.Fatal("a caller's change reached the cache")
	}
}

// Errors and unscanned answers are never cached; a fixed backend is seen at
// once.
func TestGuardCacheSkipsFailures(t *testing.T) {
	for _, policy := range []FailPolicy{FailOpen, FailClosed} {
		backend := newFakeBackend(answer(Verdict{}, ErrUnavailable))
		g := newTestGuard(t, GuardConfig{Remotes: []Remote{{"hma", backend}}, FailPolicy: policy})
		g.Match(context.Background(), md5Query("x"))
		backend.set(answer(remoteMatch("hma:B"), nil))
		v, err := g.Match(context.Background(), md5Query("x"))
		if err != nil || !v.Match || backend.calls.Load() != 2 || g.Stats().CacheEntries != 1 {
			t.Fatalf("%v: %+v, %v, calls %d; the failure must not be cached", policy, v, err, backend.calls.Load())
		}
	}
}

// Local banks are consulted every time, so a reload takes effect even for a
// query whose remote answer is cached.
func TestGuardLocalReloadBypassesCache(t *testing.T) {
	local := newFakeBackend(answer(Verdict{}, nil))
	remote := newFakeBackend(answer(Verdict{}, nil))
	g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{"hma", remote}}})
	g.Match(context.Background(), md5Query("x"))
	local.set(answer(Verdict{Match: true, Source: "local:NEW"}, nil))
	v, err := g.Match(context.Background(), md5Query("x"))
	if err != nil || !v.Match || v.Source != "local:NEW" {
		t.Fatalf("Match = %+v, %v; want the reloaded local match", v, err)
	}
	if local.calls.Load() != 2 || remote.calls.Load() != 1 {
		t.Fatalf("local %d, remote %d calls; want 2, 1", local.calls.Load(), remote.calls.Load())
	}
}

// An attacker choosing hashes cannot grow the cache past MaxEntries; past
// the cap answers are still right, just not cached.
func TestGuardCacheCap(t *testing.T) {
	backend := newFakeBackend(answer(Verdict{}, nil))
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{"hma", backend}}, Cache: CacheConfig{MaxEntries: 3}})
	for i := range 5 {
		if _, err := g.Match(context.Background(), md5Query(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	if st := g.Stats(); st.CacheEntries != 3 || st.CacheFull != 2 {
		t.Fatalf("stats %+v; want 3 entries and 2 not cached", st)
	}
	g.Match(context.Background(), md5Query("0")) // cached
	g.Match(context.Background(), md5Query("4")) // not cached
	if backend.calls.Load() != 6 {
		t.Fatalf("calls %d; want 6", backend.calls.Load())
	}
}

// Concurrent identical lookups share one remote call.
func TestGuardSingleflight(t *testing.T) {
	release := make(chan struct{})
	backend := newFakeBackend(func(context.Context, Query) (Verdict, error) {
		<-release
		return remoteMatch("hma:B"), nil
	})
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{"hma", backend}}, Cache: noCache})
	const n = 16
	var wg sync.WaitGroup
	results := make(chan Verdict, n)
	for range n {
		wg.Go(func() {
			v, err := g.Match(context.Background(), md5Query("same"))
			if err != nil {
				t.Error(err)
			}
			results <- v
		})
	}
	testkit.Eventually(t, "every caller to join", func() bool { return g.Stats().SharedCalls == n-1 })
	close(release)
	wg.Wait()
	close(results)
	for v := range results {
		if !v.Match {
			t.Fatalf("verdict %+v", v)
		}
	}
	if backend.calls.Load() != 1 {
		t.Fatalf("remote called %d times for %d identical lookups", backend.calls.Load(), n)
	}
	// Different queries are not merged.
	g.Match(context.Background(), md5Query("other"))
	if backend.calls.Load() != 2 {
		t.Fatalf("calls %d", backend.calls.Load())
	}
}

// The first caller leaving does not fail the others waiting on its call.
func TestGuardSingleflightLeaderCancel(t *testing.T) {
	release := make(chan struct{})
	backend := newFakeBackend(func(ctx context.Context, _ Query) (Verdict, error) {
		select {
		case <-release:
			return remoteMatch("hma:B"), nil
		case <-ctx.Done():
			return Verdict{}, ctx.Err()
		}
	})
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{"hma", backend}}, Cache: noCache})
	leaderCtx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := g.Match(leaderCtx, md5Query("same"))
		leaderErr <- err
	}()
	testkit.Eventually(t, "the leader's call", func() bool { return backend.calls.Load() == 1 })
	follower := make(chan Verdict, 1)
	go func() {
		v, _ := g.Match(context.Background(), md5Query("same"))
		follower <- v
	}()
	testkit.Eventually(t, "the follower to join", func() bool { return g.Stats().SharedCalls == 1 })
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader err = %v", err)
	}
	close(release)
	if v := <-follower; !v.Match {
		t.Fatalf("follower got %+v; want the shared answer", v)
	}
	if backend.calls.Load() != 1 || g.Stats().Remotes["hma"].Abandoned != 0 {
		t.Fatalf("stats %+v", g.Stats())
	}
}

func TestGuardCacheKey(t *testing.T) {
	base := pdqQuery(t, hmaBase, 80)
	withDihedral := base
	withDihedral.Dihedral = append(withDihedral.Dihedral, base.PDQ)
	lowQuality := base
	lowQuality.PDQQuality = 40
	video := base
	video.Kind = KindVideo
	absentMD5 := base
	absentMD5.MD5[0] = 1 // not flagged in Has: ignored
	if cacheKey(&base) != cacheKey(&withDihedral) || cacheKey(&base) != cacheKey(&absentMD5) {
		t.Fatal("dihedral variants or absent digests changed the key")
	}
	if cacheKey(&base) == cacheKey(&lowQuality) || cacheKey(&base) == cacheKey(&video) {
		t.Fatal("quality or kind did not change the key")
	}
	if len(cacheKey(&base)) != 32 {
		t.Fatal("key is not fixed-size")
	}
}

func TestGuardClose(t *testing.T) {
	var tr transitions
	backend := newFakeBackend(answer(Verdict{}, nil))
	g, err := NewGuard(GuardConfig{Remotes: []Remote{{"hma", backend}}, OnBreakerChange: tr.add})
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

// A panicking backend fails like any other instead of crashing the process
// from the shared call's goroutine.
func TestGuardBackendPanic(t *testing.T) {
	backend := newFakeBackend(func(context.Context, Query) (Verdict, error) { panic("boom") })
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{"hma", backend}}})
	v, err := g.Match(context.Background(), md5Query("x"))
	if err != nil || !v.Unscanned || !strings.Contains(strings.Join(v.Notes, " "), "hma: backend panicked") {
		t.Fatalf("Match = %+v, %v; want unscanned with a note", v, err)
	}
}
