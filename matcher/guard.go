package matcher

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// FailPolicy says what the Guard answers when a remote backend cannot be
// consulted.
type FailPolicy int

// Fail policies.
const (
	// FailOpen allows the media, marked Unscanned with a note naming the
	// backend: availability of the homeserver over completeness of the
	// scan. It is the default.
	FailOpen FailPolicy = iota
	// FailClosed returns an error wrapping ErrUnavailable, which callers
	// turn into a 503: nothing passes unscanned.
	FailClosed
)

// String returns "open" or "closed".
func (p FailPolicy) String() string {
	switch p {
	case FailOpen:
		return "open"
	case FailClosed:
		return "closed"
	}
	return fmt.Sprintf("FailPolicy(%d)", int(p))
}

// ParseFailPolicy reads "open" or "closed" (as in config files).
func ParseFailPolicy(s string) (FailPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "open", "fail_open", "fail-open":
		return FailOpen, nil
	case "closed", "fail_closed", "fail-closed":
		return FailClosed, nil
	}
	return 0, fmt.Errorf("fail policy %q: want open or closed", s)
}

// LocalBackend names the local banks in GuardConfig.OnBackendCall. Remote
// names carry a kind prefix ("hma:", "service:"), so it cannot clash.
const LocalBackend = "local"

// Remote is one remote backend consulted by the Guard, in order.
type Remote struct {
	// Name identifies the backend in breaker states, stats and notes; it
	// must be unique within a Guard.
	Name string
	// Matcher is the backend (an *HMA, a *Service, ...).
	Matcher Matcher
	// Policy is the backend's mode (report-only turns its matches into
	// would-blocks) and category.
	Policy BackendPolicy
}

// GuardConfig configures a Guard.
type GuardConfig struct {
	// Local is consulted first for every query, never behind a breaker or
	// the fail policy, and never cached; nil means no local banks.
	Local Matcher
	// Remotes are consulted in order after Local finds nothing; the first
	// match wins.
	Remotes []Remote
	// FailPolicy applies when a remote cannot be consulted; default
	// FailOpen.
	FailPolicy FailPolicy
	// Breaker configures each remote's circuit breaker.
	Breaker BreakerConfig
	// Cache configures the remote verdict cache.
	Cache CacheConfig
	// OnBreakerChange, when set, is told of every breaker state change
	// ("closed", "half-open", "open"). It runs on the Guard's own
	// goroutine, in order, never under a breaker's lock, so it may call
	// BreakerStates; it should not block for long. Changes are dropped
	// (and counted) if it falls far behind.
	OnBreakerChange func(name string, from, to string)
	// OnBackendCall, when set, is told how long each backend took to
	// answer one query: the local banks (named LocalBackend) on every
	// Match, and each remote call its breaker let through, failures and
	// timeouts included (cache hits, refusals by an open breaker and
	// calls every caller abandoned are not calls). It runs on the
	// caller's goroutine and should be quick.
	OnBackendCall func(backend string, took time.Duration)
	// Logger receives breaker changes and cache-full warnings; nil logs
	// nothing.
	Logger *zap.Logger
}

// Guard is the Matcher the proxy and the lookup API use: local banks first,
// then remote backends, each behind a circuit breaker, with a bounded cache
// of remote verdicts, one shared remote call per distinct query in flight,
// and the fail policy deciding what an unavailable remote means.
type Guard struct {
	local       Matcher
	remotes     []*guardRemote
	policy      FailPolicy
	callTimeout time.Duration

	cache      *gocache.Cache // nil when disabled
	matchTTL   time.Duration
	missTTL    time.Duration
	maxEntries int
	setMu      sync.Mutex // makes "count, then set" atomic so the cap holds
	flights    flightGroup

	log      *zap.Logger
	onChange func(name, from, to string)
	onCall   func(backend string, took time.Duration)
	events   chan breakerEvent // nil when nobody listens

	breaker BreakerConfig // with defaults applied, for new breakers
	// probeFirst and probeMax pace the recovery probes (tests shorten
	// them).
	probeFirst, probeMax time.Duration

	stop chan struct{}
	// bg is cancelled by Close: the remotes' own background checks
	// (Watch) and recovery probes run on it.
	bg        context.Context
	bgCancel  context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
	closed    atomic.Bool

	cacheHits, cacheMisses, cacheFull atomic.Uint64
	failOpen, failClosed              atomic.Uint64
	droppedEvents                     atomic.Uint64
	lastFullWarn                      atomic.Int64
}

