package learn

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/homeserver"
)

// round retries the media whose fetch is due, then reads the feed from
// the checkpoint to its end, page by page. Each page's changes are
// applied to the bank and the bank written before the checkpoint moves
// past them, so a crash or a stop replays at most the page in hand; its
// changes are idempotent. A round ended by its settings' release stops
// between two media.
func (p *Poller) round(u *user) {
	p.roundMu.Lock()
	defer p.roundMu.Unlock()
	hs := strings.TrimRight(u.s.Admin.Homeserver, "/")
	if p.cp.Homeserver != hs {
		if p.cp.Homeserver != "" {
			// A position in another homeserver's feed means nothing
			// here; every change is idempotent, so starting over
			// costs fetches, never wrong entries.
			u.log.Warn("learn: synapse_admin names another homeserver than the checkpoint's: reading its quarantine feed from the start",
				zap.String("was", p.cp.Homeserver), zap.String("now", hs))
		}
		p.cp = checkpoint{Homeserver: hs}
	}
	if u.self == "" {
		// Whose quarantines are mediaguard's own (see learn).
		self, err := homeserver.UserOf(u.ctx, u.s.Admin.HTTPClient, hs, u.s.Admin.AccessToken)
		if err != nil {
			if u.ctx.Err() == nil {
				p.feedFailed(u, fmt.Errorf("whoami of the synapse_admin token: %w", err))
			}
			return
		}
		u.self = self
	}
	p.retryPending(u)
	restarted := false
	for u.ctx.Err() == nil {
		from := p.cp.NextBatch
		page, err := u.admin.QuarantineChanges(u.ctx, from)
		if homeserver.FeedPositionInvalid(err) && from > 0 && !restarted {
			// Synapse hands out no position beyond its stream: its
			// database was restored or replaced since this one.
			u.log.Warn("learn: the homeserver refuses the checkpoint's feed position as beyond its stream (its database was restored or replaced?): reading the feed from the start",
				zap.Int64("position", from))
			p.cp.NextBatch, restarted = 0, true
			continue
		}
		if err != nil {
			if u.ctx.Err() == nil {
				p.feedFailed(u, err)
			}
			return
		}
		p.feedAnswered(u)
		if !p.apply(u, page.Changes) {
			return
		}
		next := page.NextBatch
		if len(page.Changes) == 0 && next < from {
			// An empty page carries Synapse's current position, which
			// a worker lagging behind may give lower than one handed
			// out before: never move back.
			next = from
		}
		p.cp.NextBatch = next
		if !p.saveCheckpoint(u) {
			return
		}
		if len(page.Changes) == 0 || next <= from {
			return
		}
	}
}

// apply applies one page's changes in order and writes the bank. It
// reports whether the checkpoint may move past them: false when the
// round was ended or the bank could not be written.
func (p *Poller) apply(u *user, changes []homeserver.QuarantineChange) bool {
	lastCommit := time.Now()
	for _, c := range changes {
		key, ok := keyOf(c.Origin, c.MediaID)
		if !ok {
			p.invalid.Add(1)
			u.log.Warn("learn: a quarantine feed record names no usable media; skipped",
				zap.String("origin", clip(c.Origin)), zap.String("media_id", clip(c.MediaID)))
			continue
		}
		if !c.Quarantined {
			p.dropPending(key)
			if p.bank.Remove(key) {
				p.unlearned.Add(1)
				u.log.Info("learn: media taken out of quarantine: the hashes it added are removed", zap.String("media", key))
			}
			continue
		}
		if p.bank.Has(key) {
			p.duplicates.Add(1)
			continue
		}
		if err := p.learn(u, key, c.Origin, c.MediaID); err != nil {
			if u.ctx.Err() != nil {
				// Stopping: what was learned is kept, the page is read
				// again next time.
				p.commit(u)
				return false
			}
			p.fetchFailed(u, key, c.Origin, c.MediaID, err)
		}
		if time.Since(lastCommit) >= commitEvery {
			if !p.commit(u) {
				return false
			}
			lastCommit = time.Now()
		}
	}
	return p.commit(u)
}

// commit writes the bank if it changed (which reloads the matcher).
func (p *Poller) commit(u *user) bool {
	if _, err := p.bank.Commit(); err != nil {
		u.log.Error("learn: writing the learned bank failed; the feed is read again from the same place at the next poll", zap.Error(err))
		return false
	}
	return true
}

func (p *Poller) saveCheckpoint(u *user) bool {
	p.pendingN.Store(int64(len(p.cp.Pending)))
	if err := p.cp.save(p.cpPath); err != nil {
		u.log.Error("learn: saving the feed position failed; its changes are applied again at the next poll (harmless)", zap.Error(err))
		return false
	}
	p.checkpointPos.Store(p.cp.NextBatch)
	return true
}

