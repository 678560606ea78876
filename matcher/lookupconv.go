package matcher

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/lookupwire"
)

// Conversions between the lookup API's wire format (package lookupwire, the
// JSON contract of the Mjolnir HMA plugin) and Query and Verdict. The
// Service client speaks it to other lookup services, and mediaguard's own
// lookup API serves it, so both use these conversions.

// ErrBadLookupRequest is wrapped by QueryFromLookup for a request whose
// hashes cannot be used (wrong length, not hex), so the lookup API can answer
// 400 rather than a misleading "allow".
var ErrBadLookupRequest = errors.New("matcher: bad lookup request")

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

// QueryFromLookup converts a lookup request into a Query. Missing fields and the plugin's
// PDQ placeholder are skipped; hex of either case is accepted (the plugin's
// hashers are not ours to fix); a present digest of the wrong length or with
// non-hex characters is an error wrapping ErrBadLookupRequest, because
// silently dropping it would answer "allow" for a hash nobody looked up.
func QueryFromLookup(r *lookupwire.Request) (Query, error) {
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
	if p := strings.TrimSpace(r.Hashes.PDQ); p != "" && !strings.HasPrefix(p, lookupwire.PDQPlaceholderPrefix) {
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
func LookupRequestFromQuery(q *Query, timestampMillis int64) lookupwire.Request {
	return lookupRequest(q, timestampMillis, DefaultMinPDQQuality)
}

// lookupRequest is LookupRequestFromQuery with the PDQ quality minimum the
// operator configured.
func lookupRequest(q *Query, timestampMillis int64, minQuality int) lookupwire.Request {
	r := lookupwire.Request{
		Hashes: lookupwire.Hashes{
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
func LookupResponseFromVerdict(v Verdict) lookupwire.Response {
	if !v.Match {
		reason := v.Reason
		if reason == "" {
			reason = "no match"
			if v.Unscanned {
				reason = "not scanned: a hash list backend was unavailable"
			}
		}
		r := lookupwire.Response{Action: lookupwire.ActionAllow, Reason: reason, Unscanned: v.Unscanned}
		if v.WouldBlock {
			// The plugin reads only the action; other callers learn what
			// a list in report mode would have done.
			r.WouldBlock, r.Bank, r.Category, r.HashType, r.MatchedHash = true, v.Bank, v.Category, string(v.HashType), v.MatchedHash
		}
		return r
	}
	r := lookupwire.Response{
		Action:      lookupwire.ActionBlock,
		Reason:      v.Reason,
		MatchedHash: v.MatchedHash,
		HashType:    string(v.HashType),
		Confidence:  clampConfidence(v.Confidence),
		Bank:        v.Bank,
		Category:    v.Category,
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
