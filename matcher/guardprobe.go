package matcher

import (
	"context"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// Recovery probe pacing. The first probe comes 1 s after the breaker opens,
// later ones 1.5 times further apart, never more than 3 s: a backend back
// from an outage is found within 3 s (5 s if a probe hangs for the 2 s call
// timeout just before), where the breaker alone would refuse lookups for
// its whole OpenTimeout (30 s by default). One cheap request every 3 s is
// nothing to a backend that is down or starting.
const (
	DefaultProbeFirst = time.Second
	DefaultProbeMax   = 3 * time.Second
	probeBackoff      = 1.5
)

// Prober is implemented by remotes that can tell cheaply whether they
// answer lookups again. While such a remote's breaker is open the Guard
// probes it in the background, and closes the breaker as soon as probes
// succeed rather than after OpenTimeout. A nil error means "lookups will
// work"; Probe must respect ctx.
type Prober interface {
	Probe(ctx context.Context) error
}

// startProbers runs a recovery prober for each probed remote.
func (g *Guard) startProbers() {
	for _, r := range g.remotes {
		if r.opened == nil {
			continue
		}
		p := r.m.(Prober)
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			for {
				select {
				case <-g.bg.Done():
					return
				case <-r.opened:
				}
				g.probeUntilRecovered(r, p)
			}
		}()
	}
}

// probeUntilRecovered probes r with backoff while the breaker that just
// opened stays open. It stops when the probes succeed (and closes the
// breaker), when the breaker left the open state on its own (OpenTimeout
// passed: a real request is the half-open probe; if that fails, the breaker
// reopens and wakes us again) or when the Guard closes.
func (g *Guard) probeUntilRecovered(r *guardRemote, p Prober) {
	cb := r.cb.Load()
	wait := g.probeFirst
	for {
		t := time.NewTimer(wait)
		select {
		case <-g.bg.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if r.cb.Load() != cb || cb.State() != gobreaker.StateOpen {
			return
		}
		if g.probe(r, p) {
			g.replaceBreaker(r, cb)
			return
		}
		wait = min(time.Duration(float64(wait)*probeBackoff), g.probeMax)
	}
}

// probe runs as many probes in a row as a half-open breaker would need
// successes (HalfOpenMaxRequests), each bounded by the call timeout, and
// reports whether all succeeded.
func (g *Guard) probe(r *guardRemote, p Prober) bool {
	for range g.breaker.HalfOpenMaxRequests {
		r.probes.Add(1)
		ctx, cancel := context.WithTimeout(g.bg, g.callTimeout)
		err := p.Probe(ctx)
		cancel()
		if err != nil {
			return false
		}
	}
	return true
}

// replaceBreaker swaps r's open breaker old for a fresh, closed one and
// reports the change as the half-open round the probes stood in for.
// Calls still running on old finish there and are not counted again.
func (g *Guard) replaceBreaker(r *guardRemote, old *gobreaker.CircuitBreaker[Verdict]) {
	nb := g.newBreaker(r)
	r.mu.Lock()
	if !r.cb.CompareAndSwap(old, nb) {
		r.mu.Unlock()
		return
	}
	r.recoveries.Add(1)
	open, half, closed := gobreaker.StateOpen.String(), gobreaker.StateHalfOpen.String(), gobreaker.StateClosed.String()
	if r.reported == open {
		g.report(r, open, half)
	}
	if r.reported == half {
		g.report(r, half, closed)
	}
	r.mu.Unlock()
	g.log.Info("remote backend answers probes again: circuit breaker closed before open_timeout", zap.String("backend", r.name))
}
