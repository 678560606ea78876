package backfill

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// run is one Run's state. sum is written by the collecting goroutine
// under mu and read by the progress reporter.
type run struct {
	cfg        Config
	root, meta string
	con        *console

	mu  sync.Mutex
	sum Summary
	// done counts files passed (resumed, known, hashed, failed), for the
	// progress; processed and bytes those handled in this run, for rates.
	done, processed int
	bytes           int64
}

type job struct {
	seq int
	s   stored
}

// result is one file's outcome, from a worker to the collector.
type result struct {
	seq int
	rel string
	// complete is false for a file interrupted by the run's end: the
	// resume point stops before it.
	complete bool
	// fatal stops the run (the ledger or Synapse's database failed).
	fatal error
	// failed says why the file could not be judged.
	failed            error
	vanished, known   bool
	hashed, exactOnly bool
	byContent         bool
	size              int64
	rec               ledger.Record
	verdict           matcher.Verdict
	acted             bool
	actErr            error
	// put says rec is still to be written (by a recorder).
	put bool
}

// recorders is how many ledger writes may be in flight at once.
const recorders = 32

func (r *run) run(ctx context.Context) error {
	if root, err := filepath.EvalSymlinks(r.root); err == nil {
		r.root = root
	}
	r.con = &console{out: r.cfg.Out, prog: r.cfg.Progress, term: r.cfg.Terminal}
	resumeAt := ""
	if !r.cfg.Restart {
		at, ok, err := r.cfg.Ledger.Meta(ctx, r.meta)
		if err != nil {
			return fmt.Errorf("backfill: reading the resume point: %w", err)
		}
		if ok {
			resumeAt = at
		}
	}
	r.sum.ResumedAfter = resumeAt
	if err := r.count(); err != nil {
		return err
	}
	if r.cfg.CheckpointEvery <= 0 {
		r.cfg.CheckpointEvery = min(256, max(1, r.sum.Files/200))
	}
	stopProgress := r.startProgress()
	defer stopProgress()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job, r.cfg.Jobs)
	results := make(chan result, r.cfg.Jobs)
	var walkErr error
	go func() {
		defer close(jobs)
		walkErr = r.walk(ctx, resumeAt, jobs)
	}()
	puts := make(chan result, recorders)
	var workers, writers sync.WaitGroup
	for range r.cfg.Jobs {
		workers.Go(func() {
			for j := range jobs {
				res := r.judge(ctx, j.s)
				res.seq, res.rel = j.seq, j.s.rel
				if res.put {
					puts <- res
				} else {
					results <- res
				}
			}
		})
	}
	for range recorders {
		writers.Go(func() {
			for res := range puts {
				results <- r.record(ctx, res)
			}
		})
	}
	go func() { workers.Wait(); close(puts); writers.Wait(); close(results) }()

	var fatal error
	mark, next, saved := "", 0, 0
	pending := map[int]result{}
	for res := range results {
		if res.fatal != nil && fatal == nil {
			fatal = res.fatal
			cancel()
		}
		r.account(res)
		pending[res.seq] = res
		for p, ok := pending[next]; ok && p.complete; p, ok = pending[next] {
			delete(pending, next)
			mark = p.rel
			next++
		}
		if next-saved >= r.cfg.CheckpointEvery {
			if err := r.cfg.Ledger.SetMeta(ctx, r.meta, mark); err != nil && fatal == nil {
				fatal = fmt.Errorf("backfill: saving the resume point: %w", err)
				cancel()
			}
			saved = next
		}
	}
	stopProgress()
	// The run's context may be over; the resume point must still land.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer scancel()
	if fatal == nil && walkErr == nil && ctx.Err() == nil {
		// Finished: the next run walks everything again, and passes over
		// what the ledger already holds at a glance (new files may sort
		// anywhere in the walk).
		return r.cfg.Ledger.SetMeta(sctx, r.meta, "")
	}
	r.sum.Interrupted = true
	if mark != "" {
		if err := r.cfg.Ledger.SetMeta(sctx, r.meta, mark); err != nil {
			return errors.Join(fatal, fmt.Errorf("backfill: saving the resume point: %w", err))
		}
	}
	switch {
	case fatal != nil:
		return fatal
	case walkErr != nil:
		return walkErr
	}
	return context.Cause(ctx)
}

// count walks the store's names only, so progress has a total.
func (r *run) count() error {
	return filepath.WalkDir(r.root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if d != nil && d.IsDir() && path != r.root {
				return filepath.SkipDir
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(r.root, path)
		switch classify(rel).kind {
		case kindThumbnail:
			r.sum.Thumbnails++
		case kindURLCache:
			r.sum.URLCache++
		case kindOther:
			r.sum.Other++
		default:
			r.sum.Files++
		}
		return nil
	})
}