// guardRemote is one remote with its breaker and counters.
type guardRemote struct {
	name   string
	m      Matcher
	policy BackendPolicy
	// cb is the breaker. The recovery prober replaces an open one with a
	// fresh, closed breaker (gobreaker has no reset).
	cb atomic.Pointer[gobreaker.CircuitBreaker[Verdict]]
	// mu orders the breakers' state reports with a replacement, so a
	// replaced breaker's late changes are dropped rather than reported
	// after the new one's; reported is the last state reported.
	mu       sync.Mutex
	reported string
	// opened wakes the recovery prober when the breaker opens; nil when
	// the remote is not probed.
	opened chan struct{}

	calls, failures, rejected, abandoned atomic.Uint64
	// probes counts recovery probes, recoveries the breakers they closed.
	probes, recoveries atomic.Uint64
	// failures by kind; failures is their sum.
	timeouts, malformed atomic.Uint64
	// failureLogged is set by the first failure logged while the breaker
	// is closed and cleared when it closes again, so a dead backend costs
	// one log line per breaker transition rather than one per request.
	failureLogged atomic.Bool
}

// NewGuard checks the config, applies defaults and starts the Guard's
// background goroutines (cache janitor, breaker-change dispatcher, the
// remotes' Watch); Close stops them.
func NewGuard(cfg GuardConfig) (*Guard, error) {
	b := cfg.Breaker
	if b.ConsecutiveFailures == 0 {
		b.ConsecutiveFailures = DefaultBreakerConsecutiveFailures
	}
	if b.FailureRatio == 0 {
		b.FailureRatio = DefaultBreakerFailureRatio
	}
	if b.FailureRatio < 0 || b.FailureRatio > 1 {
		return nil, fmt.Errorf("guard: breaker failure ratio %v not in (0,1]", b.FailureRatio)
	}
	if b.MinRequests == 0 {
		b.MinRequests = DefaultBreakerMinRequests
	}
	if b.Interval == 0 {
		b.Interval = DefaultBreakerInterval
	}
	if b.OpenTimeout == 0 {
		b.OpenTimeout = DefaultBreakerOpenTimeout
	}
	if b.HalfOpenMaxRequests == 0 {
		b.HalfOpenMaxRequests = DefaultBreakerHalfOpenMaxRequests
	}
	if b.CallTimeout == 0 {
		b.CallTimeout = DefaultBreakerCallTimeout
	}
	if b.Interval < 0 || b.OpenTimeout < 0 || b.CallTimeout < 0 {
		return nil, errors.New("guard: negative breaker duration")
	}
	switch cfg.FailPolicy {
	case FailOpen, FailClosed:
	default:
		return nil, fmt.Errorf("guard: unknown fail policy %d", int(cfg.FailPolicy))
	}

	g := &Guard{
		local:       cfg.Local,
		policy:      cfg.FailPolicy,
		callTimeout: b.CallTimeout,
		matchTTL:    cfg.Cache.MatchTTL,
		missTTL:     cfg.Cache.MissTTL,
		maxEntries:  cfg.Cache.MaxEntries,
		log:         cfg.Logger,
		onChange:    cfg.OnBreakerChange,
		onCall:      cfg.OnBackendCall,
		stop:        make(chan struct{}),
		breaker:     b,
		probeFirst:  DefaultProbeFirst,
		probeMax:    DefaultProbeMax,
	}
	g.bg, g.bgCancel = context.WithCancel(context.Background())
	if g.matchTTL == 0 {
		g.matchTTL = DefaultCacheMatchTTL
	}
	if g.missTTL == 0 {
		g.missTTL = DefaultCacheMissTTL
	}
	if g.maxEntries == 0 {
		g.maxEntries = DefaultCacheMaxEntries
	}
	if g.log == nil {
		g.log = zap.NewNop()
	}
	if g.onChange != nil || cfg.Logger != nil {
		g.events = make(chan breakerEvent, 64)
	}

	seen := make(map[string]bool)
	for i, r := range cfg.Remotes {
		if r.Name == "" || r.Matcher == nil {
			return nil, fmt.Errorf("guard: remote %d needs a name and a matcher", i)
		}
		if seen[r.Name] {
			return nil, fmt.Errorf("guard: remote name %q used twice", r.Name)
		}
		seen[r.Name] = true
		if _, err := ParseMode(r.Policy.Mode, ModeEnforce); err != nil {
			return nil, fmt.Errorf("guard: remote %s: %w", r.Name, err)
		}
		if !ValidCategory(r.Policy.Category) {
			return nil, fmt.Errorf("guard: remote %s: category must be one of %v, not %q", r.Name, Categories, r.Policy.Category)
		}
		gr := &guardRemote{name: r.Name, m: r.Matcher, policy: r.Policy, reported: gobreaker.StateClosed.String()}
		if _, ok := r.Matcher.(Prober); ok && b.OpenTimeout > g.probeFirst {
			gr.opened = make(chan struct{}, 1)
		}
		gr.cb.Store(g.newBreaker(gr))
		g.remotes = append(g.remotes, gr)
	}

	if g.maxEntries > 0 && len(g.remotes) > 0 && (g.matchTTL > 0 || g.missTTL > 0) {
		// No go-cache janitor: it is stopped only by a finalizer, so every
		// config reload would leave one running until some later GC. Our
		// own janitor stops in Close.
		g.cache = gocache.New(gocache.NoExpiration, 0)
		interval := min(max(min(pos(g.matchTTL), pos(g.missTTL)), time.Second), time.Minute)
		g.wg.Add(1)
		go g.janitor(interval)
	}
	if g.events != nil {
		g.wg.Add(1)
		go g.dispatch()
	}
	g.startWatchers()
	g.startProbers()
	return g, nil
}

