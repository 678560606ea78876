package matcher

// The Guard's circuit breakers: one per remote backend (gobreaker), their
// configuration, state reports and the call that runs a remote through one.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// Breaker defaults.
const (
	DefaultBreakerConsecutiveFailures = 5
	DefaultBreakerFailureRatio        = 0.5
	DefaultBreakerMinRequests         = 20
	DefaultBreakerInterval            = time.Minute
	DefaultBreakerOpenTimeout         = 30 * time.Second
	DefaultBreakerHalfOpenMaxRequests = 1
	DefaultBreakerCallTimeout         = 2 * time.Second
)

// BreakerConfig configures the circuit breaker each remote backend sits
// behind. Zero values take the defaults above.
type BreakerConfig struct {
	// ConsecutiveFailures trips the breaker after this many failures in a
	// row (default 5).
	ConsecutiveFailures uint32
	// FailureRatio trips the breaker when at least this fraction (0..1] of
	// the calls in the current window failed (default 0.5) ...
	FailureRatio float64
	// MinRequests ... once the window holds at least this many calls
	// (default 20), so a few early failures do not trip it.
	MinRequests uint32
	// Interval is the closed-state window after which the counts behind
	// FailureRatio start afresh (default 1 min); without it an old burst of
	// failures would weigh on the ratio forever.
	Interval time.Duration
	// OpenTimeout is how long an open breaker refuses calls before letting
	// probes through (half-open); default 30 s. Remotes that implement
	// Prober are probed in the background meanwhile, from 1 s after the
	// breaker opens and at most 3 s apart, and their breaker closes as soon
	// as the probes succeed: a short outage does not cost OpenTimeout of
	// refusals.
	OpenTimeout time.Duration
	// HalfOpenMaxRequests is how many probes a half-open breaker lets
	// through; that many successes close it, one failure reopens it
	// (default 1).
	HalfOpenMaxRequests uint32
	// CallTimeout bounds each call to a backend, inside the breaker so a
	// slow backend counts as failing (default 2 s).
	CallTimeout time.Duration
}

type breakerEvent struct{ name, from, to string }

// newBreaker returns a closed breaker for r, configured from g.breaker.
func (g *Guard) newBreaker(r *guardRemote) *gobreaker.CircuitBreaker[Verdict] {
	b := g.breaker
	st := gobreaker.Settings{
		Name:        r.name,
		MaxRequests: b.HalfOpenMaxRequests,
		Interval:    b.Interval,
		Timeout:     b.OpenTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if c.ConsecutiveFailures >= b.ConsecutiveFailures {
				return true
			}
			// Requests counts abandoned calls too; they say nothing
			// about the backend.
			valid := c.Requests - min(c.TotalExclusions, c.Requests)
			return valid >= b.MinRequests && float64(c.TotalFailures)/float64(valid) >= b.FailureRatio
		},
		// A call abandoned because every caller went away is neither a
		// success nor a failure of the backend. The CallTimeout expiring
		// is not excluded: a backend that slow is failing.
		IsExcluded: func(err error) bool {
			var a *abandonedError
			return errors.As(err, &a)
		},
	}
	var cb *gobreaker.CircuitBreaker[Verdict]
	// gobreaker calls this under the breaker's lock: calling State() here
	// would deadlock and a slow listener would stall every lookup, so only
	// hand the event over, never blocking. r.mu is never held across I/O
	// or a breaker call.
	st.OnStateChange = func(_ string, from, to gobreaker.State) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.cb.Load() != cb {
			return // replaced by the recovery prober: history
		}
		g.report(r, from.String(), to.String())
	}
	cb = gobreaker.NewCircuitBreaker[Verdict](st)
	return cb
}