// walk sends every original file after resumeAt, in walk order.
func (r *run) walk(ctx context.Context, resumeAt string, jobs chan<- job) error {
	seq := 0
	return filepath.WalkDir(r.root, func(path string, d fs.DirEntry, err error) error {
		if ctx.Err() != nil {
			return filepath.SkipAll
		}
		rel, _ := filepath.Rel(r.root, path)
		if err != nil {
			if path == r.root {
				return fmt.Errorf("backfill: %w", err)
			}
			r.con.println(fmt.Sprintf("cannot read %s: %v", rel, err))
			if d != nil && d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if filepath.Dir(rel) == "." && skippedDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		s := classify(rel)
		switch {
		case s.kind == kindOther:
			r.con.println(fmt.Sprintf("skipped %s: not in Synapse's media store layout", s.rel))
			return nil
		case !d.Type().IsRegular():
			r.con.println(fmt.Sprintf("skipped %s: not a regular file", s.rel))
			r.mu.Lock()
			r.sum.Other++
			r.sum.Files--
			r.mu.Unlock()
			return nil
		case resumeAt != "" && !walkLess(resumeAt, s.rel):
			r.mu.Lock()
			r.sum.Resumed++
			r.done++
			r.mu.Unlock()
			return nil
		}
		select {
		case jobs <- job{seq: seq, s: s}:
			seq++
		case <-ctx.Done():
			return filepath.SkipAll
		}
		return nil
	})
}

// judge hashes, matches, records and (when acting) acts on one file.
func (r *run) judge(ctx context.Context, s stored) (res result) {
	res.complete = true
	path := filepath.Join(r.root, filepath.FromSlash(s.rel))
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			// Synapse deleted it (media retention, an admin) meanwhile.
			res.vanished = true
		} else {
			res.failed = err
		}
		return res
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		res.failed = err
		return res
	}
	res.size = st.Size()
	key, media, byContent, err := r.key(ctx, s)
	if err != nil {
		return r.stopped(ctx, res, err, true)
	}
	res.byContent = byContent
	if !r.cfg.Rehash {
		old, ok, err := r.cfg.Ledger.Get(ctx, key)
		if err != nil {
			return r.stopped(ctx, res, fmt.Errorf("backfill: ledger: %w", err), true)
		}
		if ok && old.Size == res.size {
			res.known = true
			if old.Verdict == ledger.Blocked && r.cfg.Actor != nil {
				// Found by an earlier run (a dry run): act on it now,
				// judged again from its stored digests, no hashing.
				v, err := r.cfg.Matcher.Match(ctx, old.Query)
				if err != nil {
					return r.stopped(ctx, res, fmt.Errorf("matching: %w", err), false)
				}
				if v.Match {
					res.rec, res.verdict = old, v
					res.acted, res.actErr = r.act(ctx, old, v)
				}
			}
			return res
		}
	}
	scan, err := r.cfg.Scanner.ScanFile(ctx, f, res.size, media.ContentType)
	if err != nil {
		return r.stopped(ctx, res, err, false)
	}
	res.hashed, res.exactOnly = true, scan.ExactOnly
	v, err := r.cfg.Matcher.Match(ctx, scan.Query)
	if err != nil {
		return r.stopped(ctx, res, fmt.Errorf("matching: %w", err), false)
	}
	rec := ledger.Record{
		Key: key, Size: res.size, Type: scan.Format, Query: scan.Query,
		// The file's modification time is when Synapse stored it: the
		// closest thing to when the media was first seen.
		FirstSeen: st.ModTime(), LastSeen: time.Now(), Uploader: media.Uploader,
	}
	if r.cfg.Banks != nil {
		rec.Banks = r.cfg.Banks()
	}
	rec.Verdict, rec.Reason = verdictOf(scan, v)
	res.rec, res.verdict, res.put = rec, v, true
	return res
}

// record writes a judged file's record and acts on a match. It runs
// apart from the hashing: the embedded store commits concurrent Puts
// together (bbolt's Batch), where one Put at a time would wait out the
// batch delay and an fsync per file.
func (r *run) record(ctx context.Context, res result) result {
	res.put = false
	// A file hashed before an interruption is still written: its hashing
	// is not thrown away, and the resume point may pass it.
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer wcancel()
	if err := r.cfg.Ledger.Put(wctx, res.rec); err != nil {
		return r.stopped(ctx, res, fmt.Errorf("backfill: ledger: %w", err), true)
	}
	if res.rec.Verdict == ledger.Blocked && r.cfg.Actor != nil {
		res.acted, res.actErr = r.act(ctx, res.rec, res.verdict)
	}
	return res
}

// actedMeta names the ledger meta that says a match was acted on.
func actedMeta(k ledger.Key) string { return "backfill.acted " + k.String() }

// act acts on a match unless a run already did: once per match, also
// across runs (a dry run, then --act; or --act --rehash).
func (r *run) act(ctx context.Context, rec ledger.Record, v matcher.Verdict) (acted bool, err error) {
	if _, done, err := r.cfg.Ledger.Meta(ctx, actedMeta(rec.Key)); err != nil || done {
		return err != nil, err
	}
	if err := r.cfg.Actor.RetroBlock(ctx, rec, v); err != nil {
		return true, err
	}
	return true, r.cfg.Ledger.SetMeta(ctx, actedMeta(rec.Key), time.Now().UTC().Format(time.RFC3339))
}

