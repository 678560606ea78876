package pdq

import "fmt"

// Variant kinds: what was done to the picture before a form was hashed.
// They are the values of the `variant` metrics label and of the audit
// record's variant field, so the set is closed and names no input.
const (
	// VariantStored is the picture as stored (Result.Hash).
	VariantStored = "stored"
	// VariantFrame is a further animation or video frame.
	VariantFrame = "frame"
	// VariantDisplayed is a picture with its EXIF orientation applied.
	VariantDisplayed = "displayed"
	// VariantComposited is a transparent picture on white or black.
	VariantComposited = "composited"
	// VariantColourManaged is a picture with its ICC profile applied.
	VariantColourManaged = "colour-managed"
	// VariantEmbedded is a picture found inside another file (a PDF's
	// image, a ZIP entry, cover art); set by the caller that carved it.
	VariantEmbedded = "embedded"
	// VariantTrimmed is the picture without its uniform borders.
	VariantTrimmed = "trimmed"
	// VariantPeeled is the picture without edge bars that are mostly one
	// colour (caption bars with text).
	VariantPeeled = "peeled"
	// VariantDegapped is the picture without any uniform row or column
	// (the gap between two halves).
	VariantDegapped = "degapped"
	// VariantQuadrant is one quarter of the (trimmed) picture: one tile
	// of a 2×2 collage or tiling.
	VariantQuadrant = "quadrant"
	// VariantNegative is the complemented hash: the colour negative.
	VariantNegative = "negative"
	// VariantStretched is the picture with its contrast stretched to the
	// full range (a washed-out copy hashes the same but with a quality
	// too low to be matched).
	VariantStretched = "stretched"
	// VariantWindow is a part of the picture bounded by straight edges
	// (a picture pasted on a busy canvas); deep search only.
	VariantWindow = "window"
	// VariantRotated is the picture counter-rotated by a few degrees and
	// trimmed; deep search only.
	VariantRotated = "rotated"
)

// Search selects which variants of a picture are hashed beyond the forms
// a viewer is shown. Each variant undoes one cheap edit people make to
// slip a picture past hash lists.
type Search uint8

const (
	// SearchOff hashes only the forms a viewer is shown.
	SearchOff Search = iota
	// SearchDefault adds the variants that cost at most as much again
	// as the plain hash: trimmed, peeled, degapped, quadrants, negative,
	// stretched.
	SearchDefault
	// SearchDeep adds the pasted-picture windows and the rotation sweep.
	SearchDeep
)

func (s Search) String() string {
	switch s {
	case SearchOff:
		return "off"
	case SearchDefault:
		return "default"
	case SearchDeep:
		return "deep"
	}
	return fmt.Sprintf("Search(%d)", s)
}

// ParseSearch reads "off", "default" or "deep".
func ParseSearch(s string) (Search, error) {
	switch s {
	case "off":
		return SearchOff, nil
	case "default", "":
		return SearchDefault, nil
	case "deep":
		return SearchDeep, nil
	}
	return 0, fmt.Errorf("pdq search %q: want default, deep or off", s)
}
