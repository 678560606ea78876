// Package modcmd is the moderators' side of the management room: the bot
// follows the room with /sync (its position kept in a state file, so a
// restart neither replays nor loses a command), takes "!mediaguard ..."
// commands and ✅/❌ reactions from members whose power level is at least
// the configured one, has them carried out through a [Moderation], and
// answers each in a thread.
//
// It speaks Matrix through maunium.net/go/mautrix and knows nothing of
// how a command is carried out: the service implements Moderation. It
// must not import the proxy, the matcher or Caddy.
package modcmd

import "context"

// Moderation carries out the moderators' commands. Each method returns
// the answer posted in the command's thread; an error is posted as a
// failure and recorded. Every method must be idempotent: the same command
// twice (a redelivery after a crash) must do no harm and say so, e.g.
// "already confirmed".
type Moderation interface {
	// Confirm takes the detection (a review request) as a true match.
	Confirm(ctx context.Context, detectionID, moderator string) (reply string, err error)
	// Dismiss takes the detection as a false positive.
	Dismiss(ctx context.Context, detectionID, moderator string) (reply string, err error)
	// Block blocks the media (mxc://server/id) wherever it is asked for.
	Block(ctx context.Context, mxc, moderator string) (string, error)
	// Unblock lifts a block made with Block.
	Unblock(ctx context.Context, mxc, moderator string) (string, error)
	// Status describes banks, entries, breakers and recent traffic.
	Status(ctx context.Context) (string, error)
	// Lookup says whether a hash (hex, optionally "type:hex") is listed.
	Lookup(ctx context.Context, hash string) (string, error)
}

// Record is one command carried out (or refused), for the audit log.
type Record struct {
	// EventID is the Matrix event of the command (or the reaction).
	EventID string
	// Moderator is the sender's user ID.
	Moderator string
	// Command is the command as understood, e.g. "block mxc://x/y" or
	// "confirm 0123" (a reaction is recorded as the command it means).
	Command string
	// Verb is the command's first word ("block").
	Verb string
	// Arg is its argument ("mxc://x/y", a detection ID, a hash), if any.
	Arg string
	// OK is false when the command failed or was not understood.
	OK bool
	// Outcome is the answer posted (or the error).
	Outcome string
}
