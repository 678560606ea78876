package learn

import (
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// learnedVariants are the forms of a quarantined picture whose PDQ hashes
// are banked, beside its exact digests and its picture as stored. Each is
// the whole picture as a viewer may be shown it (frames, orientation,
// transparency, colour profile) or with a cheap edit undone (borders,
// caption bars, gaps, washed-out contrast, a small rotation): a copy of
// the picture in that form is the picture. Left out:
//   - quadrant and window: a part of the picture, not the picture; a
//     quarter of a photo banked on its own would refuse every picture
//     sharing that quarter;
//   - negative: the proxy complements every upload's hash anyway, so a
//     banked negative adds nothing;
//   - embedded (and every form after it, which belongs to a file found
//     inside the media, see mediaproxy's appendEmbeddedForms): a
//     moderator judged the file, not each logo, font or cover it
//     carries.
var learnedVariants = map[string]bool{
	pdq.VariantStored: true, pdq.VariantFrame: true, pdq.VariantDisplayed: true, pdq.VariantComposited: true,
	pdq.VariantColourManaged: true, pdq.VariantTrimmed: true, pdq.VariantPeeled: true, pdq.VariantDegapped: true,
	pdq.VariantStretched: true, pdq.VariantRotated: true,
}

// entriesOf turns what the proxy's scan found in a quarantined file into
// bank entries: its exact digests (the md5 entry also matches a video's
// MD5, as video_md5 entries do) and the PDQ hash of every learned form
// of quality at least minQuality, each once. A file the proxy judges by
// its exact digests only (not a picture, undecodable, too large to hash)
// gives those alone.
func entriesOf(fs mediaproxy.FileScan, minQuality int) []matcher.OwnedEntry {
	d := fs.Digests
	out := []matcher.OwnedEntry{
		{Type: matcher.SHA256, Hash: d.SHA256Hex()},
		{Type: matcher.MD5, Hash: d.MD5Hex()},
		{Type: matcher.SHA1, Hash: d.SHA1Hex()},
	}
	seen := map[pdq.Hash]bool{}
	add := func(h pdq.Hash, quality int) {
		// A low-quality hash (a near-blank picture) is not matched on
		// a query; banked, it would match far too much.
		if h.IsZero() || quality < minQuality || seen[h] {
			return
		}
		seen[h] = true
		out = append(out, matcher.OwnedEntry{Type: matcher.PDQ, Hash: h.String()})
	}
	q := fs.Query
	if q.Has&matcher.HasPDQ != 0 {
		add(q.PDQ, q.PDQQuality)
	}
	for _, f := range q.Forms {
		if f.Variant == pdq.VariantEmbedded {
			break
		}
		if learnedVariants[f.Variant] {
			add(f.Hash, f.Quality)
		}
	}
	return out
}

// pdqCount is how many of es are PDQ hashes.
func pdqCount(es []matcher.OwnedEntry) int {
	n := 0
	for _, e := range es {
		if e.Type == matcher.PDQ {
			n++
		}
	}
	return n
}