// report records a breaker state change of r, wakes the recovery prober when
// the breaker opens and hands the event to the dispatcher. r.mu is held.
func (g *Guard) report(r *guardRemote, from, to string) {
	r.reported = to
	if to != gobreaker.StateOpen.String() {
		// Half-open and closed each get the next failure logged: it says
		// why a probe failed, or that a healed backend failed again.
		// Cleared here, not when the event is logged, or a probe that
		// fails before the event is delivered would go unlogged.
		r.failureLogged.Store(false)
	} else if r.opened != nil {
		select {
		case r.opened <- struct{}{}:
		default: // already woken
		}
	}
	if g.events != nil {
		select {
		case g.events <- breakerEvent{r.name, from, to}:
		default:
			g.droppedEvents.Add(1)
		}
	}
}

// abandonedError marks a remote call whose callers all went away.
type abandonedError struct{ err error }

func (e *abandonedError) Error() string { return "abandoned by every caller: " + e.err.Error() }
func (e *abandonedError) Unwrap() error { return e.err }

// dispatch delivers breaker events outside the breakers' locks, in order.
func (g *Guard) dispatch() {
	defer g.wg.Done()
	for {
		select {
		case ev := <-g.events:
			g.emit(ev)
		case <-g.stop:
			for {
				select {
				case ev := <-g.events:
					g.emit(ev)
				default:
					return
				}
			}
		}
	}
}

func (g *Guard) emit(ev breakerEvent) {
	msg := "remote backend circuit breaker changed"
	fields := []zap.Field{zap.String("backend", ev.name), zap.String("from", ev.from), zap.String("to", ev.to)}
	if ev.to == gobreaker.StateOpen.String() {
		g.log.Warn(msg+": not consulting it until a probe succeeds", fields...)
	} else {
		g.log.Info(msg, fields...)
	}
	if g.onChange != nil {
		g.onChange(ev.name, ev.from, ev.to)
	}
}

// call runs one remote through its breaker with the call timeout inside the
// breaker, so a slow backend counts against it.
func (g *Guard) call(fctx context.Context, r *guardRemote, q *Query) (_ Verdict, err error) {
	defer func() {
		// gobreaker counts a panic as a failure and re-panics; it must not
		// take the process down from the shared call's goroutine, where no
		// HTTP server would recover it.
		if p := recover(); p != nil {
			r.failures.Add(1)
			err = fmt.Errorf("%w: %s: backend panicked: %v", ErrUnavailable, r.name, p)
		}
	}()
	v, err := r.cb.Load().Execute(func() (Verdict, error) {
		r.calls.Add(1)
		cctx, cancel := context.WithTimeout(fctx, g.callTimeout)
		defer cancel()
		start := time.Now()
		v, err := r.m.Match(cctx, *q)
		if err != nil && fctx.Err() != nil {
			return Verdict{}, &abandonedError{err}
		}
		if g.onCall != nil {
			g.onCall(r.name, time.Since(start))
		}
		return v, err
	})
	var ab *abandonedError
	switch {
	case err == nil:
		return v, nil
	case errors.As(err, &ab):
		r.abandoned.Add(1)
		return Verdict{}, err
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		r.rejected.Add(1)
		return Verdict{}, fmt.Errorf("%w: %s: circuit breaker open (backend failing, not consulted)", ErrUnavailable, r.name)
	}
	r.failures.Add(1)
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		r.timeouts.Add(1)
		if !errors.Is(err, ErrUnavailable) { // the backend's own timeout already says which
			err = &timeoutError{r.name, g.callTimeout}
		}
	case errors.Is(err, ErrBadResponse):
		r.malformed.Add(1)
	case errors.Is(err, ErrUnavailable):
	default:
		err = fmt.Errorf("%w: %s: %w", ErrUnavailable, r.name, err)
	}
	if r.failureLogged.CompareAndSwap(false, true) {
		g.log.Warn("remote backend failed; further failures are counted in metrics and logged again after its circuit breaker changes state",
			zap.String("backend", r.name), zap.Error(err))
	}
	return Verdict{}, err
}

// BreakerStates returns each remote's breaker state: "closed", "half-open"
// or "open".
func (g *Guard) BreakerStates() map[string]string {
	out := make(map[string]string, len(g.remotes))
	for _, r := range g.remotes {
		out[r.name] = r.cb.Load().State().String()
	}
	return out
}
