package service

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing/external"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// bookRecall answers the proxy's ledger questions from a Book.
type bookRecall struct{ b *ledger.Book }

func (l bookRecall) Recall(ctx context.Context, k mediaproxy.MediaKey) (bool, string, bool) {
	return l.b.Recall(ctx, ledger.Key{Server: k.Server, ID: k.ID})
}

// bookWriter records every media judged whole into the ledger. It is an
// Observer: it runs before the response goes out, and only queues.
type bookWriter struct {
	b     *ledger.Book
	local *matcher.Local
	// profile names how media is hashed here (see hashingProfile).
	profile string
}

func (w bookWriter) Observe(d *mediaproxy.Decision) {
	// A thumbnail is another rendition's bytes: the ledger keeps the
	// original's digests under the media's key.
	if d.Query == nil || d.Endpoint.Thumbnail || d.MediaKey.IsZero() || d.MediaKey.Server == "" {
		return
	}
	var v ledger.Verdict
	switch d.Outcome {
	case mediaproxy.Clean, mediaproxy.Review:
		// Review media passed and is stored: a moderator's confirmation
		// must find it in the ledger's retro-scan.
		v = ledger.Clean
	case mediaproxy.WouldBlock:
		if d.Verdict.Unscanned {
			return // a remote was not asked: not a verdict to keep
		}
		// It passed: clean under banks whose fingerprint carries the
		// report mode, so switching that bank to enforce re-judges it
		// (the catch-up at the next start, or its next recall).
		v = ledger.Clean
	case mediaproxy.Unscannable:
		v = ledger.Unscannable
	case mediaproxy.Blocked:
		v = ledger.Blocked
	case mediaproxy.Undecodable:
		v = ledger.Undecodable
	default:
		return
	}
	if d.Upload && (v != ledger.Clean && v != ledger.Unscannable || d.UpstreamStatus != http.StatusOK) {
		return // nothing was stored
	}
	banks := w.local.Fingerprint()
	if gen := matcher.Generation(); d.Generation != gen || gen%2 == 1 {
		// The banks changed (or were being published) while the media
		// was judged: which ones the verdict saw is unknown, so it is
		// re-derived when recalled.
		banks = ""
	}
	banks += ledger.ProfileSep + w.profile
	now := time.Now()
	r := ledger.Record{
		Key: ledger.Key{Server: d.MediaKey.Server, ID: d.MediaKey.ID}, Size: d.Digests.Size, Type: d.Format,
		Query: *d.Query, FirstSeen: now, LastSeen: now, Verdict: v, Reason: d.Verdict.Reason, Banks: banks,
	}
	if d.Upload {
		r.Uploader = d.User
	}
	w.b.Remember(r)
}

// retro runs the ledger's retro-scan for a change of the local banks and
// acts on its hits: the proxy's memory blocks them at once, the actions
// record, quarantine and notify.
func (s *Service) retro(ctx context.Context, ch ledger.Change) {
	st, err := s.book.Retro(ctx, ch, func(h ledger.Hit) {
		s.proxy.Memory().Block(mediaproxy.MediaKey{Server: h.Record.Key.Server, ID: h.Record.Key.ID}, h.Verdict.Reason)
		s.acts.RetroBlock(h.Record, h.Verdict)
	}, func(k ledger.Key) {
		s.proxy.Memory().Unblock(mediaproxy.MediaKey{Server: k.Server, ID: k.ID})
	})
	s.retroHits.Add(int64(st.Hits))
	switch {
	case err != nil:
		s.retroFailed.Add(1)
		s.log.Error("retro-scan failed; the ledger is re-judged in full at the next bank change", zap.Error(err))
	case st.Skipped && ch.ID == "":
		// The catch-up at a start: nothing changed since the ledger was
		// last brought up to date (by this proxy before a restart, or by
		// another instance), or the ledger is empty.
		s.log.Info("ledger consistent with the banks: nothing to re-judge", zap.String("banks", ch.To))
	case st.Skipped:
		s.retroSkipped.Add(1)
		s.log.Info("retro-scan already done by another instance", zap.String("banks", ch.To))
	default:
		s.retroRuns.Add(1)
		s.log.Info("retro-scan done", zap.Int("records", st.Scanned), zap.Int("now_blocked", st.Hits), zap.Int("unblocked", st.Unblocked),
			zap.Bool("full", st.CatchUp), zap.Duration("took", st.Took))
	}
	if err == nil && (ch.Removed != nil || st.CatchUp) {
		// Whoever re-derived the blocked records (this scan, another
		// instance's, or a catch-up after entries left a bank while no
		// proxy ran), this proxy's memory must forget the blocks lifted.
		s.forgetLifted(ctx)
	}
}

// forgetLifted drops from memory the blocks another instance's retro-scan
// lifted. That scan re-derived the shared ledger's blocked records after
// entries left a bank, but this proxy skipped it, and its memory keeps
// blocked media blocked across bank changes: without this it would go on
// answering 404 for media the rest of the fleet serves again. Each media
// remembered blocked (at most the memory's size, and only when a bank lost
// entries) is looked up; a record the ledger lacks stays blocked.
func (s *Service) forgetLifted(ctx context.Context) {
	mem := s.proxy.Memory()
	n := 0
	for _, k := range mem.BlockedKeys() {
		r, ok, err := s.book.Store().Get(ctx, ledger.Key{Server: k.Server, ID: k.ID})
		if err != nil {
			s.log.Error("reading the ledger for blocks another instance lifted; those media stay blocked here until a restart", zap.Error(err))
			return
		}
		if ok && r.Verdict != ledger.Blocked {
			mem.Unblock(k)
			n++
		}
	}
	if n > 0 {
		s.log.Info("blocks lifted by another instance's retro-scan forgotten", zap.Int("unblocked", n))
	}
}

