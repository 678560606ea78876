// Package ledger is the media ledger: a durable record of every media
// mediaguard judged, by media key, with the digests it was judged by
// (exact digests, every PDQ form and variant that was matched, the exact
// digests of embedded files) and the verdict. It lets a download of known
// media be decided from its stored digests without buffering or hashing,
// also after a restart and on another instance, and it is what a
// retro-scan walks when a hash list grows.
//
// It stores digests and identifiers only, never media bytes, tokens or
// request headers.
//
// Two stores implement [Store]: an embedded single file (bbolt, for one
// proxy; see bolt.go for why) and PostgreSQL (for several proxies sharing
// one ledger, the database Synapse operators already run).
//
// It belongs to the act stage: it may import matcher and hashing (the
// digests it stores are theirs) but not mediaproxy, lookupapi or Caddy.
package ledger

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/matcher"
)

// Key names one media: its origin server and media ID, as in
// mxc://Server/ID.
type Key struct {
	Server, ID string
}

// String is the mxc:// URI of the media.
func (k Key) String() string { return "mxc://" + k.Server + "/" + k.ID }

// ContentOnlyPrefix starts the ID of media known by its content only: a
// file of a media store whose media ID could not be learned (Synapse's
// remote_content holds files by a filesystem ID). Such a key names
// nothing a homeserver or a client knows.
const ContentOnlyPrefix = "fs:"

// ContentOnly reports whether k is known by its content only (see
// ContentOnlyPrefix): there is no mxc URI to quarantine or show.
func (k Key) ContentOnly() bool {
	return len(k.ID) >= len(ContentOnlyPrefix) && k.ID[:len(ContentOnlyPrefix)] == ContentOnlyPrefix
}

// Verdict is what was decided about a media.
type Verdict uint8

// Verdicts. The zero value is invalid, so an unset field is caught.
const (
	// Clean: judged and not listed, as of Record.Banks.
	Clean Verdict = iota + 1
	// Blocked: listed (at upload, download or by a retro-scan); answered
	// 404 from then on, on every instance.
	Blocked
	// Unscannable: not an image or video by its bytes (ciphertext, a
	// document): recorded by its exact digests only.
	Unscannable
	// Undecodable: an image by its bytes that no decoder could read;
	// refused under on_undecodable_image block.
	Undecodable
)

// String names the verdict as the audit and the API do.
func (v Verdict) String() string {
	switch v {
	case Clean:
		return "clean"
	case Blocked:
		return "blocked"
	case Unscannable:
		return "unscannable"
	case Undecodable:
		return "undecodable"
	}
	return "invalid"
}

// Record is what the ledger knows of one media.
type Record struct {
	Key Key
	// Size is the media's length in bytes.
	Size int64
	// Type is the sniffed format ("jpeg", "png", "mp4", ...), "" when the
	// bytes matched no known format.
	Type string
	// Query holds the digests the media was judged by, exactly as the
	// matcher was asked: Has, MD5, SHA1, SHA256, PDQ and PDQQuality, the
	// Forms (frames, displayed forms, variants), Dihedral when it was
	// computed, and the Embedded files' digests. Re-matching it against
	// the current banks re-derives the verdict without re-hashing.
	Query matcher.Query
	// FirstSeen and LastSeen bound when mediaguard saw the media; a Put
	// keeps the stored FirstSeen. Stored to the second.
	FirstSeen, LastSeen time.Time
	// Uploader is the Matrix user ID that uploaded it, where known.
	Uploader string
	Verdict  Verdict
	// Reason says why a blocked media is blocked (for notices and logs).
	Reason string
	// Banks is the fingerprint of the local banks the verdict was reached
	// against (matcher.Local.Fingerprint); "" when unknown.
	Banks string
}

// ManualReasonPrefix starts the Reason of a record a moderator blocked by
// hand (a command, not a bank entry). A retro-scan never lifts such a
// block: no bank entry made it, so none leaving a bank can undo it; only
// the moderator's unblock does.
const ManualReasonPrefix = "blocked by moderator "

// Manual reports whether reason is that of a block made by hand.
func Manual(reason string) bool { return strings.HasPrefix(reason, ManualReasonPrefix) }

// ErrClosed is returned by a Store used after Close.
var ErrClosed = errors.New("ledger: closed")

// Store is a ledger's storage. Implementations are safe for concurrent
// use.
type Store interface {
	// Get returns the record for k; ok is false when there is none.
	Get(ctx context.Context, k Key) (r Record, ok bool, err error)
	// Put stores r, replacing any record for r.Key but keeping the older
	// FirstSeen of the two.
	Put(ctx context.Context, r Record) error
	// SetVerdict changes the verdict, reason and bank fingerprint of an
	// existing record (a retro-scan's block, a re-derived clean); ok is
	// false when there is no record for k.
	SetVerdict(ctx context.Context, k Key, v Verdict, reason, banks string) (ok bool, err error)
	// Touch moves the record's LastSeen forward to at (never back),
	// leaving the rest as it is: a recall must not undo a verdict a
	// retro-scan wrote meanwhile. ok is false when there is no record.
	Touch(ctx context.Context, k Key, at time.Time) (ok bool, err error)
	// Scan calls fn for every record, from up to parts goroutines at
	// once, each walking its own share of the keys. The *Record is
	// reused after fn returns. An error from fn stops the scan and is
	// returned.
	Scan(ctx context.Context, parts int, fn func(r *Record) error) error
	// Prune removes records last seen before t and returns how many.
	Prune(ctx context.Context, before time.Time) (int, error)
	// Meta and SetMeta keep small named values next to the records (the
	// fingerprint of the banks last retro-scanned, a backfill's resume
	// point).
	Meta(ctx context.Context, name string) (string, bool, error)
	SetMeta(ctx context.Context, name, value string) error
	// TryLock takes the named lock for the whole fleet sharing the store
	// (a PostgreSQL advisory lock; a process-wide one for the embedded
	// file, which only one process can open). ok is false when another
	// holder has it; release gives it back.
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)
	// Len is the number of records.
	Len(ctx context.Context) (int, error)
	Close() error
}
