package matcher

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// probedBackend is a fakeBackend that is also a Prober whose answer a test
// scripts; it records when each probe came.
type probedBackend struct {
	*fakeBackend
	probeErr func(n int) error // n counts probes from 1

	mu    sync.Mutex
	times []time.Time
}

func (p *probedBackend) Probe(ctx context.Context) error {
	p.mu.Lock()
	p.times = append(p.times, time.Now())
	n := len(p.times)
	p.mu.Unlock()
	return p.probeErr(n)
}

func (p *probedBackend) probeTimes() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.times...)
}

// While the breaker is open the Guard probes with growing gaps, needs
// HalfOpenMaxRequests good probes in a row, then closes the breaker long
// before OpenTimeout and reports it as a half-open round; nothing is probed
// after Close.
func TestGuardProbeRecovers(t *testing.T) {
	var healthy atomic.Bool
	p := &probedBackend{
		fakeBackend: newFakeBackend(func(context.Context, Query) (Verdict, error) {
			if healthy.Load() {
				return Verdict{}, nil
			}
			return Verdict{}, ErrUnavailable
		}),
		probeErr: func(n int) error {
			if n <= 3 {
				return ErrUnavailable
			}
			healthy.Store(true)
			return nil
		},
	}
	var tr transitions
	log, logs := testkit.ObserveLogs()
	g := newTestGuard(t, GuardConfig{
		Remotes:         []Remote{{Name: "svc", Matcher: p}},
		Breaker:         BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: time.Minute, HalfOpenMaxRequests: 2},
		Cache:           noCache,
		OnBreakerChange: tr.add,
		Logger:          log,
	})
	g.probeFirst, g.probeMax = 20*time.Millisecond, 60*time.Millisecond
	ctx := context.Background()
	g.Match(ctx, md5Query("x"))
	g.Match(ctx, md5Query("x"))
	if s := g.BreakerStates()["svc"]; s != "open" {
		t.Fatalf("breaker %s after 2 failures; want open", s)
	}
	testkit.Eventually(t, "closed by the probes", func() bool { return g.BreakerStates()["svc"] == "closed" })
	if v, err := g.Match(ctx, md5Query("x")); err != nil || v.Unscanned {
		t.Fatalf("after recovery: %+v, %v", v, err)
	}
	st := g.Stats().Remotes["svc"]
	if st.Probes != 5 || st.Recoveries != 1 || st.Calls != 3 {
		t.Fatalf("stats %+v; want 3 failed probes, 2 good ones in a row, 1 recovery, 3 calls", st)
	}
	times := p.probeTimes()
	for i := 1; i < 4; i++ {
		// The 5th probe follows the 4th at once (both stand for the
		// half-open round); before that the gaps never shrink below the
		// first one.
		if gap := times[i].Sub(times[i-1]); gap < g.probeFirst {
			t.Fatalf("probe %d came %s after the previous; want at least %s", i+1, gap, g.probeFirst)
		}
	}
	want := []string{"svc:closed->open", "svc:open->half-open", "svc:half-open->closed"}
	testkit.Eventually(t, "events", func() bool { return len(tr.list()) == len(want) })
	if got := tr.list(); !reflect.DeepEqual(got, want) {
		t.Fatalf("transitions %q; want %q", got, want)
	}
	if testkit.LogCount(logs, "answers probes again") == 0 {
		t.Fatalf("recovery not logged:\n%s", testkit.LogText(logs))
	}

	// Open it again and close the Guard: the prober stops.
	healthy.Store(false)
	p.probeErr = func(int) error { return ErrUnavailable }
	g.Match(ctx, md5Query("x"))
	g.Match(ctx, md5Query("x"))
	g.Close()
	n := len(p.probeTimes())
	time.Sleep(100 * time.Millisecond)
	if len(p.probeTimes()) != n {
		t.Fatal("probes go on after Close")
	}
}

// A remote that cannot be probed, or whose OpenTimeout is already shorter
// than the first probe, keeps the plain breaker: no probes, recovery by a
// real request after OpenTimeout.
func TestGuardNoProbe(t *testing.T) {
	p := &probedBackend{fakeBackend: newFakeBackend(answer(Verdict{}, ErrUnavailable)), probeErr: func(int) error { return nil }}
	g := newTestGuard(t, GuardConfig{
		Remotes: []Remote{{Name: "svc", Matcher: p}},
		Breaker: BreakerConfig{ConsecutiveFailures: 1, OpenTimeout: 500 * time.Millisecond},
		Cache:   noCache,
	})
	g.Match(context.Background(), md5Query("x"))
	time.Sleep(g.probeFirst + 100*time.Millisecond)
	if len(p.probeTimes()) != 0 {
		t.Fatalf("probed %d times with an OpenTimeout shorter than the first probe", len(p.probeTimes()))
	}
}

