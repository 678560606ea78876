package matcher

// Report-only mode and bank categories: how a list is rolled out, and what
// kind of harm it lists.

import (
	"context"
	"fmt"
)

// Modes of a bank or backend.
const (
	// ModeEnforce blocks what the list matches (the default).
	ModeEnforce = "enforce"
	// ModeReport only reports what the list matches: the media passes,
	// and the match is audited, counted and posted as "would have
	// blocked". It is for rolling out a new list or judging a source's
	// false-positive rate before trusting it.
	ModeReport = "report"
)

// ParseMode reads a mode: enforce or report; "" is def.
func ParseMode(s, def string) (string, error) {
	switch s {
	case "":
		return def, nil
	case ModeEnforce, ModeReport:
		return s, nil
	}
	return "", fmt.Errorf("mode must be %s or %s, not %q", ModeEnforce, ModeReport, s)
}

// Categories name the kind of harm a bank lists. The set is closed so that
// a category can label metrics and be acted on by the tools reading
// notices and audit records: child sexual abuse material, non-consensual
// intimate imagery, terrorist and violent extremist content, and spam.
var Categories = []string{"csam", "ncii", "terror", "spam"}

// ValidCategory reports whether c is "" (no category) or one of
// Categories.
func ValidCategory(c string) bool {
	if c == "" {
		return true
	}
	for _, k := range Categories {
		if c == k {
			return true
		}
	}
	return false
}

// BackendPolicy is a remote backend's mode and category, applied by the
// Guard to what it answers.
type BackendPolicy struct {
	// Mode is ModeEnforce (or "") or ModeReport.
	Mode string
	// Category is the kind of harm the backend's lists hold, one of
	// Categories or "".
	Category string
}

// apply marks v's evidence with the backend's category and, in report
// mode, turns its match into a would-block.
func (p BackendPolicy) apply(v Verdict) Verdict {
	if p.Category == "" && p.Mode != ModeReport {
		return v
	}
	if len(v.Evidence) > 0 {
		ev := make([]Evidence, len(v.Evidence))
		copy(ev, v.Evidence)
		for i := range ev {
			if ev[i].Category == "" {
				ev[i].Category = p.Category
			}
			if p.Mode == ModeReport {
				ev[i].ReportOnly = true
			}
		}
		v.Evidence = ev
	}
	if v.Category == "" {
		v.Category = p.Category
	}
	if p.Mode == ModeReport && v.Match {
		v.Match, v.WouldBlock = false, true
	}
	return v
}

// settle sets v's summary fields from its evidence, which is ordered best
// first: the best evidence from an enforcing list makes a match; without
// one, the best report-only evidence makes a would-block; without either,
// the best review-band evidence makes a review. A report-only list must
// never hide an enforcing one, nor review evidence a match, so each kind
// is looked for wherever it sits.
func settle(v *Verdict) {
	v.Match, v.WouldBlock, v.Review = false, false, false
	if len(v.Evidence) == 0 {
		return
	}
	best := -1
	for i := range v.Evidence {
		if !v.Evidence[i].ReportOnly && !v.Evidence[i].Review {
			best = i
			v.Match = true
			break
		}
	}
	for i := 0; best < 0 && i < len(v.Evidence); i++ {
		if !v.Evidence[i].Review {
			best = i
			v.WouldBlock = true
		}
	}
	if best < 0 {
		best = 0
		v.Review = true
	}
	b := &v.Evidence[best]
	v.Bank, v.HashType, v.MatchedHash, v.Distance, v.Source, v.Form, v.Variant, v.Category = b.Bank, b.HashType, b.Hash, b.Distance, b.Source, b.Form, b.Variant, b.Category
	v.Quality = b.Quality
	if b.HashType == PDQ {
		v.Confidence = PDQConfidence(b.Distance)
	} else {
		v.Confidence = 1
	}
	v.Reason = reason(b)
	switch {
	case v.WouldBlock:
		v.Reason = "report only: " + v.Reason
	case v.Review:
		v.Reason = "review: " + v.Reason
	}
}

// MatchEachBank is Match with the bound on evidence applied to each bank
// on its own rather than to all of them: every bank holding an entry near
// q gives its closest entries, however many closer entries other banks
// hold. It is for answers that must name every bank that matches (the
// HMA-compatible surface's /m/lookup, whose clients act on some banks
// only); the proxy needs only the best evidence and uses Match. Report-
// only banks give evidence marked as such, enforcing ones first.
func (l *Local) MatchEachBank(ctx context.Context, q Query) (Verdict, error) {
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	st := l.state.Load()
	var out Verdict
	for _, report := range []bool{false, true} {
		for _, b := range st.active {
			if b.report != report {
				continue
			}
			v := l.matchPass(&localState{active: []*Bank{b}}, &q, report)
			out.Evidence = append(out.Evidence, v.Evidence...)
		}
	}
	settle(&out)
	return out, nil
}
