package matcher

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// This file holds the JSON contract of the Mjolnir HMA plugin (PR #617), as
// described in matrix.md "The HMA plugin's contract". The Service client
// speaks it to other lookup services, and mediaguard's own lookup API serves
// it, so both sides share these types and conversions.

// Lookup actions. Only the exact lowercase ActionBlock blocks: the plugin
// compares case-sensitively and treats anything else as allow.
const (
	ActionBlock = "block"
	ActionAllow = "allow"
)

// PDQPlaceholderPrefix starts the string the plugin sends in hashes.pdq
// instead of a PDQ hash; it carries no information and is ignored.
const PDQPlaceholderPrefix = "stubbed_pdq_placeholder_"

// ErrBadLookupRequest is wrapped by LookupRequest.Query for a request whose
// hashes cannot be used (wrong length, not hex), so the lookup API can answer
// 400 rather than a misleading "allow".
var ErrBadLookupRequest = errors.New("matcher: bad lookup request")

// LookupHashes are the digests of one file, in hex. Every field is optional:
// the plugin and other callers send whatever they computed.
type LookupHashes struct {
	// MD5 is 32 hex digits.
	MD5 string `json:"md5,omitempty"`
	// SHA1 is 40 hex digits.
	SHA1 string `json:"sha1,omitempty"`
	// SHA256 is 64 hex digits.
	SHA256 string `json:"sha256,omitempty"`
	// PDQ is 64 hex digits, or the plugin's placeholder (ignored).
	PDQ string `json:"pdq,omitempty"`
}

// LookupRequest is the body the plugin POSTs for each media event.
type LookupRequest struct {
	// Hashes are the file's digests.
	Hashes LookupHashes `json:"hashes"`
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

// LookupResponse is the answer the plugin expects. On block the plugin
// prints reason, hashType, the first 8 characters of matchedHash and
// confidence×100 in its notice, so all four are always sent.
type LookupResponse struct {
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
}

// MediaTypeKind maps a Matrix msgtype onto a MediaKind; stickers are images
// and anything unknown is KindUnknown.
func MediaTypeKind(mediaType string) MediaKind {
	switch mediaType {
	case "m.image", "m.sticker":
		return KindImage
	case "m.video":
		return KindVideo
	case "m.audio":
		return KindAudio
	case "m.file":
		return KindFile
	}
	return KindUnknown
}

// KindMediaType maps a MediaKind onto the plugin's msgtype, "" for unknown.
func KindMediaType(k MediaKind) string {
	switch k {
	case KindImage:
		return "m.image"
	case KindVideo:
		return "m.video"
	case KindAudio:
		return "m.audio"
	case KindFile:
		return "m.file"
	}
	return ""
}

// Query converts the request into a Query. Missing fields and the plugin's
// PDQ placeholder are skipped; hex of either case is accepted (the plugin's
// hashers are not ours to fix); a present digest of the wrong length or with
// non-hex characters is an error wrapping ErrBadLookupRequest, because
// silently dropping it would answer "allow" for a hash nobody looked up.
func (r *LookupRequest) Query() (Query, error) {
	q := Query{Kind: MediaTypeKind(r.MediaType)}
	for _, d := range []struct {
		field, hex string
		dst        []byte
		bit        Has
	}{
		{"md5", r.Hashes.MD5, q.MD5[:], HasMD5},
		{"sha1", r.Hashes.SHA1, q.SHA1[:], HasSHA1},
		{"sha256", r.Hashes.SHA256, q.SHA256[:], HasSHA256},
	} {
		present, err := decodeDigest(d.field, d.hex, d.dst)
		if err != nil {
			return Query{}, err
		}
		if present {
			q.Has |= d.bit
		}
	}
	if p := strings.TrimSpace(r.Hashes.PDQ); p != "" && !strings.HasPrefix(p, PDQPlaceholderPrefix) {
		h, err := pdq.ParseHex(p)
		if err != nil {
			return Query{}, fmt.Errorf("%w: hashes.pdq: %v", ErrBadLookupRequest, err)
		}
		q.PDQ = h
		q.Has |= HasPDQ
		q.PDQQuality = 100
		if r.PDQQuality != nil {
			q.PDQQuality = min(max(*r.PDQQuality, 0), 100)
		}
	}
	return q, nil
}

// decodeDigest decodes s (trimmed, either case) into dst, whose length fixes
// the expected number of digits, and reports whether s was present.
func decodeDigest(field, s string, dst []byte) (bool, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return false, nil
	}
	if len(s) != 2*len(dst) {
		return false, fmt.Errorf("%w: hashes.%s must be %d hex digits, got %d characters",
			ErrBadLookupRequest, field, 2*len(dst), len(s))
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return false, fmt.Errorf("%w: hashes.%s is not hex: %v", ErrBadLookupRequest, field, err)
	}
	return true, nil
}

// LookupRequestFromQuery builds the request the Service client sends: every
// digest the query has, the PDQ only when it is usable (non-zero and of
// quality >= DefaultMinPDQQuality, since a third-party service cannot know
// the quality) and the media type.
func LookupRequestFromQuery(q *Query, timestampMillis int64) LookupRequest {
	return lookupRequest(q, timestampMillis, DefaultMinPDQQuality)
}

// lookupRequest is LookupRequestFromQuery with the PDQ quality minimum the
// operator configured.
func lookupRequest(q *Query, timestampMillis int64, minQuality int) LookupRequest {
	r := LookupRequest{
		Hashes: LookupHashes{
			MD5:    q.HexOf(MD5),
			SHA1:   q.HexOf(SHA1),
			SHA256: q.HexOf(SHA256),
		},
		MediaType: KindMediaType(q.Kind),
		Timestamp: timestampMillis,
	}
	if usablePDQ(q, minQuality) {
		r.Hashes.PDQ = q.PDQ.String()
		quality := q.PDQQuality
		r.PDQQuality = &quality
	}
	return r
}

// usablePDQ reports whether q's PDQ hash may be sent to a remote matcher.
func usablePDQ(q *Query, minQuality int) bool {
	return q.Has&HasPDQ != 0 && q.PDQQuality >= minQuality && !q.PDQ.IsZero()
}

// LookupResponseFromVerdict converts a verdict into the plugin's answer. A
// match is a block with hashType, matchedHash and confidence always filled
// in (the plugin prints them); anything else is allow.
func LookupResponseFromVerdict(v Verdict) LookupResponse {
	if !v.Match {
		reason := v.Reason
		if reason == "" {
			reason = "no match"
			if v.Unscanned {
				reason = "not scanned: a hash list backend was unavailable"
			}
		}
		return LookupResponse{Action: ActionAllow, Reason: reason, Unscanned: v.Unscanned}
	}
	r := LookupResponse{
		Action:      ActionBlock,
		Reason:      v.Reason,
		MatchedHash: v.MatchedHash,
		HashType:    string(v.HashType),
		Confidence:  clampConfidence(v.Confidence),
		Bank:        v.Bank,
	}
	if r.Reason == "" {
		r.Reason = fmt.Sprintf("%s hash matched a hash list", v.HashType)
		if v.Bank != "" {
			r.Reason = fmt.Sprintf("%s hash matched hash list %s", v.HashType, v.Bank)
		}
	}
	if v.HashType == PDQ {
		d := v.Distance
		r.Distance = &d
	}
	return r
}

// clampConfidence keeps a confidence in [0,1]; NaN becomes 0.
func clampConfidence(c float64) float64 {
	if math.IsNaN(c) || c < 0 {
		return 0
	}
	return min(c, 1)
}