// retroWorker runs the retro-scans one at a time: first a catch-up of
// whatever changed while no proxy ran (a no-op when the ledger is already
// consistent with the banks), then one per reload, over every bank it
// changed.
func (s *Service) retroWorker(ctx context.Context) {
	defer s.wg.Done()
	full := func(q *matcher.Query) (matcher.Verdict, bool) {
		v, err := s.local.Match(ctx, *q)
		return v, err == nil && v.Match
	}
	// last is the banks' fingerprint the worker last scanned for: a
	// reload that starts from another one follows a change never seen.
	last := s.local.Fingerprint()
	s.retro(ctx, ledger.Change{To: last, Full: full})
	var reload []matcher.BankChange
	for {
		select {
		case <-ctx.Done():
			return
		case c := <-s.changes:
			reload = append(reload, c)
			if !c.Last {
				continue
			}
			added, removed := retroMatchers(s.local, reload)
			from, to := reload[0].From, c.Fingerprint
			ch := ledger.Change{From: from, To: to, Added: added, Removed: removed, Full: full,
				// The same on every instance that loads the same bank
				// files, so a fleet scans each reload once.
				ID: from + ">" + to}
			if s.lostChange.Swap(false) || from != last {
				// A change was dropped (queue full): only a re-judgement
				// of the whole ledger is sure to cover it.
				ch.ID, ch.From = "", ""
			}
			reload, last = nil, to
			s.retro(ctx, ch)
		}
	}
}

// retroMatchers turns bank changes into the retro-scan's questions: does a
// stored query match an added entry (and how), does it match a removed one.
func retroMatchers(l *matcher.Local, chs []matcher.BankChange) (added func(*matcher.Query) (matcher.Verdict, bool), removed func(*matcher.Query) bool) {
	var adds, rems []*matcher.Bank
	for _, c := range chs {
		if c.Added.Counts().Total() > 0 {
			adds = append(adds, c.Added)
		}
		if c.Removed.Counts().Total() > 0 {
			rems = append(rems, c.Removed)
		}
	}
	if len(adds) > 0 {
		rm := l.RetroMatcher(adds...)
		added = func(q *matcher.Query) (matcher.Verdict, bool) {
			if !rm.Matches(q) {
				return matcher.Verdict{}, false
			}
			// Entries added to a bank in report mode make would-blocks,
			// which a retro-scan does not act on.
			v := rm.Match(q)
			return v, v.Match
		}
	}
	if len(rems) > 0 {
		removed = l.RetroMatcher(rems...).Matches
	}
	return added, removed
}

// LedgerStats is what the media ledger did since this service started.
type LedgerStats struct {
	ledger.Stats
	// RetroScans counts retro-scans by outcome: "done" (walked the
	// ledger), "skipped" (another instance had done it), "failed".
	RetroScans map[string]int64
	// RetroBlocked counts stored media the retro-scans blocked.
	RetroBlocked int64
}

// LedgerStats returns the ledger's counters; ok is false without one.
func (s *Service) LedgerStats() (st LedgerStats, ok bool) {
	if s.book == nil {
		return st, false
	}
	return LedgerStats{Stats: s.book.Stats(), RetroBlocked: s.retroHits.Load(),
		RetroScans: map[string]int64{"done": s.retroRuns.Load(), "skipped": s.retroSkipped.Load(), "failed": s.retroFailed.Load()}}, true
}

// hashingVersion changes when a release hashes media differently (a new
// decoder, new forms): media recorded before are judged from their bytes
// again, not trusted by digests that lack what is matched now.
//
// 2: JPEGs hashed from their DCT blocks unless pdq_exact.
const hashingVersion = 2

// hashingProfile names how this proxy hashes media, as ledger records
// carry it (ledger.BookConfig.Profile).
func hashingProfile(pc mediaproxy.Config) string {
	// Defaults spelled out or left implicit hash alike.
	if pc.MaxPixels <= 0 {
		pc.MaxPixels = mediaproxy.DefaultMaxPixels
	}
	if pc.OnUndecodableImage == "" {
		pc.OnUndecodableImage = mediaproxy.UndecodableBlock
	}
	return fmt.Sprintf("v%d search=%d dihedral=%t exact=%t max_pixels=%d undecodable=%s ffmpeg=%t djxl=%t",
		hashingVersion, pc.PDQSearch, pc.Dihedral, pc.PDQExact, pc.MaxPixels, pc.OnUndecodableImage, external.Available("ffmpeg"), external.Available("djxl"))
}

// LedgerBanks is what a ledger record judged now carries as its Banks:
// the local banks' fingerprint and this proxy's hashing profile (the
// backfill writes records as the proxy would).
func (s *Service) LedgerBanks() string {
	return s.local.Fingerprint() + ledger.ProfileSep + s.profile
}
