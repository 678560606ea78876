package caddymodule

import (
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// observer turns the proxy's decisions into metrics, logs, the
// {http.vars.mediaguard_verdict} placeholder and the mediaguard.blocked
// event. It runs before the response goes out.
type observer struct {
	app *App
	log *zap.Logger
}

func (o *observer) Observe(d *mediaproxy.Decision) {
	dir := "download"
	if d.Upload {
		dir = "upload"
	}
	caddyhttp.SetVar(d.Request.Context(), "mediaguard_verdict", string(d.Outcome))
	id := o.record(d, dir)
	scanned.WithLabelValues(dir, string(d.Outcome)).Inc()
	if d.Digests.Size > 0 {
		bytesHashed.WithLabelValues(dir).Add(float64(d.Digests.Size))
		hashSeconds.WithLabelValues(dir).Observe(d.HashTime.Seconds())
		matchSeconds.WithLabelValues(dir).Observe(d.MatchTime.Seconds())
	}
	switch d.Outcome {
	case mediaproxy.Blocked, mediaproxy.LateBlocked:
		v := d.Verdict
		blocks.WithLabelValues(dir, string(v.HashType), variantLabel(v.Variant)).Inc()
		matched := v.MatchedHash
		if len(matched) > 16 {
			matched = matched[:16]
		}
		// Never the token, never the bytes: who and what, in hashes.
		o.log.Warn("media blocked",
			zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name),
			zap.String("verdict", string(d.Outcome)), zap.String("media", d.MediaKey),
			zap.String("bank", v.Bank), zap.String("hash_type", string(v.HashType)), zap.String("variant", variantLabel(v.Variant)),
			zap.String("matched_hash_prefix", matched), zap.Int("distance", v.Distance),
			zap.String("source", v.Source), zap.String("sha256", d.Digests.SHA256Hex()), zap.String("user", d.User),
			zap.String("remote_ip", d.Request.RemoteAddr))
		o.emit(d, dir, matched)
		o.app.quarantine(id, d)
		if wh := o.app.webhook; wh != nil && !wh.Notify(detection(id, d, dir)) {
			o.log.Error("webhook queue full: notice dropped (it is in the audit log)", zap.String("detection", id))
		}
		if n := o.app.notifier; n != nil && !n.Notify(detection(id, d, dir)) {
			o.log.Error("notice queue full: moderators not told of this block (it is in the audit log)", zap.String("detection", id))
		}
	case mediaproxy.Refused, mediaproxy.Unscanned:
		// Per request only at debug level: a dead backend would otherwise
		// write one line per upload. The matcher logs the failure and each
		// breaker transition once, requests_total counts these verdicts and
		// the audit log keeps every one.
		if ce := o.log.Check(zap.DebugLevel, "media not scanned: matcher unavailable"); ce != nil {
			ce.Write(zap.String("direction", dir),
				zap.String("endpoint", d.Endpoint.Name), zap.String("verdict", string(d.Outcome)),
				zap.String("media", d.MediaKey), zap.Error(d.Err), zap.Strings("notes", d.Verdict.Notes))
		}
	case mediaproxy.Undecodable:
		o.log.Warn("image refused: it could not be decoded (on_undecodable_image block)", zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name),
			zap.String("media", d.MediaKey), zap.String("reason", d.UnscannableReason), zap.String("sha256", d.Digests.SHA256Hex()),
			zap.String("user", d.User))
	case mediaproxy.Unscannable:
		o.log.Info("media unscannable", zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name),
			zap.String("media", d.MediaKey), zap.String("reason", d.UnscannableReason), zap.String("sha256", d.Digests.SHA256Hex()))
	default:
		if ce := o.log.Check(zap.DebugLevel, "media decided"); ce != nil {
			ce.Write(zap.String("direction", dir), zap.String("endpoint", d.Endpoint.Name),
				zap.String("verdict", string(d.Outcome)), zap.String("media", d.MediaKey), zap.Duration("hash_time", d.HashTime))
		}
	}
}

func (o *observer) emit(d *mediaproxy.Decision, dir, matched string) {
	ev := o.app.events
	if ev == nil || !ev.ShouldEmit("mediaguard.blocked") {
		return
	}
	v := d.Verdict
	ev.Emit(o.app.ctx, "mediaguard.blocked", map[string]any{
		"direction": dir, "endpoint": d.Endpoint.Name, "verdict": string(d.Outcome),
		"media": d.MediaKey, "bank": v.Bank, "hash_type": string(v.HashType), "variant": variantLabel(v.Variant),
		"matched_hash_prefix": matched, "distance": v.Distance, "source": v.Source,
		"confidence": v.Confidence, "sha256": d.Digests.SHA256Hex(), "user": d.User,
	})
}

// variantLabel is the variant label of a block: one of pdq's closed set
// of kinds. A match with no kind is of the media as stored (evidence from
// before kinds existed); anything outside the set is "other", so no value
// that reached a verdict can grow the label's cardinality.
func variantLabel(v string) string {
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
