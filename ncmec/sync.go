package ncmec

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"github.com/mediaguard/mediaguard/atomicfile"
	"go.uber.org/zap"
)

// ErrBusy is a sync that did not run because another sync of the same
// bank (in this process or another) holds its lock.
var ErrBusy = errors.New("ncmec: another sync of this bank is running")

// endMargin keeps a sync's end a little in the past: python-threatexchange
// ends 5 s before now "for updates showing up multiple times in the
// fetch, since entries are not ordered by time" (ncmec_api.py fetch_iter).
const endMargin = 5 * time.Second

// The window sizing follows python-threatexchange's (ncmec_api.py
// fetch_iter): a window whose first page estimates more than
// MaxWindowEntries is shrunk at once, by shrinkFactor at least; after
// shrinkFactor windows in a row of fewer than two pages' worth it grows
// by half that factor; one over a quarter of the maximum shrinks the next.
const (
	shrinkFactor = 4
	pageEntries  = 1000 // NCMEC's page size (hash_api.py ENTRIES_PER_FETCH)
)

// Result is what one Sync did.
type Result struct {
	// Windows counts the windows read whole, Commits the times the bank
	// and checkpoint were committed (consecutive windows are committed
	// together), Pages the pages read (abandoned windows' included).
	Windows, Commits, Pages int
	// Read counts entry elements read; Changes the entries whose
	// latest version the bank took (added, replaced or removed);
	// Problems the entries or fingerprints refused (logged).
	Read, Changes, Problems int
	// Through is the checkpoint after the sync.
	Through time.Time
	// Entries and Counts describe the bank file now in place.
	Entries int
	Counts  Counts
	// Written is true when a new bank file was put in place.
	Written bool
}

// Sync brings the bank at cfg.Path up to date: from its checkpoint (or
// cfg.Start) to a few seconds ago, one window at a time, each window's
// pages followed to the end and committed (bank file, then checkpoint)
// before the next begins. An error leaves the bank and checkpoint as the
// last committed window left them. It returns ErrBusy when another sync
// of the bank is running.
func Sync(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	cfg = cfg.withDefaults()
	s, err := newSyncer(cfg)
	if err != nil {
		return Result{}, err
	}
	unlock, err := tryLock(cfg.Path)
	if err != nil {
		if errors.Is(err, ErrBusy) {
			return Result{}, err
		}
		return Result{}, fmt.Errorf("ncmec: locking %s: %w", cfg.Path, err)
	}
	defer unlock()
	return s.run(ctx)
}

type syncer struct {
	cfg  Config
	c    *client
	base string
	log  *zap.Logger
	res  Result
	// bankThrough is the through of the bank file in place: a window
	// that changes nothing moves the checkpoint, not the file (rewriting
	// a large bank for nothing every 15 minutes would cost the matcher a
	// reload each time).
	bankThrough time.Time
	// resync is set while a bank already in use is synced anew (its base
	// URL changed): the new bank is built in resyncPath and replaces the
	// one in use only once it is whole, so the list in force never
	// shrinks to the first windows of a sync that takes hours, and a
	// failed resync leaves it as it was.
	resync bool
}

// resyncSuffix names the side file a resync builds the new bank in.
const resyncSuffix = ".resync"

// target is the file commits write: the bank, or its side file during a
// resync.
func (s *syncer) target() string {
	if s.resync {
		return s.cfg.Path + resyncSuffix
	}
	return s.cfg.Path
}

func newSyncer(cfg Config) (*syncer, error) {
	c, err := newClient(&cfg)
	if err != nil {
		return nil, err
	}
	return &syncer{cfg: cfg, c: c, base: c.base.String(), log: cfg.Logger.With(zap.String("bank", cfg.Name))}, nil
}

