package matcher

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

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
		Remotes:         []Remote{{Name: "hma", Matcher: backend}},
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
		Remotes: []Remote{{Name: "hma", Matcher: backend}},
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
		Remotes: []Remote{{Name: "svc", Matcher: backend}},
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
		Remotes: []Remote{{Name: "hma", Matcher: backend}},
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
		Remotes: []Remote{{Name: "hma", Matcher: h}},
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
		Remotes: []Remote{{Name: "hma", Matcher: backend}},
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

// A panicking backend fails like any other instead of crashing the process
// from the shared call's goroutine.
func TestGuardBackendPanic(t *testing.T) {
	backend := newFakeBackend(func(context.Context, Query) (Verdict, error) { panic("boom") })
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{Name: "hma", Matcher: backend}}})
	v, err := g.Match(context.Background(), md5Query("x"))
	if err != nil || !v.Unscanned || !strings.Contains(strings.Join(v.Notes, " "), "hma: backend panicked") {
		t.Fatalf("Match = %+v, %v; want unscanned with a note", v, err)
	}
}
