package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/matcher"
)

// Change is a change of the local banks, as a retro-scan needs it.
type Change struct {
	// From and To are the banks' fingerprints before and after; From is
	// "" when unknown (the first scan after a start).
	From, To string
	// ID names the change the same way on every instance that sees it
	// (From, To and the banks changed), so that a fleet scans it once.
	// One reload that changes two banks is two changes with one To. ""
	// for a catch-up, which is done once the ledger is consistent with
	// To.
	ID string
	// Added matches a query against only the entries the change added;
	// nil when it added none.
	Added func(q *matcher.Query) (matcher.Verdict, bool)
	// Removed reports whether a query matches an entry the change
	// removed; nil when it removed none.
	Removed func(q *matcher.Query) bool
	// Full matches a query against all the local banks as they are now.
	// It replaces Added when the ledger is not known to be consistent
	// with From (the banks changed while no proxy was running, or an
	// earlier scan did not finish): then every verdict is re-derived.
	Full func(q *matcher.Query) (matcher.Verdict, bool)
}

// Hit is stored media that a bank change made listed.
type Hit struct {
	Record  Record
	Verdict matcher.Verdict
}

// RetroStats says what a retro-scan did.
type RetroStats struct {
	// Skipped is true when another instance had already scanned for this
	// change (or nothing needed scanning).
	Skipped bool
	// CatchUp is true when every record was re-derived against the full
	// banks, not only the change.
	CatchUp bool
	// Scanned is how many records were walked; Hits how many became
	// blocked; Unblocked how many blocked ones no longer match anything.
	Scanned, Hits, Unblocked int
	Took                     time.Duration
}

// maxRetroHits bounds the hits one scan holds in memory; a change that
// lists more stored media than this is finished by the next scan (the
// ledger is not marked consistent, so the next change catches up).
const maxRetroHits = 100_000

// retroLock is the fleet-wide lock name: one retro-scan at a time over a
// shared ledger.
const retroLock = "mediaguard_retro_scan"

// retroParts is how many goroutines walk the ledger in a retro-scan.
const retroParts = 2

// pickScanner is a Store with a cheaper Scan for questions about the
// records' verdicts and digests alone: every record's verdict and query
// are decoded without the rest (the query's forms without names, its
// embedded files without places) and asked of pick, from up to parts
// goroutines at once; only the records it picks are decoded in full and
// passed to fn as Scan would. It returns how many records pick was asked
// about. The embedded store has one (Bolt.scanPicked); PostgreSQL's Scan
// reads whole rows anyway.
type pickScanner interface {
	scanPicked(ctx context.Context, parts int, pick func(Verdict, *matcher.Query) bool, fn func(r *Record) error) (int, error)
}

// retroWriters bounds the hits a retro-scan records at once: bbolt's
// default MaxBatchSize, so that up to that many share one commit.
const retroWriters = 1000

