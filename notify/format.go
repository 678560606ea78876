// Package notify delivers detection notices to a Matrix room (typically the
// Mjolnir management room) without ever blocking the request path that made
// the detection.
//
// Notices are sent as m.notice because Mjolnir never parses m.notice as a
// command, so nothing a user controls (user IDs, labels) can be turned into
// a "!mjolnir ..." command by appearing in a notice.
//
// It is part of the act stage and must not import the proxy, the matcher
// or Caddy: callers hand it a Detection.
package notify

import (
	"fmt"
	"html"
	"strconv"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// Detection describes one blocked media item. It carries only metadata:
// never media bytes and never access tokens.
type Detection struct {
	// ID is the stable detection ID. The Matrix transaction ID is derived
	// from it, so a retry or a redelivery after restart never posts twice.
	ID string
	// Time is when the detection happened.
	Time time.Time
	// Direction is "upload" or "download".
	Direction string
	// Endpoint is the endpoint family, e.g. "upload", "client_download",
	// "federation_download".
	Endpoint string
	// User is the Matrix user ID responsible, or "" when unknown.
	User string
	// MXC is the mxc://server/id URI of the media, or "".
	MXC string
	// HashType names the hash that matched, e.g. "pdq", "sha256", "md5".
	HashType string
	// MatchedHash is the full hex hash from the list; notices show only
	// its first 16 characters so a notice never republishes a full list entry.
	MatchedHash string
	// Bank is the hash bank (list) the hash came from.
	Bank string
	// Source is where the bank came from (e.g. an HMA instance).
	Source string
	// Distance is the PDQ Hamming distance (0 for exact hashes).
	Distance int
	// Form names the form of the media that matched when it was not the
	// picture as stored ("frame 3", "displayed", "on white", ...).
	Form string
	// Variant is the kind of what matched, one of pdq's closed set
	// ("stored", "embedded", "quadrant", "negative", ...; "" when not
	// known): what the picture had been through, where Form says which
	// part of the file it was.
	Variant string
	// Confidence is the match confidence in [0,1].
	Confidence float64
	// Action is what was done, e.g. "upload refused (403)".
	Action string
	// Retro marks stored media found listed by a retro-scan after a bank
	// change, not a request: the notice says so, and when the media was
	// first seen.
	Retro bool
	// FirstSeen is when mediaguard first saw the media (retro notices).
	FirstSeen time.Time
	// WouldBlock marks a match by a list in report mode: nothing was
	// blocked, and the notice says it would have been.
	WouldBlock bool
	// Category is the kind of harm the bank lists (csam, ncii, terror,
	// spam), "" when not configured.
	Category string
	// Review marks a borderline match put to the moderators (the review
	// band): the notice asks them to confirm or dismiss Detection ID.
	Review bool
	// Quality is the PDQ quality of the hash that matched (reviews).
	Quality int
	// Label is the matched entry's label (reviews).
	Label string
	// Digests are the media's own exact digests. They are never shown
	// (for an exact match one of them is the list's entry): they tie the
	// notice to later reports of the same file (MatrixConfig.Stories).
	Digests Digests
}

// hashPrefixLen is how many hex characters of the matched hash a notice shows:
// enough for a moderator to find the entry, not enough to republish it.
const hashPrefixLen = 16

// maxField bounds every field in a notice, so one absurd value (a huge
// user ID from a hostile client) cannot make the notice exceed Matrix's
// 64 KiB event limit and be rejected forever.
const maxField = 256

// clean makes a field safe for the plain body: no line breaks (which could
// forge extra lines of the notice), no control characters, bounded length.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxField {
		s = strings.ToValidUTF8(s[:maxField], "") + "…"
	}
	return s
}

// cleanURI additionally drops any query or fragment: an mxc URI has none, so
// one can only be an accident such as a download URL with ?access_token=.
func cleanURI(s string) string {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	return clean(s)
}

// hashPrefix returns the lowercased first hashPrefixLen characters.
func hashPrefix(h string) string {
	h = strings.ToLower(clean(h))
	if len(h) > hashPrefixLen {
		h = h[:hashPrefixLen]
	}
	return h
}

func isPDQ(hashType string) bool { return strings.EqualFold(hashType, "pdq") }