// resume decides where the sync starts and whether the bank's current
// lines are kept (fresh: they are not, the bank is synced anew).
func (s *syncer) resume() (from time.Time, fresh bool, err error) {
	h, exists, err := readHeader(s.cfg.Path)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("ncmec: bank %s: %w", s.cfg.Name, err)
	}
	ck, hasCk, err := LoadCheckpoint(s.cfg.Path)
	if err != nil {
		return time.Time{}, false, err
	}
	start := s.cfg.Start.UTC().Truncate(time.Second)
	switch {
	case !exists:
		if hasCk {
			s.log.Warn("ncmec bank file missing though a checkpoint exists: syncing it again from the start", zap.String("path", s.cfg.Path))
		}
		return start, true, nil
	case h.base != "" && h.base != s.base || hasCk && ck.BaseURL != s.base:
		s.log.Info("ncmec base URL changed: syncing the bank again from the start, beside the one in use until it is whole",
			zap.String("was", h.base), zap.String("now", s.base))
		s.resync = !h.through.IsZero()
		return start, true, nil
	case h.through.IsZero():
		// Nothing committed into this file yet (EnsureBank's).
		return start, true, nil
	}
	// The bank file is renamed into place before the checkpoint: after a
	// crash between the two the bank is ahead of it, and replaying from
	// the checkpoint is harmless (each entry's latest version wins
	// again). A bank file older than the one the checkpoint describes (a
	// backup restored) resumes from its own header.
	s.bankThrough = h.through
	from = h.through
	if hasCk && !ck.BankThrough.After(h.through) {
		from = ck.Through
	}
	return from, false, nil
}

func (s *syncer) run(ctx context.Context) (Result, error) {
	from, fresh, err := s.resume()
	if err != nil {
		return s.res, err
	}
	if s.resync {
		// A resync cut off before (a crash, a stop) starts over.
		os.Remove(s.cfg.Path + resyncSuffix)
	}
	s.res.Through = from
	if ck, ok, _ := LoadCheckpoint(s.cfg.Path); ok && !fresh {
		s.res.Entries, s.res.Counts = ck.Entries, ck.Counts
	}
	end := s.cfg.Now().Add(-endMargin).UTC().Truncate(time.Second)
	cur := from
	dur := end.Sub(cur)
	low := 0
	// Consecutive windows are committed together, up to half the window
	// bound of changes: a first sync of millions of entries rewrites the
	// bank a few times rather than once per window. A failure loses the
	// windows of the batch not yet committed, never a committed one.
	var batch *window
	var batchEnd time.Time
	flush := func() error {
		if batch == nil {
			return nil
		}
		err := s.commit(batch, batchEnd, fresh)
		batch, fresh = nil, false
		return err
	}
	for cur.Before(end) {
		if err := ctx.Err(); err != nil {
			return s.res, err
		}
		// Whole seconds: from and to are written to the second.
		dur = max(dur.Truncate(time.Second), time.Second)
		wEnd := cur.Add(dur)
		if wEnd.After(end) {
			wEnd = end
		}
		if batch == nil {
			batch = newWindow()
		}
		n, est, err := s.fetch(ctx, cur, wEnd, dur > time.Second, batch)
		if err != nil {
			return s.res, err
		}
		if est > 0 {
			// Too many entries for one window: shrink and refetch.
			dur = min(dur/shrinkFactor, time.Duration(float64(dur)*float64(s.cfg.MaxWindowEntries)/float64(est)))
			low = 0
			s.log.Info("ncmec window holds too many entries: shrinking it", zap.Time("from", cur), zap.Int("estimate", est), zap.Duration("now", dur))
			continue
		}
		s.res.Windows++
		batchEnd = wEnd
		if batch.changes() >= s.cfg.MaxWindowEntries/2 {
			if err := flush(); err != nil {
				return s.res, err
			}
		}
		switch {
		case n < 2*pageEntries:
			if low++; low >= shrinkFactor {
				dur *= shrinkFactor / 2
				low = 0
			}
		case n > s.cfg.MaxWindowEntries/shrinkFactor:
			dur /= shrinkFactor
			low = 0
		default:
			low = 0
		}
		cur = wEnd
	}
	if err := flush(); err != nil {
		return s.res, err
	}
	if s.resync {
		return s.res, s.finishResync(s.res.Through)
	}
	return s.res, nil
}

