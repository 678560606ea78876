// Package actions owns turning a mediaproxy Decision into audit records,
// management-room notices, Synapse quarantine and the redelivery of
// notices recorded but never delivered. [Actions] is the proxy's
// [mediaproxy.Observer]; the adapter adds what belongs to its server
// (metrics, request variables, events) around it.
//
// It must not import Caddy.
package actions

import (
	"context"
	"sync"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/notify"
)

// Notifier queues a notice without blocking; false means the queue was
// full and the notice was dropped. *notify.Matrix and *notify.Webhook
// satisfy it.
type Notifier interface {
	Notify(d notify.Detection) bool
}

// Admin removes stored media through the homeserver's admin API.
// *homeserver.Admin satisfies it.
type Admin interface {
	QuarantineMedia(ctx context.Context, server, mediaID string) error
	QuarantineUserMedia(ctx context.Context, userID string) (int, error)
	SuspendUser(ctx context.Context, userID string) error
}

// Config configures Actions. Every part is optional.
type Config struct {
	// Audit receives a record of every block, unscannable, unscanned,
	// refused and undecodable decision (and clean ones with
	// LogCleanScans), written before the response goes out, and of every
	// follow-up action. Nil records nothing.
	Audit *audit.Log
	// LogCleanScans also records clean decisions.
	LogCleanScans bool
	// Matrix is the management-room notifier. Notices it reports
	// delivered (through Delivered) are recorded, and RedeliverPending
	// hands it the blocks whose delivery was never recorded.
	Matrix Notifier
	// Webhook is told of every block too, without redelivery.
	Webhook Notifier
	// Admin quarantines blocked media the homeserver stores.
	Admin Admin
	// QuarantineUserMedia also quarantines all the requester's media
	// when their upload or download is blocked (needs Admin).
	QuarantineUserMedia bool
	// SuspendUser also suspends the requester (needs Admin).
	SuspendUser bool
	// Logger receives structured logs; never media bytes or tokens.
	Logger *zap.Logger
}

// Actions acts on decisions. Safe for concurrent use.
type Actions struct {
	cfg    Config
	log    *zap.Logger
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts background admin actions (tests wait for them).
	wg sync.WaitGroup
}

// New returns Actions for cfg.
func New(cfg Config) *Actions {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Actions{cfg: cfg, log: cfg.Logger, ctx: ctx, cancel: cancel}
}

// Close abandons admin actions still running in the background.
func (a *Actions) Close() { a.cancel() }

// Direction is "upload" or "download", as records, logs and labels say it.
func Direction(d *mediaproxy.Decision) string {
	if d.Upload {
		return "upload"
	}
	return "download"
}