// retryPending fetches the pending media that are due.
func (p *Poller) retryPending(u *user) {
	if len(p.cp.Pending) == 0 {
		return
	}
	now := time.Now()
	keys := make([]string, 0, len(p.cp.Pending))
	for k, pd := range p.cp.Pending {
		if !now.Before(pd.NextTry) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	changed := false
	for _, k := range keys {
		if u.ctx.Err() != nil {
			break
		}
		pd := p.cp.Pending[k]
		changed = true
		if p.bank.Has(k) {
			delete(p.cp.Pending, k)
			continue
		}
		if err := p.learn(u, k, pd.Origin, pd.MediaID); err != nil {
			if u.ctx.Err() != nil {
				break
			}
			p.fetchFailed(u, k, pd.Origin, pd.MediaID, err)
			continue
		}
		delete(p.cp.Pending, k)
	}
	if changed && p.commit(u) {
		p.saveCheckpoint(u)
	}
}

// fetchFailed records a failed fetch: the media is tried again later,
// with backoff, or skipped for good after MaxAttempts (or at once when
// it is too large to ever be fetched).
func (p *Poller) fetchFailed(u *user, key, origin, mediaID string, err error) {
	pd := p.cp.Pending[key]
	now := time.Now()
	if pd == nil {
		pd = &pending{Origin: origin, MediaID: mediaID, FirstFailed: now}
		if p.cp.Pending == nil {
			p.cp.Pending = map[string]*pending{}
		}
		p.cp.Pending[key] = pd
	}
	pd.Attempts++
	pd.LastError = err.Error()
	if errors.Is(err, homeserver.ErrTooLarge) || pd.Attempts >= u.s.MaxAttempts {
		delete(p.cp.Pending, key)
		p.skipped.Add(1)
		u.log.Warn("learn: quarantined media skipped: it could not be fetched, so copies of it are refused by Synapse's own exact-bytes quarantine only",
			zap.String("media", key), zap.Int("attempts", pd.Attempts), zap.Time("first_failed", pd.FirstFailed), zap.Error(err))
		return
	}
	wait := min(u.s.Every<<min(pd.Attempts-1, 16), maxBackoff)
	pd.NextTry = now.Add(wait)
	p.retries.Add(1)
	u.log.Warn("learn: could not fetch quarantined media; trying again later",
		zap.String("media", key), zap.Int("attempt", pd.Attempts), zap.Int("max_attempts", u.s.MaxAttempts),
		zap.Duration("retry_in", wait), zap.Error(err))
}

func (p *Poller) dropPending(key string) {
	delete(p.cp.Pending, key)
}

// feedFailed logs a feed that did not answer, once per kind of failure.
func (p *Poller) feedFailed(u *user, err error) {
	p.feedUp.Store(false)
	if homeserver.FeedMissing(err) {
		p.feedMissing.Store(true)
		if p.feedState != "missing" {
			u.log.Error("learn: the homeserver has no quarantine feed (GET /_synapse/admin/v1/media/quarantine_changes answered 404): learn_quarantines needs Synapse 1.152 or later; nothing is learned until it is upgraded (polled every learn_every meanwhile)",
				zap.String("homeserver", u.s.Admin.Homeserver), zap.Error(err))
		}
		p.feedState = "missing"
		return
	}
	if p.feedState != "failing" {
		u.log.Warn("learn: the quarantine feed did not answer; polled again every learn_every", zap.Error(err))
	}
	p.feedState = "failing"
}

func (p *Poller) feedAnswered(u *user) {
	if p.feedState == "missing" || p.feedState == "failing" {
		u.log.Info("learn: the quarantine feed answers again")
	}
	p.feedState = "ok"
	p.feedUp.Store(true)
	p.feedMissing.Store(false)
	p.lastPoll.Store(time.Now().UnixNano())
}

// keyOf is the bank key (every entry's label) of a media: it names the
// mxc URI. Origins and media IDs come from the homeserver, which took
// remote ones from other servers: one that would not read back as a
// label, or would not name one media, is refused.
func keyOf(origin, mediaID string) (string, bool) {
	if origin == "" || mediaID == "" || len(origin) > 255 || len(mediaID) > 255 ||
		strings.ContainsAny(origin, "/#?") || strings.ContainsAny(mediaID, "/#?") {
		return "", false
	}
	for _, s := range []string{origin, mediaID} {
		for _, c := range s {
			if c <= ' ' || c == 0x7f {
				return "", false
			}
		}
	}
	return "quarantined mxc://" + origin + "/" + mediaID, true
}

// clip shortens a logged value another server chose.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
