// Package learn learns from the moderators' quarantines. When an admin
// quarantines media in Synapse, Synapse refuses byte-identical copies
// only (by SHA-256). A Poller follows Synapse's quarantine feed, fetches
// each newly quarantined media with the admin token past its quarantine,
// hashes it exactly as the proxy hashes an upload (the proxy's own scan:
// same decoders, frames, orientation, composites and variants) and adds
// its hashes to a bank mediaguard owns (matcher.OwnedBank), so that
// re-encoded, resized or re-framed copies are refused before storage from
// then on. Taking media out of quarantine removes exactly what it added.
//
// One Poller writes one bank file; a server shares it across config
// reloads, and each running configuration lends it its scanner, matcher
// and admin credentials with Use.
//
// It must not import Caddy.
package learn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/internal/filelock"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// Scanner judges a stored file as the proxy judges an upload of the same
// bytes: mediaproxy.Proxy.ScanFile, the one hashing path.
type Scanner interface {
	ScanFile(ctx context.Context, f *os.File, size int64, contentType string) (mediaproxy.FileScan, error)
}

// Defaults of Settings.
const (
	// DefaultEvery is how often the feed is polled.
	DefaultEvery = 30 * time.Second
	// DefaultMaxAttempts is how many times a quarantined media that
	// cannot be fetched is tried before it is skipped.
	DefaultMaxAttempts = 8
	// DefaultFetchTimeout bounds one media's download and hashing.
	DefaultFetchTimeout = 5 * time.Minute
	// DefaultMaxSize is the largest media fetched (the proxy's default
	// max_upload_size: nothing larger can be uploaded through it).
	DefaultMaxSize = 100 << 20
	// maxBackoff bounds the wait between two attempts at one media.
	maxBackoff = time.Hour
	// commitEvery is how often a long page's learned media are written
	// to the bank before the page ends, so the first of a backlog is
	// refused without waiting for the hundredth.
	commitEvery = 2 * time.Second
)

// Config configures a Poller: what outlives a configuration reload.
type Config struct {
	// Path is the owned bank file the poller writes (created when
	// missing); the feed position is kept at CheckpointPath(Path). Each
	// Use brings its own logger.
	Path string
}

// Settings are what a running configuration lends the poller.
type Settings struct {
	// Bank is the bank's name, for logs.
	Bank string
	// Admin is Synapse's admin API: its URL is where media is fetched
	// from, directly (not through the proxy, which may be in front of
	// it), so it must serve the client API too, and its token must be a
	// server admin's. Media this token's user quarantined (mediaguard's
	// own quarantines) is not learned.
	Admin homeserver.AdminConfig
	// Every is how often the feed is polled (default DefaultEvery).
	Every time.Duration
	// Scanner hashes each fetched media: the running proxy.
	Scanner Scanner
	// Reload reloads the matcher reading the bank (Local.Reload), called
	// after each write of the bank file.
	Reload func() error
	// MinPDQQuality is the proxy's minimum PDQ quality: forms below it
	// are not banked.
	MinPDQQuality int
	// MaxSize is the largest media fetched (default DefaultMaxSize);
	// larger ones are skipped.
	MaxSize int64
	// TempDir is where a fetched media is held (0600) while it is
	// hashed; "" is the system temp dir. It is removed at once.
	TempDir string
	// MaxAttempts (default DefaultMaxAttempts) and FetchTimeout (default
	// DefaultFetchTimeout) bound the fetches of one media.
	MaxAttempts  int
	FetchTimeout time.Duration
	// Logger receives the poller's logs; nil discards them.
	Logger *zap.Logger
}

// Stats are a Poller's counters since it was made.
type Stats struct {
	// Learned and Unlearned count media added to and removed from the
	// bank; Duplicates, quarantines of media already learned (the feed
	// repeats records); Reused, media learned from the entries of a
	// byte-identical one (Synapse quarantines every copy of the same
	// bytes) without hashing it again.
	Learned, Unlearned, Duplicates, Reused int64
	// FetchRetries counts failed fetches to be tried again;
	// FetchSkipped, media given up on (logged as a warning).
	FetchRetries, FetchSkipped int64
	// Invalid counts feed records naming no usable media.
	Invalid int64
	// NotQuarantined counts quarantine records of media the homeserver
	// no longer has in quarantine (stale records), Own those of media
	// synapse_admin's own user quarantined: neither is learned.
	NotQuarantined, Own int64
	// Checkpoint is the feed position applied; Pending, the media
	// waiting for another fetch.
	Checkpoint int64
	Pending    int
	// FeedUp is whether the last poll of the feed was answered;
	// FeedMissing, whether the homeserver has no feed (Synapse older
	// than 1.152). LastPoll is the last answered poll.
	FeedUp, FeedMissing bool
	LastPoll            time.Time
	// Media is how many media the bank holds entries of.
	Media int
}