// pos maps non-positive durations to "never", for taking a minimum.
func pos(d time.Duration) time.Duration {
	if d <= 0 {
		return time.Duration(1<<63 - 1)
	}
	return d
}

// Close stops the Guard's goroutines and empties the cache. Match keeps
// working afterwards, uncached, so requests in flight during a config
// reload finish normally. Close is idempotent and does not close the
// backends.
func (g *Guard) Close() error {
	g.closeOnce.Do(func() {
		g.closed.Store(true)
		close(g.stop)
		g.bgCancel()
		g.wg.Wait()
		if g.cache != nil {
			g.setMu.Lock() // no store may slip in after the flush
			g.cache.Flush()
			g.setMu.Unlock()
		}
	})
	return nil
}

// Match consults the local banks, then (on no local match) the remotes
// through the cache, the shared in-flight calls and the breakers, and
// applies the fail policy. The caller's cancellation is returned as
// ctx.Err().
func (g *Guard) Match(ctx context.Context, q Query) (Verdict, error) {
	var local Verdict
	if g.local != nil {
		if name, ok := allowedBy(g.local, &q); ok {
			// Before any list or backend is asked: an allowlisted file
			// passes whatever they would say (see BankConfig.Allow).
			return allowedVerdict(name), nil
		}
		start := time.Now()
		v, err := g.local.Match(ctx, q)
		if g.onCall != nil {
			g.onCall(LocalBackend, time.Since(start))
		}
		if err != nil {
			if ctx.Err() != nil {
				return Verdict{}, ctx.Err()
			}
			return Verdict{}, fmt.Errorf("guard: local banks: %w", err)
		}
		if v.Match {
			return v, nil
		}
		local = v
	}
	if len(g.remotes) == 0 {
		return local, nil
	}
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	rr, err := g.remote(ctx, &q)
	if err != nil {
		return Verdict{}, err
	}
	return g.decide(local, rr)
}