// or returns s, or def when s is empty, so a notice never shows a blank.
func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Format renders d as a plain-text body and an HTML formatted_body
// (org.matrix.custom.html). Every field is sanitised and, in the HTML,
// escaped, because user IDs and labels are attacker-influenced.
func Format(d Detection) (body, htmlBody string) {
	return format(d, 0, 0)
}

// format renders a single notice (more == 0) or the summary of more
// suppressed identical detections over window.
func format(d Detection, more int, window time.Duration) (string, string) {
	dir := or(clean(d.Direction), "media")
	endpoint := or(clean(d.Endpoint), "unknown endpoint")
	hashType := or(clean(d.HashType), "hash")
	prefix := or(hashPrefix(d.MatchedHash), "?")
	bank := or(clean(d.Bank), "?")
	source := or(clean(d.Source), "?")
	action := or(clean(d.Action), "blocked")

	var title string
	if more > 0 {
		title = fmt.Sprintf("… and %d more identical detections in the last %s", more, windowText(window))
	} else {
		article := "a"
		if strings.IndexAny(dir[:1], "aeiouAEIOU") == 0 {
			article = "an"
		}
		title = fmt.Sprintf("mediaguard blocked %s %s (%s)", article, dir, endpoint)
		if d.WouldBlock {
			title = fmt.Sprintf("mediaguard would have blocked %s %s (%s): report-only mode, it passed", article, dir, endpoint)
		}
		if d.Retro {
			title = "mediaguard: stored media now matches " + bank
		}
		if d.Review {
			title = fmt.Sprintf("mediaguard: review requested for %s %s (%s)", article, dir, endpoint)
		}
	}
	match := "exact match"
	if isPDQ(d.HashType) {
		match = fmt.Sprintf("PDQ distance %d", d.Distance)
	}
	if f := clean(d.Form); f != "" {
		match += " (" + f + ")"
	}
	if v := variantText[d.Variant]; v != "" {
		match += ", " + v
	}

	type line struct {
		label, text string
		code        bool
	}
	lines := []line{{whoLabel(d), or(clean(d.User), "unknown"), false}}
	if m := cleanURI(d.MXC); m != "" {
		lines = append(lines, line{"Media", m, true})
	}
	if d.Retro && !d.FirstSeen.IsZero() {
		lines = append(lines, line{"First seen", d.FirstSeen.UTC().Format(time.RFC3339), false})
	}
	bankLine := bank + categoryText(d.Category) + " (source " + source + ")"
	if l := clean(d.Label); d.Review && l != "" {
		bankLine += ", entry " + l
	}
	if d.Review && d.Quality > 0 {
		match += fmt.Sprintf(", quality %d", d.Quality)
	}
	lines = append(lines,
		line{"Matched", hashType + " " + prefix + "…", true},
		line{"Bank", bankLine, false},
		line{"Match", fmt.Sprintf("%s, confidence %.2f", match, d.Confidence), false},
		line{"Action", action, false},
	)
	if more > 0 {
		lines = append(lines, line{"Last detection", clean(d.ID), true})
	} else if id := clean(d.ID); id != "" {
		lines = append(lines, line{"Detection", id, true})
	}
	// The summary repeats what was blocked so it reads on its own when the
	// individual notices have scrolled away.
	if d.Retro {
		how := "by a retro-scan of the media ledger after a bank change"
		if d.Endpoint == "backfill" {
			how = "by a backfill of the homeserver's media store"
		}
		lines = append([]line{{"Found", how, false}}, lines...)
	} else if d.Review {
		lines = append([]line{{"Review requested", dir + " via " + endpoint + ": confirm or dismiss detection " + clean(d.ID), false}}, lines...)
	} else if d.WouldBlock {
		lines = append([]line{{"Would have blocked", dir + " via " + endpoint, false}}, lines...)
	} else {
		lines = append([]line{{"Blocked", dir + " via " + endpoint, false}}, lines...)
	}

	var b, h strings.Builder
	icon := "🚨 "
	if d.WouldBlock {
		icon = "🔎 "
	}
	if d.Review {
		icon = "⚖️ "
	}
	b.WriteString(icon + title)
	h.WriteString("<p><strong>" + icon + html.EscapeString(title) + "</strong></p><ul>")
	for _, l := range lines {
		b.WriteString("\n" + l.label + ": " + l.text)
		t := html.EscapeString(l.text)
		if l.code {
			t = "<code>" + t + "</code>"
		}
		h.WriteString("<li><strong>" + l.label + ":</strong> " + t + "</li>")
	}
	if !d.Time.IsZero() {
		ts := d.Time.UTC().Format(time.RFC3339)
		b.WriteString("\nTime: " + ts)
		h.WriteString("<li><strong>Time:</strong> " + ts + "</li>")
	}
	h.WriteString("</ul>")
	return b.String(), h.String()
}

