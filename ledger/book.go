package ledger

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/matcher"
)

// metaConsistent names the meta value holding the bank fingerprint every
// verdict in the store is known to hold against: each retro-scan moves it
// from the fingerprint before a bank change to the one after.
const metaConsistent = "consistent_banks"

// BookConfig configures a Book.
type BookConfig struct {
	// Store keeps the records. It is the caller's: Close leaves it open.
	Store Store
	// Matcher re-derives a verdict from stored digests when the banks
	// changed since it was reached (the guard: local banks, then remote
	// backends through its cache and breaker). Required.
	Matcher matcher.Matcher
	// Fingerprint returns the local banks' fingerprint now
	// (matcher.Local.Fingerprint). Required.
	Fingerprint func() string
	// Profile names how media is hashed here (decoders installed,
	// pdq_search, dihedral, max_pixels, the undecodable policy). A
	// record's Banks is its banks' fingerprint, ProfileSep and the
	// profile it was hashed under; one hashed under another profile is
	// judged from its bytes again.
	Profile string
	// Remote is true when remote backends are asked too. Their lists
	// change without telling, so a stored clean verdict is asked again
	// (digests only, through the guard's cache) rather than trusted
	// because the local banks did not change.
	Remote bool
	// Retention drops records not seen for this long; 0 keeps them.
	Retention time.Duration
	// Writers is how many goroutines write records (default 4): the
	// embedded store coalesces concurrent writes into one commit.
	Writers int
	// QueueSize bounds the records waiting to be written (default
	// 10000); beyond it a record is dropped, logged and counted, never
	// waited for.
	QueueSize int
	// Logger receives structured logs; nil discards them.
	Logger *zap.Logger
}

// Book is the ledger as the proxy uses it: verdicts recalled and
// re-derived without hashing, records written in the background, old ones
// pruned, and retro-scans when the banks change. Safe for concurrent use.
type Book struct {
	cfg   BookConfig
	log   *zap.Logger
	queue chan write
	stop  chan struct{}
	wg    sync.WaitGroup
	// pending counts records queued or being written, for Flush.
	pending   sync.WaitGroup
	closeOnce sync.Once

	written, dropped, failed, recalled, rederived, rehash, readFailed atomic.Int64
	// lastReadLog is when a failed read was last logged (Unix seconds).
	lastReadLog atomic.Int64
}

// ProfileSep separates, in Record.Banks, the banks' fingerprint from the
// hashing profile (BookConfig.Profile).
const ProfileSep = "|"

// recallTimeout bounds a recall's read: a ledger that stops answering
// (a PostgreSQL host gone) must not hold downloads; past it the media is
// judged from its bytes, as without a ledger.
const recallTimeout = 250 * time.Millisecond

// drainTimeout bounds how long Close spends writing what is queued.
const drainTimeout = 10 * time.Second

// touchAfter is how stale a recalled record's LastSeen may be before the
// recall moves it forward: a day keeps retention honest at one write per
// media and day at most.
const touchAfter = 24 * time.Hour

// NewBook starts a Book's writers and, with a retention, its pruning.
func NewBook(cfg BookConfig) *Book {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.Writers <= 0 {
		cfg.Writers = 4
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 10000
	}
	b := &Book{cfg: cfg, log: cfg.Logger, queue: make(chan write, cfg.QueueSize), stop: make(chan struct{})}
	for range cfg.Writers {
		b.wg.Add(1)
		go b.writer()
	}
	b.wg.Add(1)
	go b.janitor()
	return b
}

// Store is the Book's store.
func (b *Book) Store() Store { return b.cfg.Store }

// Remember queues r to be written. It never waits: with the queue full
// the record is dropped (the media is judged again at its next download).
func (b *Book) Remember(r Record) bool { return b.enqueue(write{r: r}) }

// write is one queued store write: a record, or a touch of its LastSeen.
type write struct {
	r     Record
	touch bool
}

func (b *Book) enqueue(w write) bool {
	b.pending.Add(1)
	select {
	case b.queue <- w:
		return true
	default:
		b.pending.Done()
		if b.dropped.Add(1)%1000 == 1 {
			b.log.Warn("ledger write queue full: records dropped (those media are judged again at their next download)", zap.Int64("dropped_total", b.dropped.Load()))
		}
		return false
	}
}

// Flush waits until every record queued so far is written.
func (b *Book) Flush() { b.pending.Wait() }

func (b *Book) writer() {
	defer b.wg.Done()
	for {
		select {
		case <-b.stop:
			// Drain what was queued before Close: nothing accepted is lost
			// to a clean stop, but a store that stopped answering must not
			// hold up a reload or shutdown for long.
			ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			defer cancel()
			for {
				select {
				case r := <-b.queue:
					b.write(ctx, r)
				default:
					return
				}
			}
		case r := <-b.queue:
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			b.write(ctx, r)
			cancel()
		}
	}
}

