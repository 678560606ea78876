package ncmec

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Runner syncs one bank path on a schedule, on one goroutine. Configs
// attach to it and detach again: it syncs with the newest attached config,
// so a server whose old and new configurations overlap during a reload
// runs one sync of the path, not two, and a reload that is rolled back
// (the new config detaching first) goes back to the old config.
type Runner struct {
	path string

	mu      sync.Mutex
	atts    []*Attachment
	stats   Stats
	fails   int // consecutive failures
	started bool
	closed  bool

	kick   chan struct{}
	stop   chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
}

// Attachment is one config attached to a Runner.
type Attachment struct {
	r   *Runner
	cfg Config
}

// Stats is a Runner's state, for metrics and logs.
type Stats struct {
	// Bank is the bank's name (the newest config's).
	Bank string
	// LastAttempt and LastSuccess are when a sync last started and last
	// finished without error.
	LastAttempt, LastSuccess time.Time
	// LastError is the last sync's error, "" after a success.
	LastError string
	// Syncs and Failures count the syncs run and those that failed.
	Syncs, Failures uint64
	// Through is the checkpoint: every change NCMEC made up to it is in
	// the bank.
	Through time.Time
	// Entries and Counts describe the bank file in place.
	Entries int
	Counts  Counts
	// Running is true while a sync runs.
	Running bool
}

// NewRunner returns a Runner for the bank at path, its stats read from
// the checkpoint there. Nothing runs until a config attaches.
func NewRunner(path string) *Runner {
	r := &Runner{path: path, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	if ck, ok, err := LoadCheckpoint(path); err == nil && ok {
		r.stats.Through, r.stats.Entries, r.stats.Counts, r.stats.LastSuccess = ck.Through, ck.Entries, ck.Counts, ck.SyncedAt
	}
	return r
}

// Attach makes cfg the config the Runner syncs with, starting it on the
// first attachment, and asks for a sync at once.
func (r *Runner) Attach(cfg Config) (*Attachment, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Path != r.path {
		return nil, fmt.Errorf("ncmec: config for %s attached to the runner of %s", cfg.Path, r.path)
	}
	a := &Attachment{r: r, cfg: cfg.withDefaults()}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, errors.New("ncmec: runner closed")
	}
	r.atts = append(r.atts, a)
	r.stats.Bank = cfg.Name
	if !r.started {
		r.started = true
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel = cancel
		go r.loop(ctx)
	}
	r.mu.Unlock()
	r.Kick()
	return a, nil
}

// Detach removes the config; the Runner goes on with the newest one
// still attached, and idles when none is. It may be called more than
// once.
func (a *Attachment) Detach() {
	r := a.r
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, b := range r.atts {
		if b == a {
			r.atts = append(r.atts[:i], r.atts[i+1:]...)
			break
		}
	}
	if n := len(r.atts); n > 0 {
		r.stats.Bank = r.atts[n-1].cfg.Name
	}
}

// Kick asks for a sync now (or as soon as the running one ends).
func (r *Runner) Kick() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Close stops the Runner: a sync in progress is cancelled (leaving the
// bank and checkpoint as its last whole window left them) and waited for.
// It may be called more than once.
func (r *Runner) Close() error {
	r.mu.Lock()
	started := r.started
	if !r.closed {
		r.closed = true
		close(r.stop)
		if r.cancel != nil {
			r.cancel()
		}
	}
	r.mu.Unlock()
	if started {
		<-r.done
	}
	return nil
}

// Stats returns the Runner's state.
func (r *Runner) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

func (r *Runner) active() (Config, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.atts) == 0 {
		return Config{}, false
	}
	return r.atts[len(r.atts)-1].cfg, true
}

func (r *Runner) loop(ctx context.Context) {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.kick:
		case <-timer.C:
		}
		cfg, ok := r.active()
		if !ok {
			continue // idle until a config attaches (and kicks)
		}
		timer.Stop()
		timer.Reset(r.once(ctx, cfg))
	}
}

// once runs one sync and returns how long to wait for the next.
func (r *Runner) once(ctx context.Context, cfg Config) time.Duration {
	log := cfg.Logger.With(zap.String("bank", cfg.Name))
	r.mu.Lock()
	r.stats.Running, r.stats.LastAttempt = true, time.Now()
	r.mu.Unlock()
	started := time.Now()
	cfg.onCommit = func(res Result) {
		r.mu.Lock()
		r.stats.Through, r.stats.Entries, r.stats.Counts = res.Through, res.Entries, res.Counts
		r.mu.Unlock()
	}
	res, err := Sync(ctx, cfg)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Running = false
	switch {
	case errors.Is(err, ErrBusy):
		log.Info("ncmec sync skipped: another sync of this bank is running", zap.String("path", cfg.Path))
		return cfg.Every
	case err != nil && ctx.Err() != nil:
		return cfg.Every // closing
	case err != nil:
		r.stats.Syncs++
		r.stats.Failures++
		r.stats.LastError = err.Error()
		r.fails++
		wait := min(cfg.Every, 30*time.Second<<min(r.fails-1, 10))
		log.Error("ncmec sync failed; the bank stays as its last whole window left it", zap.Error(err),
			zap.Time("through", r.stats.Through), zap.Int("commits", res.Commits), zap.Duration("retry_in", wait))
		return wait
	}
	r.stats.Syncs++
	r.stats.LastError, r.fails = "", 0
	r.stats.LastSuccess = time.Now()
	if res.Commits > 0 {
		r.stats.Through, r.stats.Entries, r.stats.Counts = res.Through, res.Entries, res.Counts
	}
	log.Info("ncmec sync done", zap.Time("through", res.Through), zap.Int("windows", res.Windows), zap.Int("commits", res.Commits), zap.Int("pages", res.Pages),
		zap.Int("read", res.Read), zap.Int("changes", res.Changes), zap.Int("entries", res.Entries), zap.Duration("took", time.Since(started)))
	return cfg.Every
}

// Check asks NCMEC who the config's credentials belong to (GET
// /v2/status), changing nothing: for `mediaguard doctor`.
func Check(ctx context.Context, cfg Config) (Status, error) {
	if err := cfg.Validate(); err != nil {
		return Status{}, err
	}
	cfg = cfg.withDefaults()
	cfg.Attempts = 1
	c, err := newClient(&cfg)
	if err != nil {
		return Status{}, err
	}
	return c.status(ctx)
}
