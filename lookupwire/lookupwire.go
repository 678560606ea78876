// Package lookupwire is the JSON contract of the Mjolnir HMA plugin's lookup
// API (https://github.com/matrix-org/mjolnir/pull/617): the request the
// plugin POSTs for each media event, the answer it expects, and how a server
// decodes a request leniently. mediaguard's lookup server (package lookupapi)
// serves it and the Service client (matcher.Service) speaks it to other
// lookup services, so both use these types. Converting them to and from
// matcher's Query and Verdict belongs to matcher.
//
// It imports nothing of mediaguard's.
package lookupwire

import (
	"bytes"
	"encoding/json"
	"errors"
	"unicode/utf8"
)

// Lookup actions. Only the exact lowercase ActionBlock blocks: the plugin
// compares case-sensitively and treats anything else as allow.
const (
	ActionBlock = "block"
	ActionAllow = "allow"
)

// PDQPlaceholderPrefix starts the string the plugin sends in hashes.pdq
// instead of a PDQ hash; it carries no information and is ignored.
const PDQPlaceholderPrefix = "stubbed_pdq_placeholder_"

// Hashes are the digests of one file, in hex. Every field is optional:
// the plugin and other callers send whatever they computed.
type Hashes struct {
	// MD5 is 32 hex digits.
	MD5 string `json:"md5,omitempty"`
	// SHA1 is 40 hex digits.
	SHA1 string `json:"sha1,omitempty"`
	// SHA256 is 64 hex digits.
	SHA256 string `json:"sha256,omitempty"`
	// PDQ is 64 hex digits, or the plugin's placeholder (ignored).
	PDQ string `json:"pdq,omitempty"`
}

// Request is the body the plugin POSTs for each media event.
type Request struct {
	// Hashes are the file's digests.
	Hashes Hashes `json:"hashes"`
	// EventID is the Matrix event id ("$event:server"), for logs only.
	EventID string `json:"eventId,omitempty"`
	// RoomID is the room of the event ("!room:server"), for logs only.
	RoomID string `json:"roomId,omitempty"`
	// UserID is the sender ("@user:server"), for logs only.
	UserID string `json:"userId,omitempty"`
	// MediaType is the event's msgtype: m.image, m.video, m.file, m.audio
	// or m.sticker.
	MediaType string `json:"mediaType,omitempty"`
	// Timestamp is when the request was built, in Unix milliseconds (not
	// the event's time).
	Timestamp int64 `json:"timestamp,omitempty"`
	// PDQQuality is a mediaguard extension the plugin never sends: the
	// quality (0..100) of Hashes.PDQ, so a mediaguard calling another keeps
	// the low-quality filter. Absent means the sender already dropped
	// low-quality hashes, as HMA's hasher does.
	PDQQuality *int `json:"pdqQuality,omitempty"`
}

// Response is the answer the plugin expects. On block the plugin prints
// reason, hashType, the first 8 characters of matchedHash and
// confidence×100 in its notice, so all four are always sent.
type Response struct {
	// Action is ActionBlock or ActionAllow.
	Action string `json:"action"`
	// Reason is a human sentence.
	Reason string `json:"reason"`
	// MatchedHash is the hex of the matching hash ("" on allow).
	MatchedHash string `json:"matchedHash"`
	// HashType is md5, sha1, sha256, pdq or video_md5 ("" on allow).
	HashType string `json:"hashType"`
	// Confidence is in [0,1].
	Confidence float64 `json:"confidence"`
	// Bank optionally names the hash list that matched.
	Bank string `json:"bank,omitempty"`
	// Distance is the PDQ Hamming distance, sent only for pdq matches.
	Distance *int `json:"distance,omitempty"`
	// Unscanned is a mediaguard extension: the answering service allowed
	// the media without being able to consult all its backends
	// (fail-open). The plugin ignores it; the Service client turns it into
	// ErrUnavailable so the calling Guard applies its own fail policy.
	Unscanned bool `json:"unscanned,omitempty"`
	// Category is a mediaguard extension: the kind of harm the matching
	// list holds (csam, ncii, terror, spam), when configured.
	Category string `json:"category,omitempty"`
	// WouldBlock is a mediaguard extension on an allow: only a list in
	// report mode matched, so the media is allowed, and Bank, HashType,
	// MatchedHash and Category say what would have blocked it.
	WouldBlock bool `json:"wouldBlock,omitempty"`
}

// ErrNoHashes is DecodeRequest's error for a JSON document without a
// "hashes" object (null, {}, or an object without the field): there is
// nothing to look up.
var ErrNoHashes = errors.New(`the request has no "hashes" object`)

// wireRequest is Request as a server decodes it. A 400 is an allow to the
// plugin, so only what decides the verdict (the hashes and the quality)
// must have the right JSON type; the fields kept for logs and the media
// type are taken when they are strings and ignored otherwise, so that a
// plugin version that changes, say, timestamp to a string is still
// scanned. Unknown fields are ignored for the same reason.
type wireRequest struct {
	Hashes     *Hashes     `json:"hashes"`
	EventID    looseString `json:"eventId"`
	RoomID     looseString `json:"roomId"`
	UserID     looseString `json:"userId"`
	MediaType  looseString `json:"mediaType"`
	PDQQuality *int        `json:"pdqQuality"`
	// Timestamp is informational only and never used.
}

// looseString takes a JSON string and ignores any other value.
type looseString string

// UnmarshalJSON implements json.Unmarshaler.
func (s *looseString) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' {
		return nil
	}
	// Unmarshal has validated the document: a literal without escapes is
	// its own content, which saves a second decoder on the hot path.
	if inner := b[1 : len(b)-1]; bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		*s = looseString(inner)
		return nil
	}
	var v string
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = looseString(v)
	return nil
}

// DecodeRequest decodes a request body as a server should (see
// wireRequest): leniently where a field only serves logs, strictly where it
// decides the verdict. It returns encoding/json's own error, unwrapped, for
// a body that is not JSON or has a hash of the wrong JSON type, and
// ErrNoHashes for one without a "hashes" object. Timestamp is not decoded.
func DecodeRequest(body []byte) (Request, error) {
	var wr wireRequest
	if err := json.Unmarshal(body, &wr); err != nil {
		return Request{}, err
	}
	if wr.Hashes == nil {
		return Request{}, ErrNoHashes
	}
	return Request{
		Hashes:     *wr.Hashes,
		EventID:    string(wr.EventID),
		RoomID:     string(wr.RoomID),
		UserID:     string(wr.UserID),
		MediaType:  string(wr.MediaType),
		PDQQuality: wr.PDQQuality,
	}, nil
}
