package matcher

// The review band: borderline perceptual matches that go to a moderator
// instead of being blocked or let through unremarked.

import (
	"slices"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// ReviewThreshold is the configured review_threshold, 0 without a band.
func (l *Local) ReviewThreshold() int { return l.review }

// reviewPDQ searches the enforcing banks for q's PDQ hashes (the stored
// picture, its dihedral variants and every form) in the review band: a
// hash of usable quality at a distance in (threshold, review], or a hash
// of quality below the minimum within threshold (PDQ's authors advise
// against trusting such hashes, but a near-identical one is worth a look).
// It runs only when the ordinary passes found nothing, so it can never
// hide a match. Evidence is marked Review and carries the quality; it is
// ordered by distance, one per banked entry, at most maxEvidence.
func (l *Local) reviewPDQ(st *localState, q *Query) []Evidence {
	var ev []Evidence
	search := func(h pdq.Hash, quality int, dihedral []pdq.Hash, form pdq.Form) {
		if h.IsZero() {
			return
		}
		low := quality < l.minQuality
		th := l.review
		if low {
			th = l.threshold
		}
		n := len(ev)
		ev = l.matchPDQ(ev, st, h, dihedral, form, false, th)
		kept := ev[:n]
		for _, e := range ev[n:] {
			// Distances within the threshold at a usable quality were the
			// ordinary pass's to find: it found none, so none are here;
			// the check keeps it so should the two ever disagree.
			if !low && e.Distance <= l.threshold {
				continue
			}
			e.Review, e.Quality = true, quality
			kept = append(kept, e)
		}
		ev = kept
	}
	if q.Has&HasPDQ != 0 {
		search(q.PDQ, q.PDQQuality, q.Dihedral, pdq.Form{Variant: pdq.VariantStored})
	}
	for _, f := range q.Forms {
		search(f.Hash, f.Quality, nil, f)
	}
	slices.SortStableFunc(ev, func(a, b Evidence) int { return a.Distance - b.Distance })
	out := ev[:0]
	seen := make(map[string]bool, len(ev))
	for _, e := range ev {
		k := e.Bank + "/" + e.Hash
		if seen[k] || len(out) >= maxEvidence {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	return out
}
