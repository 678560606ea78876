package matcher

// The Guard's single flight: one shared remote call per distinct query in
// flight.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
)

// flightGroup shares one remote call among concurrent identical queries: a
// burst of the same upload (a meme in a big room) must not become a burst
// at HMA. Unlike x/sync/singleflight, the call runs on a context of its own
// that is cancelled only when every waiting caller has gone away, so one
// impatient client cannot fail the others.
type flightGroup struct {
	mu sync.Mutex
	m  map[string]*flight
	// joined counts callers that joined a call already in flight.
	joined atomic.Uint64
}

type flight struct {
	done    chan struct{}
	res     remoteResult
	waiters int // guarded by flightGroup.mu
	cancel  context.CancelFunc
}

// do returns the result of fn for key, running fn at most once at a time per
// key, or ctx.Err() if ctx ends first.
func (g *flightGroup) do(ctx context.Context, key string, fn func(context.Context) remoteResult) (remoteResult, error) {
	g.mu.Lock()
	f, ok := g.m[key]
	if ok {
		f.waiters++
		g.joined.Add(1)
	} else {
		// WithoutCancel keeps the first caller's values (trace ids) but
		// not its cancellation or deadline.
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &flight{done: make(chan struct{}), waiters: 1, cancel: cancel}
		if g.m == nil {
			g.m = make(map[string]*flight)
		}
		g.m[key] = f
		go g.run(key, f, fctx, fn)
	}
	g.mu.Unlock()

	select {
	case <-f.done:
		return f.res, nil
	case <-ctx.Done():
		g.mu.Lock()
		f.waiters--
		if f.waiters == 0 {
			// Nobody wants the answer: stop the call and let the next
			// caller start afresh rather than join a cancelled one.
			if g.m[key] == f {
				delete(g.m, key)
			}
			f.cancel()
		}
		g.mu.Unlock()
		return remoteResult{}, ctx.Err()
	}
}

func (g *flightGroup) run(key string, f *flight, fctx context.Context, fn func(context.Context) remoteResult) {
	defer f.cancel()
	defer close(f.done)
	defer func() {
		// Backend panics are recovered in call; this catches our own.
		if p := recover(); p != nil {
			f.res = remoteResult{failures: []remoteFailure{{"guard", fmt.Errorf("%w: remote backend panicked: %v", ErrUnavailable, p)}}}
		}
		g.mu.Lock()
		if g.m[key] == f {
			delete(g.m, key)
		}
		g.mu.Unlock()
	}()
	f.res = fn(fctx)
}
