package caddymodule

import (
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"

	"github.com/mediaguard/mediaguard/actions"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// observer adds to the actions (which the service runs first) what
// belongs to Caddy: the {http.vars.mediaguard_verdict} placeholder,
// metrics and the mediaguard.blocked event. It runs before the response
// goes out.
type observer struct {
	app *App
}

func (o *observer) Observe(d *mediaproxy.Decision) {
	caddyhttp.SetVar(d.Request.Context(), "mediaguard_verdict", string(d.Outcome))
	count(d)
	if d.Outcome == mediaproxy.Blocked || d.Outcome == mediaproxy.LateBlocked {
		o.emit(d)
	}
}

// count updates the per-decision metrics.
func count(d *mediaproxy.Decision) {
	dir := actions.Direction(d)
	scanned.WithLabelValues(dir, verdictLabel(d)).Inc()
	if d.Digests.Size > 0 {
		bytesHashed.WithLabelValues(dir).Add(float64(d.Digests.Size))
		hashSeconds.WithLabelValues(dir).Observe(d.HashTime.Seconds())
		matchSeconds.WithLabelValues(dir).Observe(d.MatchTime.Seconds())
	}
	if d.Outcome == mediaproxy.Blocked || d.Outcome == mediaproxy.LateBlocked {
		blocks.WithLabelValues(dir, string(d.Verdict.HashType), actions.VariantLabel(d.Verdict.Variant)).Inc()
		bankBlocks.WithLabelValues(bankLabel(d.Verdict.Bank), string(d.Verdict.HashType)).Inc()
	}
	if d.Outcome == mediaproxy.WouldBlock {
		bankWouldBlocks.WithLabelValues(bankLabel(d.Verdict.Bank), string(d.Verdict.HashType)).Inc()
	}
}

// verdictLabel is the requests_total verdict: the outcome, except that a
// clean upload the homeserver did not accept (an error status, or no
// answer at all) was never stored, so it is not counted as clean.
func verdictLabel(d *mediaproxy.Decision) string {
	if d.Upload && d.Outcome == mediaproxy.Clean && (d.UpstreamStatus < 200 || d.UpstreamStatus > 299) {
		return notStored
	}
	return string(d.Outcome)
}

// notStored is the verdict label of a clean upload the homeserver refused.
const notStored = "not_stored"

func (o *observer) emit(d *mediaproxy.Decision) {
	ev := o.app.events
	if ev == nil || !ev.ShouldEmit("mediaguard.blocked") {
		return
	}
	v := d.Verdict
	ev.Emit(o.app.ctx, "mediaguard.blocked", map[string]any{
		"direction": actions.Direction(d), "endpoint": d.Endpoint.Name, "verdict": string(d.Outcome),
		"media": d.MediaKey.String(), "bank": v.Bank, "hash_type": string(v.HashType), "variant": actions.VariantLabel(v.Variant),
		"matched_hash_prefix": actions.MatchedPrefix(v.MatchedHash), "distance": v.Distance, "source": v.Source,
		"confidence": v.Confidence, "sha256": d.Digests.SHA256Hex(), "user": d.User,
	})
}
