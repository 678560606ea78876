// Package audit keeps a durable, append-only local record of mediaguard's
// decisions: every block, every unscannable or fail-open decision and the
// outcome of every follow-up action (notice, quarantine, ...).
//
// The log is a file of JSON lines. [Log.Append] writes one line and fsyncs
// it before returning, so a caller that appends before answering a request
// knows the decision survives a crash of the process or the machine. On
// [Open] a torn last line left by a crash mid-write is cut away, so the
// file always ends on a clean line.
//
// Privacy: the log stores metadata and digests only. It never stores media
// bytes, access tokens, passwords or request headers; callers must not put
// them in any field, and Append strips the query string from Endpoint
// because Matrix clients may carry access_token there.
//
// Retention: when the live file would exceed Options.MaxBytes it is rotated
// (path -> path.1 -> path.2 ... path.Keep, the oldest dropped), so disk use
// is bounded by about MaxBytes × (Keep+1). Records older than the oldest
// kept file are gone, including detections still pending notification;
// size Keep for the longest notifier outage you want to survive.
package audit

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Record kinds.
const (
	// KindBlock is a request refused because its media matched.
	KindBlock = "block"
	// KindLateBlock is a match found after the media was already served
	// (e.g. a bank update), so follow-up is needed without a live request.
	KindLateBlock = "late_block"
	// KindRetroBlock is stored media that a bank change made listed,
	// found by a retro-scan of the media ledger: no request was involved.
	KindRetroBlock = "retro_block"
	// KindWouldBlock is media that only lists in report mode matched:
	// it passed, and moderators were told it would have been blocked.
	KindWouldBlock = "would_block"
	// KindReview is a borderline match (the review band) put to the
	// moderators: Evidence.Outcome says whether it passed ("review") or
	// was held ("held"). Moderators answer it with a confirm or dismiss
	// action record referring to it.
	KindReview = "review"
	// KindUnscannable is media that could not be decoded or hashed.
	KindUnscannable = "unscannable"
	// KindUndecodable is an image by its bytes that could not be
	// decoded, refused under the on_undecodable_image block policy.
	KindUndecodable = "undecodable"
	// KindUnscanned is media passed without scanning (fail-open).
	KindUnscanned = "unscanned"
	// KindRefused is media refused for policy reasons other than a match
	// (fail-closed, size limits).
	KindRefused = "refused"
	// KindKnownBlock is a repeat request for media already blocked. It
	// is on record, but the first request was the detection and was
	// notified, so Pending never returns it.
	KindKnownBlock = "known_block"
	// KindClean is a clean decision, recorded only when the operator
	// asked for clean scans to be logged.
	KindClean = "clean"
	// KindAction is the outcome of a follow-up action on a detection.
	KindAction = "action"
)

// Actions and outcomes that Pending understands.
const (
	// ActionNotify is the delivery of a notice about a detection.
	ActionNotify = "notify"
	// ActionConfirm is a moderator's confirmation of a review: Record.User
	// is the moderator, Ref the detection.
	ActionConfirm = "confirm"
	// ActionDismiss is a moderator's dismissal of a review (a false
	// positive): Record.User is the moderator, Ref the detection.
	ActionDismiss = "dismiss"
	// OutcomeOK marks an action that completed.
	OutcomeOK = "ok"
	// ActionCommand is a moderator's command from the management room
	// (User is the moderator, Command what they asked, Event the Matrix
	// event, Outcome "ok: answer" or "failed: why").
	ActionCommand = "command"
)

// Record is one audit line. It must never hold media bytes or credentials;
// see the package documentation.
type Record struct {
	// Time is when the decision was made; Append sets it if zero.
	Time time.Time `json:"time"`
	// ID identifies the detection; Append sets it from NewID if empty.
	// Set it yourself (with NewID) when later action records must refer
	// to it.
	ID string `json:"id"`
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// Direction is "upload" or "download".
	Direction string `json:"direction,omitempty"`
	// Endpoint is the request path, without query string.
	Endpoint string `json:"endpoint,omitempty"`
	// User is the Matrix user ID, or "unknown" when it could not be
	// established.
	User string `json:"user,omitempty"`
	// Media is the mxc server/id of the media.
	Media string `json:"media,omitempty"`
	// Digests maps algorithm (md5, sha1, sha256, pdq) to hex digest, so a
	// report can be made after the media itself is gone.
	Digests map[string]string `json:"digests,omitempty"`
	// Verdict is the matcher's evidence as JSON.
	Verdict json.RawMessage `json:"verdict,omitempty"`
	// Action names the follow-up for KindAction records, e.g. "notify".
	Action string `json:"action,omitempty"`
	// Outcome is the action's result: "ok", "pending", "failed: ...".
	Outcome string `json:"outcome,omitempty"`
	// Ref is the ID of the detection a KindAction record belongs to.
	Ref string `json:"ref,omitempty"`
	// Command is a moderator's command as understood (ActionCommand),
	// e.g. "block mxc://example.org/abc".
	Command string `json:"command,omitempty"`
	// Event is the Matrix event ID the command came in (ActionCommand).
	Event string `json:"event,omitempty"`
}

// Evidence is the verdict evidence stored, as JSON, in Record.Verdict.
type Evidence struct {
	Outcome     string   `json:"outcome"`
	Bank        string   `json:"bank,omitempty"`
	HashType    string   `json:"hash_type,omitempty"`
	MatchedHash string   `json:"matched_hash,omitempty"`
	Distance    int      `json:"distance,omitempty"`
	Confidence  float64  `json:"confidence,omitempty"`
	Source      string   `json:"source,omitempty"`
	Category    string   `json:"category,omitempty"`
	Form        string   `json:"form,omitempty"`
	Variant     string   `json:"variant,omitempty"`
	Reason      string   `json:"reason,omitempty"`
	Notes       []string `json:"notes,omitempty"`
	Unscannable string   `json:"unscannable,omitempty"`
	Error       string   `json:"error,omitempty"`
	Action      string   `json:"action,omitempty"`
	// FirstSeen is when the media was first seen, for retro_block
	// records (the media ledger's first sighting).
	FirstSeen time.Time `json:"first_seen,omitzero"`
	// Label is the best evidence's entry label (review records).
	Label string `json:"label,omitempty"`
	// Quality is the PDQ quality of the hash that matched (review
	// records).
	Quality int `json:"quality,omitempty"`
	// MatchedPDQ are the media's own PDQ hashes that fell in the review
	// band, with the form each was taken from, so that a moderator's
	// confirmation can bank them without the media's bytes (review
	// records). They are the media's hashes, not a list's entries.
	MatchedPDQ []FormHash `json:"matched_pdq,omitempty"`
}

// FormHash is one PDQ hash of a form of the media.
type FormHash struct {
	// Form names the form ("" for the picture as stored).
	Form string `json:"form,omitempty"`
	// Variant is the form's kind ("stored", "frame", ...).
	Variant string `json:"variant,omitempty"`
	// PDQ is the hash in hex.
	PDQ string `json:"pdq"`
}

// NewID returns a fresh detection ID: 32 hex digits, the first 16 the
// current Unix nanoseconds so IDs sort roughly by time, the rest random so
// IDs from concurrent or restarted processes do not collide.
func NewID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
	rand.Read(b[8:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}

// stripQuery drops the query string so a token carried in it can never
// reach the disk.
func stripQuery(endpoint string) string {
	if i := strings.IndexAny(endpoint, "?#"); i >= 0 {
		return endpoint[:i]
	}
	return endpoint
}