// Observe records the decision and, for a block, logs it, starts the
// quarantine and queues the notices. It runs synchronously before the
// response goes out, so the record is durable before a block is answered;
// nothing in it waits on the network.
func (a *Actions) Observe(d *mediaproxy.Decision) {
	dir := Direction(d)
	id := a.record(d, dir)
	switch d.Outcome {
	case mediaproxy.Blocked, mediaproxy.LateBlocked:
		v := d.Verdict
		// Never the token, never the bytes: who and what, in hashes.
		a.log.Warn("media blocked",
			zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name),
			zap.String("verdict", string(d.Outcome)), zap.Stringer("media", d.MediaKey),
			zap.String("bank", v.Bank), zap.String("hash_type", string(v.HashType)), zap.String("variant", VariantLabel(v.Variant)),
			zap.String("matched_hash_prefix", MatchedPrefix(v.MatchedHash)), zap.Int("distance", v.Distance),
			zap.String("source", v.Source), zap.String("sha256", d.Digests.SHA256Hex()), zap.String("user", d.User),
			zap.String("remote_ip", remoteAddr(d)))
		a.quarantine(id, d)
		a.notify(id, detection(id, d, dir))
	case mediaproxy.WouldBlock:
		v := d.Verdict
		a.log.Info("media would have been blocked (report-only mode); passed",
			zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name), zap.Stringer("media", d.MediaKey),
			zap.String("bank", v.Bank), zap.String("category", v.Category), zap.String("hash_type", string(v.HashType)),
			zap.String("variant", VariantLabel(v.Variant)), zap.String("matched_hash_prefix", MatchedPrefix(v.MatchedHash)),
			zap.Int("distance", v.Distance), zap.String("source", v.Source), zap.String("sha256", d.Digests.SHA256Hex()),
			zap.String("user", d.User))
		a.notify(id, detection(id, d, dir))
	case mediaproxy.Review, mediaproxy.Held:
		v := d.Verdict
		a.log.Info("borderline match: review requested",
			zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name), zap.String("verdict", string(d.Outcome)),
			zap.Stringer("media", d.MediaKey), zap.String("detection", id), zap.String("bank", v.Bank),
			zap.String("variant", VariantLabel(v.Variant)), zap.String("matched_hash_prefix", MatchedPrefix(v.MatchedHash)),
			zap.Int("distance", v.Distance), zap.Int("quality", v.Quality), zap.String("sha256", d.Digests.SHA256Hex()),
			zap.String("user", d.User))
		// No quarantine and no Mjolnir command: a human decides.
		a.notify(id, detection(id, d, dir))
	case mediaproxy.Refused, mediaproxy.Unscanned:
		// Per request only at debug level: a dead backend would otherwise
		// write one line per upload. The matcher logs the failure and each
		// breaker transition once, requests_total counts these verdicts and
		// the audit log keeps every one.
		if ce := a.log.Check(zap.DebugLevel, "media not scanned: matcher unavailable"); ce != nil {
			ce.Write(zap.String("direction", dir),
				zap.String("endpoint", d.Endpoint.Name), zap.String("verdict", string(d.Outcome)),
				zap.Stringer("media", d.MediaKey), zap.Error(d.Err), zap.Strings("notes", d.Verdict.Notes))
		}
	case mediaproxy.Undecodable:
		a.log.Warn("image refused: it could not be decoded (on_undecodable_image block)", zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name),
			zap.Stringer("media", d.MediaKey), zap.String("reason", d.UnscannableReason), zap.String("sha256", d.Digests.SHA256Hex()),
			zap.String("user", d.User))
	case mediaproxy.Unscannable:
		a.log.Info("media unscannable", zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name),
			zap.Stringer("media", d.MediaKey), zap.String("reason", d.UnscannableReason), zap.String("sha256", d.Digests.SHA256Hex()))
	default:
		if ce := a.log.Check(zap.DebugLevel, "media decided"); ce != nil {
			ce.Write(zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name),
				zap.String("verdict", string(d.Outcome)), zap.Stringer("media", d.MediaKey), zap.Duration("hash_time", d.HashTime))
		}
	}
}

// notify queues det for the webhook and the management room.
func (a *Actions) notify(id string, det notify.Detection) {
	if wh := a.cfg.Webhook; wh != nil && !wh.Notify(det) {
		a.log.Error("webhook queue full: notice dropped (it is in the audit log)", zap.String("detection", id))
	}
	if n := a.cfg.Matrix; n != nil && !n.Notify(det) {
		a.log.Error("notice queue full: moderators not told of this detection (it is in the audit log)", zap.String("detection", id))
	}
}

func remoteAddr(d *mediaproxy.Decision) string {
	if d.Request == nil {
		return ""
	}
	return d.Request.RemoteAddr
}

// MatchedPrefix is as much of a matched hash as logs and events show: at
// most its first 16 characters.
func MatchedPrefix(h string) string {
	if len(h) > 16 {
		return h[:16]
	}
	return h
}

// VariantLabel is the variant label of a block: one of pdq's closed set
// of kinds. A match with no kind is of the media as stored (evidence from
// before kinds existed); anything outside the set is "other", so no value
// that reached a verdict can grow a metric label's cardinality.
func VariantLabel(v string) string {
	switch v {
	case "":
		return pdq.VariantStored
	case pdq.VariantStored, pdq.VariantFrame, pdq.VariantDisplayed, pdq.VariantComposited,
		pdq.VariantColourManaged, pdq.VariantEmbedded, pdq.VariantTrimmed, pdq.VariantPeeled,
		pdq.VariantDegapped, pdq.VariantQuadrant, pdq.VariantNegative, pdq.VariantStretched,
		pdq.VariantWindow, pdq.VariantRotated:
		return v
	}
	return "other"
}

var _ mediaproxy.Observer = (*Actions)(nil)