// stopped is the result of a file whose judging failed with err: an
// interruption when ctx ended, else a failure of the file or (fatal) of
// the run.
func (r *run) stopped(ctx context.Context, res result, err error, fatal bool) result {
	switch {
	case ctx.Err() != nil:
		res.complete, res.hashed = false, false
	case fatal:
		res.complete, res.fatal = false, err
	default:
		res.failed = err
	}
	return res
}

// key names a file's media: by the database's row where there is one.
func (r *run) key(ctx context.Context, s stored) (ledger.Key, Media, bool, error) {
	res := r.cfg.Resolver
	switch s.kind {
	case kindLocal:
		var m Media
		if res != nil {
			got, ok, err := res.Local(ctx, s.id)
			if err != nil {
				return ledger.Key{}, m, false, fmt.Errorf("backfill: synapse database: %w", err)
			}
			if ok {
				m = got
			}
		}
		return ledger.Key{Server: r.cfg.ServerName, ID: s.id}, m, false, nil
	default:
		if res != nil {
			m, ok, err := res.Remote(ctx, s.server, s.id)
			if err != nil {
				return ledger.Key{}, m, false, fmt.Errorf("backfill: synapse database: %w", err)
			}
			if ok && m.ID != "" {
				return ledger.Key{Server: s.server, ID: m.ID}, m, false, nil
			}
		}
		return ledger.Key{Server: s.server, ID: fsIDPrefix + s.id}, Media{}, true, nil
	}
}

// verdictOf is the ledger's verdict for a judged file, and its reason.
func verdictOf(scan mediaproxy.FileScan, v matcher.Verdict) (ledger.Verdict, string) {
	switch {
	case v.Match:
		return ledger.Blocked, v.Reason
	case scan.Undecodable != "":
		return ledger.Undecodable, scan.Undecodable
	case scan.ExactOnly:
		return ledger.Unscannable, "larger than max_upload_size: judged by its exact digests only"
	case scan.Query.Has&matcher.HasPDQ == 0:
		return ledger.Unscannable, orElse(scan.Unscannable, "no picture to hash: judged by its exact digests only")
	}
	return ledger.Clean, ""
}

func orElse(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// account adds a result to the summary and prints what needs saying.
func (r *run) account(res result) {
	r.mu.Lock()
	s := &r.sum
	if res.complete {
		r.done++
		r.processed++
	}
	switch {
	case res.vanished:
		s.Vanished++
	case res.known:
		s.Known++
	case res.failed != nil:
		s.Failed++
	}
	if res.hashed && res.failed == nil {
		s.Hashed++
		s.Bytes += res.size
		r.bytes += res.size
		if res.exactOnly {
			s.ExactOnly++
		}
		if res.byContent {
			s.ByContent++
		}
		switch res.rec.Verdict {
		case ledger.Blocked:
			s.Blocked++
		case ledger.Clean:
			s.Clean++
		case ledger.Unscannable:
			s.Unscannable++
		case ledger.Undecodable:
			s.Undecodable++
		}
	}
	if res.acted {
		if res.actErr != nil {
			s.ActFailed++
		} else {
			s.Acted++
		}
	}
	r.mu.Unlock()
	switch {
	case res.failed != nil:
		r.con.println(fmt.Sprintf("failed  %s: %v", res.rel, res.failed))
	case (res.hashed || res.acted) && res.rec.Verdict == ledger.Blocked:
		r.con.println(matchLine(res.rel, res.rec, res.verdict, res.byContent))
		if res.acted {
			if res.actErr != nil {
				r.con.println(fmt.Sprintf("  act failed for %s: %v", res.rec.Key, res.actErr))
			} else {
				r.con.println(fmt.Sprintf("  quarantined and reported %s", res.rec.Key))
			}
		}
	case res.hashed && res.exactOnly:
		r.con.println(fmt.Sprintf("exact   %s: larger than max_upload_size, judged by its exact digests only", res.rel))
	}
}

// matchLine describes a match: the media, the file, and what matched
// (bank, hash type, the first characters of the banked hash, the
// variant and form), never more of the listed hash than a notice shows.
func matchLine(rel string, rec ledger.Record, v matcher.Verdict, byContent bool) string {
	var b strings.Builder
	media := rec.Key.String()
	if byContent {
		media = "remote media of " + rec.Key.Server + " (media ID unknown: give --synapse-db)"
	}
	fmt.Fprintf(&b, "MATCH   %s  %s  bank=%s hash=%s:%s", media, rel, v.Bank, v.HashType, prefix(v.MatchedHash))
	if v.HashType == matcher.PDQ {
		fmt.Fprintf(&b, " distance=%d", v.Distance)
	}
	if v.Variant != "" {
		fmt.Fprintf(&b, " variant=%s", v.Variant)
	}
	if v.Form != "" {
		fmt.Fprintf(&b, " form=%q", v.Form)
	}
	if v.Source != "" {
		fmt.Fprintf(&b, " source=%s", v.Source)
	}
	return b.String()
}

// prefix shortens a listed hash as notices do: enough to find the entry,
// not enough to republish it.
func prefix(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}
