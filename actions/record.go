package actions

import (
	"encoding/json"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// auditKinds maps the decisions that must be on record to audit kinds.
// A repeat request for media already blocked is recorded under its own
// kind: it was notified the first time, so it must not count as a block
// awaiting a notice (audit.Pending).
var auditKinds = map[mediaproxy.Outcome]string{
	mediaproxy.Blocked:      audit.KindBlock,
	mediaproxy.KnownBlocked: audit.KindKnownBlock,
	mediaproxy.LateBlocked:  audit.KindLateBlock,
	mediaproxy.Unscannable:  audit.KindUnscannable,
	mediaproxy.Unscanned:    audit.KindUnscanned,
	mediaproxy.Refused:      audit.KindRefused,
	mediaproxy.Undecodable:  audit.KindUndecodable,
	mediaproxy.WouldBlock:   audit.KindWouldBlock,
	mediaproxy.Review:       audit.KindReview,
	mediaproxy.Held:         audit.KindReview,
}

// record appends the decision to the audit log before the response goes
// out (Observe runs synchronously) and returns its detection ID. A failed
// write is logged loudly; the decision itself stands: a block is a block.
func (a *Actions) record(d *mediaproxy.Decision, dir string) string {
	id := audit.NewID()
	log := a.cfg.Audit
	if log == nil {
		return id
	}
	kind, ok := auditKinds[d.Outcome]
	if !ok {
		if !a.cfg.LogCleanScans || d.Outcome != mediaproxy.Clean {
			return id
		}
		kind = audit.KindClean
	}
	r := audit.Record{
		ID: id, Kind: kind, Direction: dir, Endpoint: d.Endpoint.Name, Media: d.MediaKey.String(), User: d.User,
	}
	if r.User == "" {
		r.User = "unknown"
	}
	if d.Digests.Size > 0 {
		r.Digests = map[string]string{"md5": d.Digests.MD5Hex(), "sha1": d.Digests.SHA1Hex(), "sha256": d.Digests.SHA256Hex()}
		if d.PDQ != nil {
			r.Digests["pdq"] = d.PDQ.Hash.String()
		}
	}
	ev := audit.Evidence{Outcome: string(d.Outcome), Bank: d.Verdict.Bank, HashType: string(d.Verdict.HashType), MatchedHash: d.Verdict.MatchedHash,
		Distance: d.Verdict.Distance, Confidence: d.Verdict.Confidence, Source: d.Verdict.Source, Category: d.Verdict.Category, Form: d.Verdict.Form, Variant: d.Verdict.Variant, Reason: d.Verdict.Reason,
		Notes: d.Verdict.Notes, Unscannable: d.UnscannableReason}
	if d.Outcome == mediaproxy.Review || d.Outcome == mediaproxy.Held {
		reviewEvidence(&ev, d)
	}
	if d.Outcome == mediaproxy.Blocked || d.Outcome == mediaproxy.LateBlocked || d.Outcome == mediaproxy.WouldBlock || d.Outcome == mediaproxy.Review || d.Outcome == mediaproxy.Held {
		ev.Action = actionTaken(d)
	}
	if d.Err != nil {
		ev.Error = d.Err.Error()
	}
	r.Verdict, _ = json.Marshal(ev)
	if err := log.Append(r); err != nil {
		a.log.Error("AUDIT RECORD NOT WRITTEN", zap.String("kind", kind), zap.Stringer("media", d.MediaKey), zap.Error(err))
	}
	return id
}