// remoteResult is what the remotes answered for one query.
type remoteResult struct {
	// v holds the first match's fields and the evidence and notes of
	// every remote consulted.
	v        Verdict
	failures []remoteFailure
}

type remoteFailure struct {
	name string
	err  error
}

// remote answers from the cache or joins/starts the one in-flight call for
// this query.
func (g *Guard) remote(ctx context.Context, q *Query) (remoteResult, error) {
	key := cacheKey(q)
	if g.cache != nil && !g.closed.Load() {
		if x, ok := g.cache.Get(key); ok {
			g.cacheHits.Add(1)
			return remoteResult{v: x.(Verdict)}, nil
		}
		g.cacheMisses.Add(1)
	}
	qc := *q
	return g.flights.do(ctx, key, func(fctx context.Context) remoteResult {
		// A call for this key may have finished between our cache miss
		// and starting this one.
		if g.cache != nil {
			if x, ok := g.cache.Get(key); ok {
				return remoteResult{v: x.(Verdict)}
			}
		}
		rr := g.consultRemotes(fctx, &qc)
		if len(rr.failures) == 0 && fctx.Err() == nil {
			g.store(key, rr.v)
		}
		return rr
	})
}

// consultRemotes asks each remote in order until one matches. fctx is
// cancelled only when every caller waiting for this query has gone away.
func (g *Guard) consultRemotes(fctx context.Context, q *Query) (rr remoteResult) {
	var wouldBlock *Verdict
	defer func() {
		if !rr.v.Match && wouldBlock != nil {
			summarise(&rr.v, *wouldBlock)
			rr.v.WouldBlock = true
		}
	}()
	for _, r := range g.remotes {
		if fctx.Err() != nil {
			return rr
		}
		v, err := g.call(fctx, r, q)
		if err != nil {
			rr.failures = append(rr.failures, remoteFailure{r.name, err})
			continue
		}
		v = r.policy.apply(v)
		if v.WouldBlock && wouldBlock == nil {
			// A report-only backend's match does not end the search:
			// an enforcing backend after it may still block.
			wouldBlock = &v
		}
		rr.v.Evidence = append(rr.v.Evidence, v.Evidence...)
		rr.v.Notes = append(rr.v.Notes, v.Notes...)
		if v.Match {
			ev, notes := rr.v.Evidence, rr.v.Notes
			rr.v = v
			rr.v.Evidence, rr.v.Notes = ev, notes
			// A match is definitive even if an earlier remote failed:
			// blocking is right under either policy.
			rr.failures = nil
			return rr
		}
	}
	return rr
}

// decide merges the local and remote answers and applies the fail policy.
func (g *Guard) decide(local Verdict, rr remoteResult) (Verdict, error) {
	out := local
	// Fresh slices: rr.v may be shared with the cache and other callers.
	out.Evidence = concat(local.Evidence, rr.v.Evidence)
	out.Notes = concat(local.Notes, rr.v.Notes)
	if rr.v.Match {
		// An enforcing remote's match wins over local review evidence.
		summarise(&out, rr.v)
		out.Match, out.WouldBlock, out.Review, out.Quality = true, false, false, 0
		return out, nil
	}
	if rr.v.WouldBlock && !out.WouldBlock {
		summarise(&out, rr.v)
		out.WouldBlock, out.Review, out.Quality = true, false, 0
	}
	if len(rr.failures) == 0 {
		return out, nil
	}
	names := make([]string, len(rr.failures))
	errs := make(joinedErrors, len(rr.failures))
	for i, f := range rr.failures {
		names[i], errs[i] = f.name, f.err
	}
	if g.policy == FailClosed {
		g.failClosed.Add(1)
		return Verdict{}, fmt.Errorf("%w: fail-closed, not consulted: %s: %w", ErrUnavailable, strings.Join(names, ", "), errs)
	}
	g.failOpen.Add(1)
	out.Unscanned = true
	for _, f := range rr.failures {
		out.Notes = append(out.Notes, fmt.Sprintf("remote %s not consulted, allowed unscanned (fail-open): %v", f.name, f.err))
	}
	if out.Reason == "" {
		out.Reason = "no match in the backends consulted; not scanned by " + strings.Join(names, ", ") + " (unavailable, fail-open)"
	}
	return out, nil
}

