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

// retroAction is what a retro-scan hit leads to, as records and notices
// say it.
const retroAction = "stored media blocked (404 from now on) and quarantined where configured"

// RetroBlock acts on stored media that a bank change made listed (a hit
// of the media ledger's retro-scan): a retro_block audit record, the
// quarantine through the admin API, and one notice to each channel. The
// caller has already recorded the block in the ledger, so every instance
// answers 404 from now on.
func (a *Actions) RetroBlock(r ledger.Record, v matcher.Verdict) {
	id := audit.NewID()
	media := r.Key.Server + "/" + r.Key.ID
	a.log.Warn("stored media now matches a hash list (retro-scan)",
		zap.String("media", media), zap.String("bank", v.Bank), zap.String("hash_type", string(v.HashType)),
		zap.String("variant", VariantLabel(v.Variant)), zap.String("matched_hash_prefix", MatchedPrefix(v.MatchedHash)),
		zap.Int("distance", v.Distance), zap.String("source", v.Source), zap.String("uploader", r.Uploader),
		zap.Time("first_seen", r.FirstSeen), zap.String("sha256", hex.EncodeToString(r.Query.SHA256[:])))
	if log := a.cfg.Audit; log != nil {
		rec := audit.Record{ID: id, Kind: audit.KindRetroBlock, Direction: "stored", Endpoint: "retro_scan", Media: media, User: r.Uploader}
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
			Action: retroAction, FirstSeen: r.FirstSeen}
		rec.Verdict, _ = json.Marshal(ev)
		if err := log.Append(rec); err != nil {
			a.log.Error("AUDIT RECORD NOT WRITTEN", zap.String("kind", audit.KindRetroBlock), zap.String("media", media), zap.Error(err))
		}
	}
	a.quarantineMedia(id, r.Key.Server, r.Key.ID, r.Uploader)
	det := retroDetection(id, r, v)
	if wh := a.cfg.Webhook; wh != nil && !wh.Notify(det) {
		a.log.Error("webhook queue full: notice dropped (it is in the audit log)", zap.String("detection", id))
	}
	if n := a.cfg.Matrix; n != nil && !n.Notify(det) {
		a.log.Error("notice queue full: moderators not told of this retro-scan hit (it is in the audit log)", zap.String("detection", id))
	}
}

func retroDetection(id string, r ledger.Record, v matcher.Verdict) notify.Detection {
	return notify.Detection{
		ID: id, Time: time.Now(), Direction: "stored media", Endpoint: "retro-scan", User: r.Uploader,
		MXC: r.Key.String(), HashType: string(v.HashType), MatchedHash: v.MatchedHash, Bank: v.Bank, Source: v.Source,
		Distance: v.Distance, Confidence: v.Confidence, Form: v.Form, Variant: v.Variant, Action: retroAction,
		Retro: true, FirstSeen: r.FirstSeen,
	}
}