// Poller follows one homeserver's quarantine feed into one owned bank.
type Poller struct {
	path, cpPath string
	bank         *matcher.OwnedBank
	// unlock releases the bank file's lock (Close).
	unlock func()

	mu      sync.Mutex // guards cur, started and closed
	cur     *user
	started bool // the loop runs
	closed  bool

	// roundMu makes rounds one at a time and guards what they change.
	roundMu   sync.Mutex
	cp        checkpoint
	feedState string // "", "ok", "missing", "failing"

	learned, unlearned, duplicates, reused atomic.Int64
	retries, skipped, invalid              atomic.Int64
	notQuarantined, own                    atomic.Int64
	checkpointPos                          atomic.Int64
	pendingN                               atomic.Int64
	feedUp, feedMissing                    atomic.Bool
	lastPoll                               atomic.Int64 // unix nanoseconds

	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// user is one Use of the poller: a running configuration's settings.
type user struct {
	s     Settings
	admin *homeserver.Admin
	// self is the admin token's user (whoami), once known.
	self   string
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // rounds running with these settings
	once   sync.Once
}

// New opens the bank (creating its file when missing, so the matcher can
// load it) and the checkpoint. Nothing runs until Use.
func New(cfg Config) (*Poller, error) {
	p := &Poller{
		path: cfg.Path, cpPath: CheckpointPath(cfg.Path),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	// One writer per bank file, across processes too: two would rewrite
	// each other's entries away and both advance the checkpoint, so the
	// entries lost would never be learned again.
	unlock, err := filelock.TryLock(cfg.Path + ".lock")
	if errors.Is(err, filelock.ErrBusy) {
		return nil, fmt.Errorf("learn: another process is learning into %s (its .lock is held)", cfg.Path)
	}
	if err != nil {
		return nil, fmt.Errorf("learn: locking %s: %w", cfg.Path, err)
	}
	p.unlock = unlock
	p.bank, err = matcher.OpenOwnedBank(matcher.OwnedBankConfig{Path: cfg.Path, Writer: "learn_quarantines", OnWrite: p.reload})
	if err != nil {
		unlock()
		return nil, fmt.Errorf("learn: %w", err)
	}
	if p.cp, err = loadCheckpoint(p.cpPath); err != nil {
		unlock()
		return nil, err
	}
	p.checkpointPos.Store(p.cp.NextBatch)
	p.pendingN.Store(int64(len(p.cp.Pending)))
	return p, nil
}

// Path is the bank file.
func (p *Poller) Path() string { return p.path }

// Use lends the poller a running configuration's settings, replacing the
// previous ones, and polls at once (the first Use starts the polling).
// release takes them back: it ends a round running with them and waits
// for it, after which nothing of s is used; until another Use, the
// poller waits.
func (p *Poller) Use(s Settings) (release func(), err error) {
	u, err := newUser(s)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		u.cancel()
		return nil, errors.New("learn: poller closed")
	}
	p.cur = u
	if !p.started {
		// Under mu: Close, which takes it too, sees a loop it must
		// wait for or none at all.
		p.started = true
		go p.run()
	}
	p.mu.Unlock()
	p.kick()
	return func() {
		u.once.Do(func() {
			p.mu.Lock()
			if p.cur == u {
				p.cur = nil
			}
			p.mu.Unlock()
			u.cancel()
			u.wg.Wait()
		})
	}, nil
}

// newUser validates s and fills in its defaults.
func newUser(s Settings) (*user, error) {
	if s.Scanner == nil {
		return nil, errors.New("learn: no scanner")
	}
	admin, err := homeserver.NewAdmin(s.Admin)
	if err != nil {
		return nil, fmt.Errorf("learn: %w", err)
	}
	if s.Every <= 0 {
		s.Every = DefaultEvery
	}
	if s.MaxSize <= 0 {
		s.MaxSize = DefaultMaxSize
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = DefaultMaxAttempts
	}
	if s.FetchTimeout <= 0 {
		s.FetchTimeout = DefaultFetchTimeout
	}
	log := s.Logger
	if log == nil {
		log = zap.NewNop()
	}
	u := &user{s: s, admin: admin, log: log.With(zap.String("bank", s.Bank))}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	return u, nil
}

// kick makes the loop poll now.
func (p *Poller) kick() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Close stops polling, ending a round in progress, and waits for it. It
// may be called more than once.
func (p *Poller) Close() {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		if p.cur != nil {
			p.cur.cancel()
		}
		started := p.started
		p.mu.Unlock()
		close(p.stop)
		if started {
			<-p.done
		}
		p.unlock()
	})
}

// run polls with the current settings every Every, and at once when they
// change, until Close.
func (p *Poller) run() {
	defer close(p.done)
	for {
		p.mu.Lock()
		u := p.cur
		if u != nil {
			// Under mu: a release that has not yet taken cur waits
			// for this round; one that has, saw no round start.
			u.wg.Add(1)
		}
		p.mu.Unlock()
		var t *time.Timer
		var tick <-chan time.Time
		if u != nil {
			p.round(u)
			u.wg.Done()
			t = time.NewTimer(u.s.Every)
			tick = t.C
		}
		select {
		case <-p.stop:
			return
		case <-p.wake:
		case <-tick:
		}
		if t != nil {
			t.Stop()
		}
	}
}

// reload is the bank's OnWrite: the running matcher loads the new file
// now rather than at its next poll of the bank files.
func (p *Poller) reload() {
	p.mu.Lock()
	u := p.cur
	p.mu.Unlock()
	if u == nil || u.s.Reload == nil {
		return
	}
	if err := u.s.Reload(); err != nil {
		u.log.Error("learn: reloading the banks after writing the learned bank failed; the bank files are polled again within a second", zap.Error(err))
	}
}

// Stats returns the counters.
func (p *Poller) Stats() Stats {
	s := Stats{
		Learned: p.learned.Load(), Unlearned: p.unlearned.Load(), Duplicates: p.duplicates.Load(), Reused: p.reused.Load(),
		FetchRetries: p.retries.Load(), FetchSkipped: p.skipped.Load(), Invalid: p.invalid.Load(),
		NotQuarantined: p.notQuarantined.Load(), Own: p.own.Load(),
		Checkpoint: p.checkpointPos.Load(), Pending: int(p.pendingN.Load()),
		FeedUp: p.feedUp.Load(), FeedMissing: p.feedMissing.Load(), Media: p.bank.Len(),
	}
	if ns := p.lastPoll.Load(); ns != 0 {
		s.LastPoll = time.Unix(0, ns)
	}
	return s
}