// whoLabel names the user's part in what happened. The user of a download
// is whoever asked for it (another user, or a bot such as Mjolnir's
// scanner), not the uploader: calling both "User" made moderators act on
// the wrong account.
func whoLabel(d Detection) string {
	switch {
	case d.Retro || d.Direction == "upload":
		// A retro-scan's user is the uploader the ledger recorded.
		return "Uploaded by"
	case d.Direction == "download":
		return "Requested by"
	}
	return "User"
}

// variantText says in a notice what a match of each kind of the media
// was of, so a moderator looks at the right thing: the quadrant of a
// collage, not the whole. The picture as stored needs no words; a kind
// not listed is left to the machine-readable field.
var variantText = map[string]string{
	pdq.VariantFrame:         "matched another of its frames",
	pdq.VariantDisplayed:     "matched it as displayed (orientation applied)",
	pdq.VariantComposited:    "matched it composited on a background",
	pdq.VariantColourManaged: "matched it with its colour profile applied",
	pdq.VariantEmbedded:      "matched a file embedded in it",
	pdq.VariantTrimmed:       "matched it with its borders trimmed",
	pdq.VariantPeeled:        "matched it with its caption bars peeled off",
	pdq.VariantDegapped:      "matched it with a gap removed",
	pdq.VariantQuadrant:      "matched its quadrant",
	pdq.VariantNegative:      "matched its negative",
	pdq.VariantStretched:     "matched it with its contrast stretched",
	pdq.VariantWindow:        "matched a window of it",
	pdq.VariantRotated:       "matched it rotated back",
}

// categoryText is the bank's category for a notice's Bank line.
func categoryText(c string) string {
	if c = clean(c); c == "" {
		return ""
	}
	return ", category " + c
}

// windowText says "minute" for the default window, so the summary reads
// naturally ("in the last minute"), and the duration otherwise.
func windowText(w time.Duration) string {
	if w == time.Minute {
		return "minute"
	}
	return w.String()
}

// machine is the org.mediaguard.detection object: the same facts as the
// body in a form bots can consume without parsing prose.
func machine(d Detection, more int) map[string]any {
	m := map[string]any{
		"id":                  clean(d.ID),
		"direction":           clean(d.Direction),
		"endpoint":            clean(d.Endpoint),
		"user":                clean(d.User),
		"mxc":                 cleanURI(d.MXC),
		"hash_type":           clean(d.HashType),
		"matched_hash_prefix": hashPrefix(d.MatchedHash),
		"bank":                clean(d.Bank),
		"source":              clean(d.Source),
		"distance":            d.Distance,
		"form":                clean(d.Form),
		"variant":             clean(d.Variant),
		// A string, not a number: event content must be canonical JSON,
		// which allows only integers; Dendrite rejects a float with
		// 400 M_BAD_JSON "value is outside of safe range".
		"confidence": strconv.FormatFloat(d.Confidence, 'f', -1, 64),
		"action":     clean(d.Action),
	}
	if !d.Time.IsZero() {
		m["time"] = d.Time.UTC().Format(time.RFC3339Nano)
	}
	if more > 0 {
		m["summary_count"] = more
	}
	if c := clean(d.Category); c != "" {
		m["category"] = c
	}
	if d.WouldBlock {
		m["kind"] = "would_block"
	}
	if d.Review {
		m["kind"] = "review"
		m["quality"] = d.Quality
	}
	if d.Retro {
		m["kind"] = "retro_block"
		if !d.FirstSeen.IsZero() {
			m["first_seen"] = d.FirstSeen.UTC().Format(time.RFC3339)
		}
	}
	return m
}
