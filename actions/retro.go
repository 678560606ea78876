package actions

import (
	"encoding/hex"
	"encoding/json"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/notify"
)

// How stored media was found listed, as StoredMatch's by.
const (
	// ByRetroScan: a bank change, matched against the media ledger.
	ByRetroScan = "retro-scan"
	// ByBackfill: `mediaguard backfill` over the homeserver's media store.
	ByBackfill = "backfill"
)

// RetroBlock acts on stored media that a bank change made listed (a hit
// of the media ledger's retro-scan); see StoredMatch.
func (a *Actions) RetroBlock(r ledger.Record, v matcher.Verdict) { a.StoredMatch(r, v, ByRetroScan) }

// StoredMatch acts on stored media found listed without a request (by a
// retro-scan or a backfill): a retro_block audit record, the quarantine
// through the admin API, and one notice to each channel. The caller has
// already recorded the block in the ledger, so every instance answers 404
// from then on. Media known by its content only (a media store file
// whose media ID is unknown) cannot be quarantined: the notice and the
// record say so.
func (a *Actions) StoredMatch(r ledger.Record, v matcher.Verdict, by string) {
	id := audit.NewID()
	media, mxc := r.Key.Server+"/"+r.Key.ID, r.Key.String()
	action := "stored media blocked (404 from now on) and quarantined where configured"
	if r.Key.ContentOnly() {
		mxc = ""
		action = "found in the media store by its content; its media ID is unknown, so it was not quarantined (rerun the backfill with --synapse-db)"
	}
	a.log.Warn("stored media now matches a hash list",
		zap.String("found_by", by), zap.String("media", media), zap.String("bank", v.Bank), zap.String("hash_type", string(v.HashType)),
		zap.String("variant", VariantLabel(v.Variant)), zap.String("matched_hash_prefix", MatchedPrefix(v.MatchedHash)),
		zap.Int("distance", v.Distance), zap.String("source", v.Source), zap.String("uploader", r.Uploader),
		zap.Time("first_seen", r.FirstSeen), zap.String("sha256", hex.EncodeToString(r.Query.SHA256[:])))
	if log := a.cfg.Audit; log != nil {
		rec := audit.Record{ID: id, Kind: audit.KindRetroBlock, Direction: "stored", Endpoint: by, Media: media, User: r.Uploader}
		if rec.User == "" {
			rec.User = "unknown"
		}
		q := r.Query
		if q.Has&(matcher.HasMD5|matcher.HasSHA1|matcher.HasSHA256) != 0 {
			rec.Digests = map[string]string{"md5": hex.EncodeToString(q.MD5[:]), "sha1": hex.EncodeToString(q.SHA1[:]), "sha256": hex.EncodeToString(q.SHA256[:])}
			if q.Has&matcher.HasPDQ != 0 {
				rec.Digests["pdq"] = q.PDQ.String()
			}
		}
		ev := audit.Evidence{Outcome: "retro_blocked", Bank: v.Bank, HashType: string(v.HashType), MatchedHash: v.MatchedHash,
			Distance: v.Distance, Confidence: v.Confidence, Source: v.Source, Form: v.Form, Variant: v.Variant, Reason: v.Reason,
			Action: action, FirstSeen: r.FirstSeen}
		rec.Verdict, _ = json.Marshal(ev)
		if err := log.Append(rec); err != nil {
			a.log.Error("AUDIT RECORD NOT WRITTEN", zap.String("kind", audit.KindRetroBlock), zap.String("media", media), zap.Error(err))
		}
	}
	if !r.Key.ContentOnly() {
		a.quarantineMedia(id, r.Key.Server, r.Key.ID, r.Uploader)
	}
	det := notify.Detection{
		ID: id, Time: time.Now(), Direction: "stored media", Endpoint: by, User: r.Uploader,
		MXC: mxc, HashType: string(v.HashType), MatchedHash: v.MatchedHash, Bank: v.Bank, Source: v.Source,
		Distance: v.Distance, Confidence: v.Confidence, Form: v.Form, Variant: v.Variant, Action: action,
		Retro: true, FirstSeen: r.FirstSeen,
	}
	if wh := a.cfg.Webhook; wh != nil && !wh.Notify(det) {
		a.log.Error("webhook queue full: notice dropped (it is in the audit log)", zap.String("detection", id))
	}
	if n := a.cfg.Matrix; n != nil && !n.Notify(det) {
		a.log.Error("notice queue full: moderators not told of this stored media (it is in the audit log)", zap.String("detection", id))
	}
}

// Wait waits for the admin actions started so far (a command that exits
// after acting must let its quarantines finish).
func (a *Actions) Wait() { a.wg.Wait() }
