package actions

import (
	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// reviewEvidence adds to a review record what a moderator's decision
// needs without the media: the label and quality of the best evidence and
// the media's own PDQ hashes that fell in the band (the exact digests are
// in Record.Digests already).
func reviewEvidence(ev *audit.Evidence, d *mediaproxy.Decision) {
	v := d.Verdict
	ev.Quality, ev.Label = v.Quality, bestLabel(v)
	q := d.Query
	if q == nil {
		return
	}
	seen := map[string]bool{}
	for _, e := range v.Evidence {
		if !e.Review || e.HashType != matcher.PDQ {
			continue
		}
		fh, ok := formHash(q, e)
		if ok && !seen[fh.PDQ] {
			seen[fh.PDQ] = true
			ev.MatchedPDQ = append(ev.MatchedPDQ, fh)
		}
	}
}

// formHash finds the query hash that review evidence e was found for.
// Evidence of a dihedral variant names the stored picture's hash, which
// dihedral matching turns around again.
func formHash(q *matcher.Query, e matcher.Evidence) (audit.FormHash, bool) {
	if e.Form == "" && (e.Variant == "" || e.Variant == pdq.VariantStored) {
		if q.Has&matcher.HasPDQ == 0 || q.PDQ.IsZero() {
			return audit.FormHash{}, false
		}
		return audit.FormHash{Variant: pdq.VariantStored, PDQ: q.PDQ.String()}, true
	}
	for _, f := range q.Forms {
		if f.Name == e.Form && f.Variant == e.Variant && !f.Hash.IsZero() {
			return audit.FormHash{Form: f.Name, Variant: f.Variant, PDQ: f.Hash.String()}, true
		}
	}
	return audit.FormHash{}, false
}

// bestLabel is the label of a review verdict's best evidence, which
// settle puts first.
func bestLabel(v matcher.Verdict) string {
	if !v.Review || len(v.Evidence) == 0 {
		return ""
	}
	return v.Evidence[0].Label
}

// QuarantineConfirmed quarantines stored media server/mediaID that a
// moderator confirmed under detection id, in the background (with
// Admin), recording the outcome against id. The uploader is not acted
// on: suspending people is the moderator's call, not a side effect.
func (a *Actions) QuarantineConfirmed(id, server, mediaID string) {
	a.quarantineMedia(id, server, mediaID, "")
}

// CanQuarantine reports whether quarantines are configured (Admin).
func (a *Actions) CanQuarantine() bool { return a.cfg.Admin != nil }
