package actions

import (
	"encoding/json"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/notify"
)

// Delivered records a notice's delivery, so a restart does not post it
// again. It is the Matrix notifier's OnDelivered.
func (a *Actions) Delivered(id string) {
	if a.cfg.Audit == nil {
		return
	}
	if err := a.cfg.Audit.Append(audit.Record{Kind: audit.KindAction, Action: audit.ActionNotify, Outcome: audit.OutcomeOK, Ref: id}); err != nil {
		a.log.Error("audit: cannot record a notice's delivery", zap.String("detection", id), zap.Error(err))
	}
}

// RedeliverPending queues notices for blocks whose delivery was never
// recorded (the process stopped first): nothing is lost across restarts.
// Call it once the Matrix notifier has started.
func (a *Actions) RedeliverPending() {
	if a.cfg.Matrix == nil || a.cfg.Audit == nil {
		return
	}
	pending, err := audit.Pending(a.cfg.Audit.Path())
	if err != nil {
		a.log.Error("audit: cannot read undelivered notices", zap.Error(err))
		return
	}
	for _, r := range pending {
		a.cfg.Matrix.Notify(detectionFromRecord(r))
	}
	if len(pending) > 0 {
		a.log.Info("redelivering notices recorded but not delivered before the last stop", zap.Int("count", len(pending)))
	}
}

func detection(id string, d *mediaproxy.Decision, dir string) notify.Detection {
	v := d.Verdict
	media := mxc(d.MediaKey)
	passed := d.Outcome == mediaproxy.WouldBlock || d.Outcome == mediaproxy.Review
	if d.Upload && (!passed || d.UpstreamStatus != 200) {
		// A refused upload stored nothing, and a PUT's media ID is the
		// client's unverified claim: never hand it to a command. A
		// would-block upload the homeserver stored is named, since
		// moderators may want to act on it.
		media = ""
	}
	return notify.Detection{
		ID: id, Time: time.Now(), Direction: dir, Endpoint: d.Endpoint.Name, User: d.User,
		MXC: media, HashType: string(v.HashType), MatchedHash: v.MatchedHash,
		Bank: v.Bank, Source: v.Source, Category: v.Category, Distance: v.Distance, Confidence: v.Confidence,
		Form: v.Form, Variant: v.Variant, Action: actionTaken(d), WouldBlock: d.Outcome == mediaproxy.WouldBlock,
		Review: d.Outcome == mediaproxy.Review || d.Outcome == mediaproxy.Held, Quality: v.Quality, Label: bestLabel(v),
		Digests: fileDigests(d),
	}
}

// fileDigests are the file's exact digests for its notice's story, none
// when the decision was reached without the bytes (a known media ID).
func fileDigests(d *mediaproxy.Decision) notify.Digests {
	if d.Digests.Size == 0 {
		return notify.Digests{}
	}
	return notify.Digests{MD5: d.Digests.MD5Hex(), SHA1: d.Digests.SHA1Hex(), SHA256: d.Digests.SHA256Hex()}
}

func detectionFromRecord(r audit.Record) notify.Detection {
	var v audit.Evidence
	json.Unmarshal(r.Verdict, &v)
	user := r.User
	if user == "unknown" {
		user = ""
	}
	return notify.Detection{
		ID: r.ID, Time: r.Time, Direction: r.Direction, Endpoint: r.Endpoint, User: user,
		MXC: mxcOfRecord(r.Media), HashType: v.HashType, MatchedHash: v.MatchedHash, Bank: v.Bank,
		Source: v.Source, Distance: v.Distance, Confidence: v.Confidence, Form: v.Form, Variant: v.Variant, Action: v.Action,
		Retro: r.Kind == audit.KindRetroBlock, FirstSeen: v.FirstSeen, Category: v.Category, WouldBlock: r.Kind == audit.KindWouldBlock,
		Review: r.Kind == audit.KindReview, Quality: v.Quality, Label: v.Label,
		Digests: notify.Digests{MD5: r.Digests["md5"], SHA1: r.Digests["sha1"], SHA256: r.Digests["sha256"]},
	}
}

func mxc(k mediaproxy.MediaKey) string {
	if k.IsZero() || k.Server == "" {
		return ""
	}
	return "mxc://" + k.String()
}

// mxcOfRecord is mxc for the media an audit record names ("server/id",
// "/id" while the server's name was unknown).
func mxcOfRecord(media string) string {
	if media == "" || strings.HasPrefix(media, "/") {
		return ""
	}
	return "mxc://" + media
}

func actionTaken(d *mediaproxy.Decision) string {
	switch {
	case d.Outcome == mediaproxy.Review:
		return "none: the " + Direction(d) + " passed; a moderator is asked to confirm or dismiss"
	case d.Outcome == mediaproxy.Held && d.Upload:
		return "upload held (403), nothing stored, until a moderator confirms or dismisses"
	case d.Outcome == mediaproxy.Held:
		return "download held (404) until a moderator confirms or dismisses"
	case d.Outcome == mediaproxy.WouldBlock:
		return "none: report-only mode, the " + Direction(d) + " passed"
	case d.Outcome == mediaproxy.LateBlocked:
		return "connection aborted before the end of the download; media ID blocked"
	case d.Upload:
		return "upload refused (403), nothing stored"
	default:
		return "download refused (404); media ID blocked"
	}
}
