package notify

import (
	"crypto/sha256"
	"encoding/hex"
	"html"
	"strings"
)

// Where a sighting came from (Sighting.Via).
const (
	// SightingWatch: the bot judged the media of an event in a room it
	// watches (watch_rooms).
	SightingWatch = "watch"
	// SightingLookup: the lookup API answered "block" to a request that
	// names the event it was made for (Mjolnir's HMA plugin sends
	// eventId, roomId and userId with the hashes).
	SightingLookup = "lookup"
)

// Sighting is listed media seen in a room event. Like a Detection it
// carries metadata only; every field but Digests is shown, sanitised.
type Sighting struct {
	// RoomID, EventID and Sender name the event.
	RoomID, EventID, Sender string
	// MXC is the event's media, "" when not known (a lookup names
	// hashes, not media).
	MXC string
	// MsgType is the event's msgtype (m.image, ...) or "m.sticker".
	MsgType string
	// Reason says which bank and hash matched.
	Reason string
	// Redaction is what became of the event: "redacted", "not redacted:
	// why", or "" when no redaction was attempted.
	Redaction string
	// Via is SightingWatch or SightingLookup.
	Via string
	// Unverified is true when RoomID, EventID and Sender are only what a
	// lookup request named: nobody read the event from the homeserver
	// (the room is not watched, or the event could not be read). The
	// notice says so, since the lookup's caller chooses them.
	Unverified bool
	// Digests are the file's exact digests as the report gives them,
	// never shown: they find the story of the file (Stories.Root).
	Digests Digests
	// Verified are those of Digests known to be the file's (computed by
	// mediaguard, or the digest that matched a bank): only they begin a
	// story when the sighting has none to join (Stories.Begin). A
	// lookup's other digests are its caller's word.
	Verified Digests
}

// reportedByRequest marks what a notice shows on a lookup request's word
// alone (Sighting.Unverified).
const reportedByRequest = "reported by the lookup request"

// viaText says who saw it, in a notice.
func (s Sighting) viaText() string {
	if s.Via == SightingLookup {
		return "Mjolnir's lookup"
	}
	return "watched room"
}

// SightingContent is the event content of the notice of s: a notice of
// its own naming room, event and sender when root is "", else a reply in
// the thread of the story rooted at root. Every field is sanitised and,
// in the HTML, escaped: a lookup's ids come from its caller.
func SightingContent(s Sighting, root string) map[string]any {
	var body, h strings.Builder
	var lines []string
	if root == "" {
		title := "🚨 mediaguard: listed media posted in a watched room"
		if s.Via == SightingLookup {
			title = "🚨 mediaguard: listed media posted in a room (" + s.viaText() + ")"
		}
		body.WriteString(title)
		h.WriteString("<p><strong>" + html.EscapeString(title) + "</strong></p>")
		claimed := ""
		if s.Unverified {
			claimed = " (" + reportedByRequest + ")"
		}
		lines = []string{"Room: " + clean(s.RoomID) + claimed, "Event: " + clean(s.EventID) + claimed, "Sent by: " + or(clean(s.Sender), "unknown") + claimed}
		if m := cleanURI(s.MXC); m != "" {
			lines = append(lines, "Media: "+m)
		}
		lines = append(lines, "Match: "+or(clean(s.Reason), "?"))
	} else {
		// One line a moderator reads in the thread of the picture's
		// first notice: where it was seen, and by whom it was sent.
		code := func(v string) string { return "<code>" + html.EscapeString(v) + "</code>" }
		room, ev, sender := clean(s.RoomID), clean(s.EventID), or(clean(s.Sender), "unknown")
		via := s.viaText()
		if s.Unverified {
			via += "; room, event and sender " + reportedByRequest
		}
		body.WriteString("🔗 Seen in " + room + " as " + ev + ", sent by " + sender + " (" + via + ")")
		h.WriteString("<p>🔗 Seen in " + code(room) + " as " + code(ev) + ", sent by " + code(sender) + " (" + html.EscapeString(via) + ")</p>")
		if m := cleanURI(s.MXC); m != "" {
			lines = append(lines, "Media: "+m)
		}
	}
	if r := clean(s.Redaction); r != "" {
		lines = append(lines, "Event: "+r)
	}
	if len(lines) > 0 {
		h.WriteString("<ul>")
		for _, l := range lines {
			k, v, _ := strings.Cut(l, ": ")
			body.WriteString("\n" + l)
			h.WriteString("<li><strong>" + html.EscapeString(k) + ":</strong> <code>" + html.EscapeString(v) + "</code></li>")
		}
		h.WriteString("</ul>")
	}
	c := map[string]any{
		"msgtype": "m.notice", "body": body.String(), "format": "org.matrix.custom.html", "formatted_body": h.String(),
		"org.mediaguard.event_detection": map[string]any{
			"room_id": clean(s.RoomID), "event_id": clean(s.EventID), "sender": clean(s.Sender), "mxc": cleanURI(s.MXC),
			"msgtype": clean(s.MsgType), "reason": clean(s.Reason), "redaction": clean(s.Redaction), "via": clean(s.Via),
			"verified": !s.Unverified,
		},
	}
	if root != "" {
		c["m.relates_to"] = threadOn(root)
	}
	return c
}

// threadOn relates a message to the thread rooted at root, with the
// reply fallback for clients without threads
// (https://spec.matrix.org/v1.11/client-server-api/#threading).
func threadOn(root string) map[string]any {
	return map[string]any{
		"rel_type": "m.thread", "event_id": root, "is_falling_back": true,
		"m.in_reply_to": map[string]any{"event_id": root},
	}
}

// TxnID derives a transaction ID from what a message is about, so a
// retry, or a second report of the same thing after a crash, is the same
// request to the homeserver
// (https://spec.matrix.org/v1.11/client-server-api/#transaction-identifiers).
// Hashed, because a room event ID may hold characters a transaction ID
// in a URL path had better not.
func TxnID(kind string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return "mediaguard-" + kind + "-" + hex.EncodeToString(sum[:16])
}