// summarise copies src's summary of its best evidence into dst.
func summarise(dst *Verdict, src Verdict) {
	dst.Bank = src.Bank
	dst.HashType = src.HashType
	dst.MatchedHash = src.MatchedHash
	dst.Distance = src.Distance
	dst.Confidence = src.Confidence
	dst.Source = src.Source
	dst.Category = src.Category
	dst.Form = src.Form
	dst.Variant = src.Variant
	dst.Reason = src.Reason
}

// joinedErrors is errors.Join on one line, for log-friendly messages.
type joinedErrors []error

func (e joinedErrors) Error() string {
	parts := make([]string, len(e))
	for i, err := range e {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (e joinedErrors) Unwrap() []error { return e }

// concat returns a new slice holding a then b (nil when both are empty).
func concat[T any](a, b []T) []T {
	if len(a)+len(b) == 0 {
		return nil
	}
	out := make([]T, 0, len(a)+len(b))
	return append(append(out, a...), b...)
}

// RemoteStats are one remote backend's counters.
type RemoteStats struct {
	// Calls is the number of calls the breaker let through.
	Calls uint64
	// Failures is the number of those that failed (error, bad response,
	// timeout); they count against the breaker.
	Failures uint64
	// Timeouts and Malformed break Failures down: calls that got no answer
	// within the call timeout, and answers that were not the backend's
	// protocol (ErrBadResponse). The rest are errors the backend or the
	// network reported (refused connection, HTTP 5xx, index not loaded).
	Timeouts, Malformed uint64
	// Rejected is the number of calls refused by an open breaker.
	Rejected uint64
	// Abandoned is the number of calls given up because every caller went
	// away; the breaker ignores them.
	Abandoned uint64
	// Probes counts recovery probes made while the breaker was open;
	// Recoveries the times they closed it before OpenTimeout.
	Probes, Recoveries uint64
}

// GuardStats are the Guard's counters since it was created, for metrics.
type GuardStats struct {
	// CacheHits and CacheMisses count remote-verdict cache lookups.
	CacheHits, CacheMisses uint64
	// CacheEntries is the number of cached verdicts now (expired ones
	// included until the janitor runs).
	CacheEntries int
	// CacheFull counts verdicts not cached because the cache was full.
	CacheFull uint64
	// SharedCalls counts lookups answered by joining an identical call
	// already in flight.
	SharedCalls uint64
	// FailOpen counts lookups allowed unscanned; FailClosed counts
	// lookups refused because a remote was unavailable.
	FailOpen, FailClosed uint64
	// DroppedBreakerEvents counts breaker changes not delivered because
	// OnBreakerChange fell behind.
	DroppedBreakerEvents uint64
	// Remotes holds each remote's counters by name.
	Remotes map[string]RemoteStats
}

// Stats returns a snapshot of the counters.
func (g *Guard) Stats() GuardStats {
	s := GuardStats{
		CacheHits:            g.cacheHits.Load(),
		CacheMisses:          g.cacheMisses.Load(),
		CacheFull:            g.cacheFull.Load(),
		SharedCalls:          g.flights.joined.Load(),
		FailOpen:             g.failOpen.Load(),
		FailClosed:           g.failClosed.Load(),
		DroppedBreakerEvents: g.droppedEvents.Load(),
		Remotes:              make(map[string]RemoteStats, len(g.remotes)),
	}
	if g.cache != nil {
		s.CacheEntries = g.cache.ItemCount()
	}
	for _, r := range g.remotes {
		s.Remotes[r.name] = RemoteStats{
			Calls:      r.calls.Load(),
			Failures:   r.failures.Load(),
			Timeouts:   r.timeouts.Load(),
			Malformed:  r.malformed.Load(),
			Rejected:   r.rejected.Load(),
			Abandoned:  r.abandoned.Load(),
			Probes:     r.probes.Load(),
			Recoveries: r.recoveries.Load(),
		}
	}
	return s
}