func (b *Book) write(ctx context.Context, w write) {
	defer b.pending.Done()
	r := w.r
	var err error
	if w.touch {
		_, err = b.cfg.Store.Touch(ctx, r.Key, r.LastSeen)
	} else {
		err = b.cfg.Store.Put(ctx, r)
	}
	if err != nil {
		if b.failed.Add(1)%100 == 1 {
			b.log.Error("ledger write failed (the media is judged again at its next download)", zap.Stringer("media", r.Key), zap.Error(err))
		}
		return
	}
	b.written.Add(1)
}

// janitor prunes records past their retention.
func (b *Book) janitor() {
	defer b.wg.Done()
	if b.cfg.Retention <= 0 {
		return
	}
	t := time.NewTicker(min(b.cfg.Retention/4, time.Hour))
	defer t.Stop()
	b.prune()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			b.prune()
		}
	}
}

func (b *Book) prune() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, err := b.cfg.Store.Prune(ctx, time.Now().Add(-b.cfg.Retention))
	if err != nil {
		b.log.Error("ledger prune failed", zap.Error(err))
		return
	}
	if n > 0 {
		b.log.Info("ledger pruned records past their retention", zap.Int("records", n), zap.Duration("retention", b.cfg.Retention))
	}
}

// Recall is mediaproxy.Ledger's question: the verdict on media k as of
// the banks now, from its stored digests. ok is false when the media is
// unknown, undecodable (a newer decoder deserves to see it) or the
// matcher cannot answer now.
func (b *Book) Recall(ctx context.Context, k Key) (blocked bool, reason string, ok bool) {
	gctx, cancel := context.WithTimeout(ctx, recallTimeout)
	r, found, err := b.cfg.Store.Get(gctx, k)
	cancel()
	if err != nil {
		b.readFailed.Add(1)
		// At most a line a minute: a store that is down fails every read.
		if now := time.Now().Unix(); b.lastReadLog.Load()+60 <= now && b.lastReadLog.Swap(now)+60 <= now {
			b.log.Warn("ledger read failed; media are judged from their bytes until it answers", zap.Stringer("media", k),
				zap.Int64("failed_reads_total", b.readFailed.Load()), zap.Error(err))
		}
		return false, "", false
	}
	if !found {
		return false, "", false
	}
	b.recalled.Add(1)
	if now := time.Now(); now.Sub(r.LastSeen) > touchAfter {
		// Retention counts from the last sighting: media still served
		// must not age out. A touch, not a Put: a retro-scan may be
		// writing a block for it meanwhile.
		b.enqueue(write{r: Record{Key: k, LastSeen: now}, touch: true})
	}
	switch r.Verdict {
	case Blocked:
		return true, r.Reason, true
	case Clean, Unscannable:
	default:
		return false, "", false
	}
	banks, profile, _ := strings.Cut(r.Banks, ProfileSep)
	if profile != b.cfg.Profile {
		// Hashed with other decoders or settings (ffmpeg or djxl
		// installed since, pdq_search or dihedral turned on, another
		// undecodable policy): its digests may lack forms the proxy
		// would now match, so the bytes are judged again.
		b.rehash.Add(1)
		return false, "", false
	}
	if !b.cfg.Remote && banks != "" && banks == b.cfg.Fingerprint() {
		return false, "", true
	}
	// The banks changed since (or the verdict's banks are unknown): ask
	// again with the stored digests, a local lookup of microseconds. The
	// answer is not written back: a retro-scan of a newer change may be
	// recording a block for this media meanwhile. A match found here is
	// served 404 at once; the retro-scan of the same change records it
	// and tells the moderators.
	b.rederived.Add(1)
	v, err := b.cfg.Matcher.Match(ctx, r.Query)
	if err != nil || v.Unscanned {
		return false, "", false
	}
	if v.Match {
		return true, v.Reason, true
	}
	return false, "", true
}

// Stats counts the Book's work since it started.
type Stats struct {
	// Written, Dropped and Failed count records (and LastSeen touches).
	Written, Dropped, Failed int64
	// ReadFailed counts recalls the store could not answer.
	ReadFailed int64
	// Recalled counts media found in the ledger; Rederived those among
	// them matched again because the banks changed since, Rehash those
	// hashed under another profile, judged from their bytes again.
	Recalled, Rederived, Rehash int64
}

// Stats returns the Book's counters.
func (b *Book) Stats() Stats {
	return Stats{Written: b.written.Load(), Dropped: b.dropped.Load(), Failed: b.failed.Load(), ReadFailed: b.readFailed.Load(),
		Recalled: b.recalled.Load(), Rederived: b.rederived.Load(), Rehash: b.rehash.Load()}
}

// Close writes what is queued and stops the Book's goroutines. The store
// stays open.
func (b *Book) Close() error {
	b.closeOnce.Do(func() { close(b.stop) })
	b.wg.Wait()
	return nil
}