// Retro walks the ledger after a bank change: records the change made
// listed become blocked (and onHit is told of each, once per fleet: the
// scan runs under a fleet-wide lock and is skipped when another instance
// already did it); blocked records that matched only a removed entry are
// re-derived and, when nothing matches them any more, become clean again
// (onUnblock is told). It blocks until done or ctx ends.
func (b *Book) Retro(ctx context.Context, ch Change, onHit func(Hit), onUnblock func(Key)) (RetroStats, error) {
	start := time.Now()
	st := RetroStats{}
	release, err := b.lock(ctx)
	if err != nil {
		return st, err
	}
	defer release()
	store := b.cfg.Store
	done, _, err := store.Meta(ctx, metaConsistent)
	if err != nil {
		return st, fmt.Errorf("ledger: reading the consistency mark: %w", err)
	}
	doneKey := "retro_done:" + ch.ID
	if ch.ID == "" && done == ch.To {
		st.Skipped = true
		return st, nil
	}
	if ch.ID != "" {
		if _, seen, err := store.Meta(ctx, doneKey); err != nil {
			return st, fmt.Errorf("ledger: reading the retro-scan mark: %w", err)
		} else if seen {
			st.Skipped = true
			return st, nil
		}
	}
	added := ch.Added
	// The ledger is consistent with From (or, for a later bank of the
	// same reload, already with To): the change's own entries are all
	// that can alter a verdict. Otherwise every verdict is re-derived.
	if ch.ID == "" || done != ch.From && done != ch.To || ch.From == "" {
		if n, err := store.Len(ctx); err == nil && n == 0 {
			// Nothing to re-derive: an empty ledger is consistent with any
			// banks.
			st.Skipped = true
			return st, b.markConsistent(ctx, ch.To)
		}
		added, st.CatchUp = ch.Full, true
	}
	var (
		mu      sync.Mutex
		hits    []Hit
		unblock []Record
	)
	// pick is the question asked of every record, from its verdict and
	// digests alone: a blocked one may have matched only a removed entry,
	// another may match an added one. fn then handles the few picked,
	// decoded in full (the verdict's evidence names forms and embedded
	// files), asking again to get the verdict.
	// In a catch-up, a blocked record whose entry left its bank while no
	// proxy ran matches nothing in the banks now: it is re-derived too.
	lifted := ch.Removed
	if st.CatchUp && ch.Full != nil {
		lifted = func(q *matcher.Query) bool { _, ok := ch.Full(q); return !ok }
	}
	pick := func(v Verdict, q *matcher.Query) bool {
		if v == Blocked {
			return lifted != nil && lifted(q)
		}
		if added == nil {
			return false
		}
		_, ok := added(q)
		return ok
	}
	errFull := errors.New("too many hits")
	fn := func(r *Record) error {
		var hit *Hit
		var drop bool
		switch {
		case r.Verdict == Blocked:
			drop = lifted != nil && !Manual(r.Reason) && lifted(&r.Query)
		case added != nil:
			if v, ok := added(&r.Query); ok {
				hit = &Hit{Record: cloneRecord(r), Verdict: v}
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if hit != nil {
			if len(hits) >= maxRetroHits {
				return errFull
			}
			hits = append(hits, *hit)
		}
		if drop {
			unblock = append(unblock, cloneRecord(r))
		}
		return nil
	}
	var scanned int
	if ps, ok := store.(pickScanner); ok {
		scanned, err = ps.scanPicked(ctx, retroParts, pick, fn)
	} else {
		var n atomic.Int64
		err = store.Scan(ctx, retroParts, func(r *Record) error {
			n.Add(1)
			if !pick(r.Verdict, &r.Query) {
				return nil
			}
			return fn(r)
		})
		scanned = int(n.Load())
	}
	st.Scanned = scanned
	complete := err == nil
	if err != nil && !errors.Is(err, errFull) {
		return st, fmt.Errorf("ledger: retro-scan: %w", err)
	}
	if !complete {
		b.log.Error("retro-scan found more listed stored media than it holds at once; acting on the first, the rest at the next bank change", zap.Int("hits", len(hits)))
	}
	// The hits are recorded side by side: the embedded store coalesces
	// concurrent SetVerdicts into one commit (db.Batch), so hundreds of
	// hits cost a few fsyncs rather than one each (10 ms apiece: 326 hits
	// took 4 s one at a time, see BenchmarkRetro), and PostgreSQL's pool
	// runs them at once. onHit is told of each recorded hit, in order.
	errs := make([]error, len(hits))
	oks := make([]bool, len(hits))
	var wg sync.WaitGroup
	sem := make(chan struct{}, retroWriters)
	for i := range hits {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			h := &hits[i]
			oks[i], errs[i] = store.SetVerdict(ctx, h.Record.Key, Blocked, h.Verdict.Reason, ch.To)
		}()
	}
	wg.Wait()
	var hitErr error
	for i, h := range hits {
		if errs[i] != nil {
			hitErr = cmp.Or(hitErr, errs[i])
			continue
		}
		if !oks[i] {
			continue // pruned meanwhile: nothing stored to act on
		}
		st.Hits++
		if onHit != nil {
			onHit(h)
		}
	}
	if hitErr != nil {
		return st, fmt.Errorf("ledger: recording a retro-scan hit: %w", hitErr)
	}
	for _, r := range unblock {
		v, err := b.cfg.Matcher.Match(ctx, r.Query)
		if err != nil || v.Match || v.Unscanned {
			continue // still listed (or unknown): stays blocked
		}
		if _, err := store.SetVerdict(ctx, r.Key, Clean, "", ch.To); err != nil {
			return st, fmt.Errorf("ledger: re-deriving a blocked record: %w", err)
		}
		st.Unblocked++
		if onUnblock != nil {
			onUnblock(r.Key)
		}
	}
	st.Took = time.Since(start)
	if !complete {
		return st, nil
	}
	if ch.ID != "" {
		if err := store.SetMeta(ctx, doneKey, ch.To); err != nil {
			return st, fmt.Errorf("ledger: writing the retro-scan mark: %w", err)
		}
	}
	return st, b.markConsistent(ctx, ch.To)
}

// lock takes the fleet-wide retro-scan lock, waiting for another holder.
func (b *Book) lock(ctx context.Context) (func(), error) {
	for {
		release, ok, err := b.cfg.Store.TryLock(ctx, retroLock)
		if err != nil {
			return nil, fmt.Errorf("ledger: taking the retro-scan lock: %w", err)
		}
		if ok {
			return release, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (b *Book) markConsistent(ctx context.Context, fp string) error {
	if err := b.cfg.Store.SetMeta(ctx, metaConsistent, fp); err != nil {
		return fmt.Errorf("ledger: writing the consistency mark: %w", err)
	}
	return nil
}

// cloneRecord copies r out of a scan's reused Record.
func cloneRecord(r *Record) Record {
	c := *r
	q := &c.Query
	q.Forms = append(q.Forms[:0:0], q.Forms...)
	q.Dihedral = append(q.Dihedral[:0:0], q.Dihedral...)
	q.Embedded = append([]matcher.EmbeddedDigests(nil), q.Embedded...)
	return c
}
