package matcher

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

// Concurrent identical lookups share one remote call.
func TestGuardSingleflight(t *testing.T) {
	release := make(chan struct{})
	backend := newFakeBackend(func(context.Context, Query) (Verdict, error) {
		<-release
		return remoteMatch("hma:B"), nil
	})
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{Name: "hma", Matcher: backend}}, Cache: noCache})
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
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{Name: "hma", Matcher: backend}}, Cache: noCache})
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