// With the default open_timeout of 30 s, an HMA that goes away (or
// restarts and answers 503 "index not yet ready" while its index loads)
// and comes back after a few seconds is consulted again within 5 s of
// answering, not 30 s later; meanwhile no client lookup reaches it.
// Invariants, not exact timing: the breaker opened, client lookups were
// refused, and lookups succeeded within 5 s of HMA answering.
func TestGuardHMARecoversWithinSeconds(t *testing.T) {
	for _, tc := range []struct {
		name string
		// outage breaks HMA and returns the function that heals it.
		outage func(t *testing.T, f *fakes.HMA) (heal func())
		// wantReady says the probes asked /readyz while HMA was loading.
		wantReady bool
	}{
		{"down", func(t *testing.T, f *fakes.HMA) func() { return f.Down(t) }, false},
		{"index loading", func(t *testing.T, f *fakes.HMA) func() {
			f.Loaded.Store(false)
			return func() { f.Loaded.Store(true) }
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeHMA(t)
			h := newTestHMA(t, HMAConfig{URL: f.URL})
			var tr transitions
			g := newTestGuard(t, GuardConfig{
				Remotes:         []Remote{{Name: "hma", Matcher: h}},
				FailPolicy:      FailClosed,
				Breaker:         BreakerConfig{ConsecutiveFailures: 3}, // open_timeout: the default 30 s
				Cache:           noCache,
				OnBreakerChange: tr.add,
			})
			q := pdqQuery(t, hmaBase, 100)
			heal := tc.outage(t, f)
			for range 10 {
				if _, err := g.Match(context.Background(), q); !errors.Is(err, ErrUnavailable) {
					t.Fatalf("during the outage: %v; want ErrUnavailable (fail-closed)", err)
				}
			}
			if s := g.BreakerStates()["hma"]; s != "open" {
				t.Fatalf("breaker %s during the outage; want open", s)
			}
			time.Sleep(2 * time.Second) // a short outage, well under open_timeout
			if _, err := g.Match(context.Background(), q); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("still down: %v", err)
			}
			lookupsBefore := f.Lookups.Load()
			heal()
			back := time.Now()
			for {
				v, err := g.Match(context.Background(), q)
				if err == nil {
					if !v.Match {
						t.Fatalf("after recovery: %+v; want the banked hash matched", v)
					}
					break
				}
				if !errors.Is(err, ErrUnavailable) {
					t.Fatal(err)
				}
				if time.Since(back) > 5*time.Second {
					t.Fatalf("lookups still refused %s after HMA came back (open_timeout 30s); stats %+v", time.Since(back), g.Stats().Remotes["hma"])
				}
				time.Sleep(50 * time.Millisecond)
			}
			st := g.Stats().Remotes["hma"]
			if st.Calls != 4 || st.Failures != 3 || st.Recoveries != 1 || st.Probes == 0 || st.Rejected < 8 {
				t.Fatalf("stats %+v; want 3 failures, client lookups refused while open, 1 recovery by probe, then 1 good call", st)
			}
			// Only the probe's lookup (and the good call) reached HMA
			// after it came back: refusals cost it nothing.
			if n := f.Lookups.Load() - lookupsBefore; n != 2 {
				t.Fatalf("%d lookups reached HMA after it came back; want the probe's and the client's", n)
			}
			if tc.wantReady && f.ReadyChecks.Load() == 0 {
				t.Fatal("the probes never asked /readyz")
			}
			want := "hma:closed->open hma:open->half-open hma:half-open->closed"
			testkit.Eventually(t, "events", func() bool { return len(tr.list()) == 3 })
			if got := strings.Join(tr.list(), " "); got != want {
				t.Fatalf("transitions %q; want %q", got, want)
			}
		})
	}
}

// /readyz alone does not close the breaker: when HMA says ready but its
// lookups still fail (here, answers of the wrong shape), the probe fails and
// the breaker stays open.
func TestGuardHMAProbeNeedsAGoodLookup(t *testing.T) {
	f := newFakeHMA(t)
	f.SetRaw(&fakes.Raw{Status: 200, ContentType: "application/json", Body: `{"matches":[]}`})
	h := newTestHMA(t, HMAConfig{URL: f.URL})
	g := newTestGuard(t, GuardConfig{
		Remotes: []Remote{{Name: "hma", Matcher: h}},
		Breaker: BreakerConfig{ConsecutiveFailures: 1},
		Cache:   noCache,
	})
	g.Match(context.Background(), pdqQuery(t, hmaBase, 100))
	// The client's lookup, then two probes that each pass /readyz and
	// make a lookup.
	testkit.Eventually(t, "two probe lookups", func() bool { return f.Lookups.Load() >= 3 })
	time.Sleep(20 * time.Millisecond) // the second probe's answer is judged
	if s, st := g.BreakerStates()["hma"], g.Stats().Remotes["hma"]; s != "open" || st.Recoveries != 0 || f.ReadyChecks.Load() < 2 {
		t.Fatalf("breaker %s, stats %+v, %d readiness checks; want open, no recovery", s, st, f.ReadyChecks.Load())
	}
}
