package matcher

import (
	"context"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"
)

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
		Remotes: []Remote{{Name: "hma", Matcher: backend}},
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
		g := newTestGuard(t, GuardConfig{Remotes: []Remote{{Name: "hma", Matcher: backend}}, FailPolicy: policy})
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
	g := newTestGuard(t, GuardConfig{Local: local, Remotes: []Remote{{Name: "hma", Matcher: remote}}})
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
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{Name: "hma", Matcher: backend}}, Cache: CacheConfig{MaxEntries: 3}})
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