// fetch reads the window [from, to] whole into batch and returns how
// many entry elements it held. When canShrink and its first page
// estimates more than MaxWindowEntries, it stops there, leaves batch as
// it was and returns the estimate instead.
func (s *syncer) fetch(ctx context.Context, from, to time.Time, canShrink bool, batch *window) (n, est int, err error) {
	// The first page goes aside until its estimate is known; the rest
	// straight into the batch (a failure discards the whole batch).
	first := newWindow()
	add := first.add
	u := s.c.entriesURL(from, to)
	seen := map[string]bool{}
	for page := 0; ; page++ {
		doc, err := s.c.page(ctx, u, add)
		s.res.Pages++
		if err != nil {
			return 0, 0, fmt.Errorf("ncmec: window %s..%s, page %d: %w", from.Format(timeFormat), to.Format(timeFormat), page+1, err)
		}
		n += doc.Entries
		var next *url.URL
		if doc.Next != "" {
			if next, err = s.c.next(doc.Next, from, to); err != nil {
				return 0, 0, err
			}
			if seen[next.String()] {
				return 0, 0, fmt.Errorf("ncmec: window %s..%s: the paging link %q repeats itself", from.Format(timeFormat), to.Format(timeFormat), doc.Next)
			}
			seen[next.String()] = true
		}
		if page == 0 {
			if est := estimate(doc, next); canShrink && est > s.cfg.MaxWindowEntries {
				return 0, est, nil
			}
			batch.absorb(first)
			add = batch.add
		}
		if next == nil {
			return n, 0, nil
		}
		u = next
	}
}

// commit puts the windows into the bank: a new bank file if the window
// changes anything (or the bank is synced anew), then the checkpoint.
func (s *syncer) commit(win *window, through time.Time, fresh bool) error {
	s.res.Read += win.entries
	s.res.Problems += win.problems
	for _, p := range win.firstProblems {
		s.log.Warn("ncmec entry refused", zap.String("problem", p))
	}
	if win.problems > len(win.firstProblems) {
		s.log.Warn("more ncmec entries refused", zap.Int("count", win.problems-len(win.firstProblems)))
	}
	h := header{bank: s.cfg.Name, base: s.base, through: through}
	if win.changes() > 0 || fresh {
		var m merged
		err := writeAtomic(s.target(), func(w *bufio.Writer) error {
			var err error
			m, err = merge(w, s.target(), fresh, h, win)
			return err
		})
		if err != nil {
			return fmt.Errorf("ncmec: writing bank %s: %w", s.target(), err)
		}
		s.res.Entries, s.res.Counts, s.res.Written = m.entries, m.counts, true
		s.res.Changes += win.changes()
		s.bankThrough = through
	}
	if s.resync {
		// Neither the checkpoint nor the bank in use moves until the
		// new bank is whole (finishResync).
		s.res.Commits++
		s.res.Through = through
		return nil
	}
	return s.checkpoint(win, through, fresh)
}

// checkpoint records the commit of windows through through in the
// bank's checkpoint and tells the matcher of a written bank.
func (s *syncer) checkpoint(win *window, through time.Time, written bool) error {
	ck := Checkpoint{Bank: s.cfg.Name, BaseURL: s.base, Through: through, BankThrough: s.bankThrough, SyncedAt: s.cfg.Now().UTC(),
		Entries: s.res.Entries, Counts: s.res.Counts}
	if err := saveCheckpoint(s.cfg.Path, ck); err != nil {
		return fmt.Errorf("ncmec: writing checkpoint: %w", err)
	}
	if !s.resync {
		s.res.Commits++
	}
	s.res.Through = through
	s.log.Info("ncmec window synced", zap.Time("through", through), zap.Int("read", win.entries), zap.Int("changes", win.changes()),
		zap.Int("entries", s.res.Entries), zap.Int("md5", s.res.Counts.MD5), zap.Int("sha1", s.res.Counts.SHA1),
		zap.Int("pdq", s.res.Counts.PDQ), zap.Int("video_md5", s.res.Counts.VideoMD5))
	if s.cfg.onCommit != nil {
		s.cfg.onCommit(s.res)
	}
	if win.changes() > 0 || written {
		if s.cfg.OnWritten != nil {
			s.cfg.OnWritten()
		}
	}
	return nil
}

// finishResync puts a resynced bank in place of the one in use, whole,
// then its checkpoint.
func (s *syncer) finishResync(through time.Time) error {
	side := s.cfg.Path + resyncSuffix
	if _, err := os.Stat(side); err != nil {
		return fmt.Errorf("ncmec: resync of %s: %w", s.cfg.Path, err)
	}
	if err := atomicfile.Rename(side, s.cfg.Path); err != nil {
		return fmt.Errorf("ncmec: putting the resynced bank in place: %w", err)
	}
	s.resync = false
	s.log.Info("ncmec bank resynced from the new base URL and put in place", zap.Int("entries", s.res.Entries))
	return s.checkpoint(newWindow(), through, true)
}
