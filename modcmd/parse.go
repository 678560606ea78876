package modcmd

import (
	"fmt"
	"regexp"
	"strings"
)

// Prefix starts every command, as "!mjolnir" starts Mjolnir's.
const Prefix = "!mediaguard"

// maxCommandLen bounds a command's body: the longest real command (an
// mxc URI or a 64-hex hash) is far shorter, and a hostile megabyte line
// must cost nothing.
const maxCommandLen = 1024

// Reaction keys that stand for commands on a review notice.
const (
	ReactConfirm = "\u2705" // ✅ white heavy check mark
	ReactDismiss = "\u274C" // ❌ cross mark
)

// Verbs.
const (
	VerbConfirm = "confirm"
	VerbDismiss = "dismiss"
	VerbBlock   = "block"
	VerbUnblock = "unblock"
	VerbStatus  = "status"
	VerbLookup  = "lookup"
	VerbHelp    = "help"
)

// Command is one parsed command.
type Command struct {
	// Verb is one of the Verb constants.
	Verb string
	// Arg is the single argument (detection ID, mxc URI or hash), "" for
	// status and help.
	Arg string
}

// String is the command as the audit records it.
func (c Command) String() string {
	if c.Arg == "" || c.Verb == "" {
		return c.Verb + c.Arg
	}
	return c.Verb + " " + c.Arg
}

// The grammars arguments are checked against, so nothing a moderator
// mistypes (or pastes from HTML) reaches the service unchecked.
var (
	// Detection IDs are audit.NewID's 32 hex digits; other lengths of
	// the same alphabet are allowed for IDs made elsewhere.
	detectionIDRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	// mxc://server/id with the server name grammar of
	// https://spec.matrix.org/v1.11/appendices/#server-name and the media
	// ID grammar of
	// https://spec.matrix.org/v1.11/client-server-api/#matrix-content-mxc-uris
	// (plus = and ., which older servers' IDs contain, as the notifier's
	// command mode allows).
	mxcRe = regexp.MustCompile(`^mxc://[A-Za-z0-9.:\[\]-]{1,255}/[A-Za-z0-9_=.-]{1,255}$`)
	// A hash is md5 (32 hex), sha1 (40) or sha256 or pdq (64).
	hashRe = regexp.MustCompile(`^((md5|sha1|sha256|pdq):)?([0-9A-Fa-f]{32}|[0-9A-Fa-f]{40}|[0-9A-Fa-f]{64})$`)
)

// arity says which verbs take an argument, and what it must look like.
var arity = map[string]struct {
	re    *regexp.Regexp
	usage string
}{
	VerbConfirm: {detectionIDRe, Prefix + " confirm DETECTION_ID"},
	VerbDismiss: {detectionIDRe, Prefix + " dismiss DETECTION_ID"},
	VerbBlock:   {mxcRe, Prefix + " block mxc://SERVER/MEDIA_ID"},
	VerbUnblock: {mxcRe, Prefix + " unblock mxc://SERVER/MEDIA_ID"},
	VerbLookup:  {hashRe, Prefix + " lookup HEX_HASH (md5, sha1, sha256 or pdq; prefix md5:, sha1:, sha256: or pdq: to say which)"},
	VerbStatus:  {nil, Prefix + " status"},
	VerbHelp:    {nil, Prefix + " help"},
}

// UsageError is a command addressed to mediaguard that it could not
// understand; its text is posted back to the moderator.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// Parse reads a message body. ok is false when the body is not addressed
// to mediaguard at all (no reply then). A body addressed to it that does
// not parse gives a *UsageError to answer with.
//
// Only the plain body is read, never formatted_body: what a client
// renders from HTML is not what the moderator typed, and the body is what
// every client sends. A reply fallback (the "> <@user> quoted" lines some
// clients still put before a reply,
// https://spec.matrix.org/v1.11/client-server-api/#fallbacks-for-rich-replies)
// is skipped first, so a reply to a notice can carry a command.
func Parse(body string) (cmd Command, ok bool, err error) {
	body = stripReplyFallback(body)
	rest, found := strings.CutPrefix(body, Prefix)
	if !found || rest != "" && !isSpace(rest[0]) {
		return Command{}, false, nil // "!mediaguardx" is someone else's
	}
	if len(body) > maxCommandLen {
		return Command{}, true, &UsageError{fmt.Sprintf("That command is too long (%d bytes; commands are at most %d). Try %s help.", len(body), maxCommandLen, Prefix)}
	}
	if strings.ContainsAny(rest, "\n\r") {
		return Command{}, true, &UsageError{"One command per message, on one line. Try " + Prefix + " help."}
	}
	f := strings.Fields(rest)
	if len(f) == 0 {
		return Command{Verb: VerbHelp}, true, nil
	}
	verb := strings.ToLower(f[0])
	a, known := arity[verb]
	if !known {
		return Command{}, true, &UsageError{fmt.Sprintf("Unknown command %q. Try %s help.", clip(f[0], 32), Prefix)}
	}
	args := f[1:]
	if verb == VerbLookup && len(args) == 1 {
		args[0] = strings.ToLower(args[0]) // hex of either case
	}
	switch {
	case a.re == nil && len(args) == 0:
		return Command{Verb: verb}, true, nil
	case a.re != nil && len(args) == 1 && a.re.MatchString(args[0]):
		return Command{Verb: verb, Arg: args[0]}, true, nil
	}
	return Command{}, true, &UsageError{"Usage: " + a.usage}
}

// ReactionCommand maps a reaction key on a review notice to its verb:
// ✅ confirms, ❌ dismisses. Clients may append the emoji presentation
// selector U+FE0F; it is ignored.
func ReactionCommand(key string) (verb string, ok bool) {
	switch strings.TrimSuffix(key, "\uFE0F") {
	case ReactConfirm:
		return VerbConfirm, true
	case ReactDismiss:
		return VerbDismiss, true
	}
	return "", false
}

// ValidDetectionID reports whether id can name a detection in a command.
func ValidDetectionID(id string) bool { return detectionIDRe.MatchString(id) }

// stripReplyFallback drops the leading "> " quoted lines of a rich-reply
// fallback and the blank line after them.
func stripReplyFallback(body string) string {
	if !strings.HasPrefix(body, "> ") {
		return body
	}
	for strings.HasPrefix(body, ">") {
		i := strings.IndexByte(body, '\n')
		if i < 0 {
			return ""
		}
		body = body[i+1:]
	}
	return strings.TrimPrefix(body, "\n")
}

func isSpace(b byte) bool { return b == ' ' || b == '\t' || b == '\n' || b == '\r' }

// clip bounds s for an answer or a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// helpText is the answer to help.
const helpText = `mediaguard commands (moderators only):
` + Prefix + ` confirm DETECTION_ID — a review request is a true match: list it and block the media (or react ✅ to the review notice)
` + Prefix + ` dismiss DETECTION_ID — a review request is a false positive: never flag it again (or react ❌)
` + Prefix + ` block mxc://SERVER/MEDIA_ID — block that media now (404 on download; quarantined where the admin API is configured)
` + Prefix + ` unblock mxc://SERVER/MEDIA_ID — lift such a block
` + Prefix + ` status — banks, entries, breakers and the last hour's requests
` + Prefix + ` lookup HASH — is this md5, sha1, sha256 or pdq hash listed? (prefix md5:, sha1:, sha256: or pdq: to say which)
` + Prefix + ` help — this text
Every command is answered in a thread and recorded in the audit log.`
