// Package matcher answers one question for the proxy and the lookup API: do
// these digests match a hash list, and on what evidence? It knows nothing of
// Caddy or HTTP serving; backends are local bank files, ThreatExchange HMA 2.0,
// Arachnid Shield and other JSON lookup services, wrapped by a Guard that adds a verdict
// cache, a circuit breaker per remote backend and the fail policy.
package matcher

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher/pdqindex"
)

// HashType names a kind of hash, spelt as in bank files and the lookup API.
type HashType string

// The hash types a bank can hold.
const (
	MD5      HashType = "md5"
	SHA1     HashType = "sha1"
	SHA256   HashType = "sha256"
	PDQ      HashType = "pdq"
	VideoMD5 HashType = "video_md5"
)

// MediaKind is what the bytes are, as far as the caller knows.
type MediaKind string

// Media kinds. The lookup API maps the plugin's m.image, m.video ... onto these.
const (
	KindUnknown MediaKind = ""
	KindImage   MediaKind = "image"
	KindVideo   MediaKind = "video"
	KindAudio   MediaKind = "audio"
	KindFile    MediaKind = "file"
)

// Has is a bitmask of the digests a Query carries.
type Has uint8

// Digest presence bits.
const (
	HasMD5 Has = 1 << iota
	HasSHA1
	HasSHA256
	HasPDQ
)

// Query is what is known of one piece of media. Digests whose bit is not set
// in Has are absent (the lookup API's callers may send any subset).
type Query struct {
	Has    Has
	MD5    [16]byte
	SHA1   [20]byte
	SHA256 [32]byte
	// PDQ is the perceptual hash, PDQQuality its quality (0..100). Hashes of
	// quality below the configured minimum are not matched.
	PDQ        pdq.Hash
	PDQQuality int
	// Dihedral optionally carries the 8 dihedral variants (reference order,
	// original first), computed by the hashing stage from the DCT; they
	// cannot be derived from the hash. Local banks match them all when
	// dihedral matching is on.
	Dihedral []pdq.Hash
	// Forms are further PDQ hashes of the same media as a viewer sees it
	// (animation frames, orientation applied, transparency composited).
	// Each is matched like PDQ, with its own quality; a match of any is
	// a match.
	Forms []pdq.Form
	// Embedded are the exact digests of files carved out of the media (a
	// JPEG inside a PDF, an MP3's cover art, an image after the end of
	// another): a listed file hidden in a container is still that file.
	Embedded []EmbeddedDigests
	Kind     MediaKind
}

// EmbeddedDigests are the exact digests of one embedded file.
type EmbeddedDigests struct {
	// Where says where it was found, e.g. "pdf image object 12".
	Where  string
	MD5    [16]byte
	SHA1   [20]byte
	SHA256 [32]byte
}

// Evidence is one banked hash that matched.
type Evidence struct {
	Bank     string   `json:"bank"`
	HashType HashType `json:"hash_type"`
	// Hash is the banked hash in hex.
	Hash string `json:"hash"`
	// Distance is the PDQ Hamming distance (0 for exact hashes).
	Distance int `json:"distance"`
	// Label is the bank file's label or the remote content id, if any.
	Label string `json:"label,omitempty"`
	// Source is "local:BANK", "hma:BANK", "arachnid:NAME" or
	// "service:NAME".
	Source string `json:"source"`
	// Dihedral names the query variant that matched when it was not the
	// original (e.g. "rotate90", as in pdq.DihedralNames).
	Dihedral string `json:"dihedral,omitempty"`
	// Form names the form of the media that matched when it was not the
	// picture as stored (e.g. "frame 3", "displayed", "on white").
	Form string `json:"form,omitempty"`
	// Variant is the kind of what matched, one of pdq's closed set of
	// Variant kinds: "stored" for the file or picture as stored (exact
	// digests included), "embedded" for a file or picture found inside
	// it, else the form's kind ("frame", "quadrant", "negative", ...).
	// Unlike Form it names no input, so it may label metrics; "" when the
	// form that matched had no kind.
	Variant string `json:"variant,omitempty"`
	// Category is the kind of harm the bank lists (one of Categories),
	// "" when the bank has none.
	Category string `json:"category,omitempty"`
	// ReportOnly is set when the bank or backend is in report mode: the
	// entry would have blocked the media, but only reports it.
	ReportOnly bool `json:"report_only,omitempty"`
	// Review is set on PDQ evidence from the review band: a distance
	// above the threshold but within review_threshold, or a hash of
	// quality below min_pdq_quality within the threshold. It never
	// blocks; a moderator decides.
	Review bool `json:"review,omitempty"`
	// Quality is the PDQ quality of the hash that matched, on review
	// evidence (0 elsewhere).
	Quality int `json:"quality,omitempty"`
}

// Verdict is a backend's or the Guard's answer.
type Verdict struct {
	// Match is true when some enforcing hash list holds one of the
	// digests: the media is blocked.
	Match bool `json:"match"`
	// WouldBlock is true when no enforcing list matched but a list in
	// report mode did: the media passes, and the match is reported. The
	// summary fields below then describe the report-only evidence.
	WouldBlock bool `json:"would_block,omitempty"`
	// Review is true when neither Match nor WouldBlock but a PDQ hash
	// fell in the review band (see Evidence.Review): a borderline match
	// for a moderator to confirm or dismiss. The summary fields then
	// describe the review evidence.
	Review bool `json:"review,omitempty"`
	// Quality is the best evidence's Quality (review verdicts only).
	Quality int `json:"quality,omitempty"`
	// Allowlisted names the allowlist (BankConfig.Allow) holding the
	// media's exact digest: it passes whatever any list matched.
	Allowlisted string `json:"allowlisted,omitempty"`
	// The best evidence (smallest distance, exact hashes first) when Match.
	Bank        string   `json:"bank,omitempty"`
	HashType    HashType `json:"hash_type,omitempty"`
	MatchedHash string   `json:"matched_hash,omitempty"`
	Distance    int      `json:"distance"`
	// Confidence is in [0,1]: 1 for exact hashes, falling with PDQ distance.
	Confidence float64 `json:"confidence"`
	Source     string  `json:"source,omitempty"`
	// Category is the best evidence's Category.
	Category string `json:"category,omitempty"`
	// Form names the form of the media that matched ("frame 3",
	// "displayed", "on white", "video frame at 4.0s"), "" for the
	// picture as stored.
	Form string `json:"form,omitempty"`
	// Variant is the best evidence's Variant: the kind of what matched
	// ("stored", "embedded", "quadrant", ...), "" without a match.
	Variant string `json:"variant,omitempty"`
	// Reason is a human sentence for logs, notices and the lookup API.
	Reason string `json:"reason,omitempty"`
	// Unscanned is set by the Guard under the fail-open policy when a
	// backend could not be consulted: allow, but record it as not scanned.
	Unscanned bool `json:"unscanned,omitempty"`
	// Evidence lists every match found, best first.
	Evidence []Evidence `json:"evidence,omitempty"`
	// Notes says what was not matched and why (e.g. low PDQ quality).
	Notes []string `json:"notes,omitempty"`
}

// Matcher is the contract every backend and the Guard implement. An error
// means the question could not be answered: it is never "no match".
type Matcher interface {
	Match(ctx context.Context, q Query) (Verdict, error)
}

// Errors a backend returns; wrap them with detail.
var (
	// ErrUnavailable: the backend cannot answer now (down, index not
	// loaded, breaker open, timeout).
	ErrUnavailable = errors.New("matcher: backend unavailable")
	// ErrBadResponse: the backend answered something that is not its
	// protocol (malformed JSON, wrong shape).
	ErrBadResponse = errors.New("matcher: malformed backend response")
)

// timeoutError is ErrUnavailable for a backend that gave no answer in time.
// It also matches context.DeadlineExceeded so the Guard can count timeouts
// apart from refusals and errors.
type timeoutError struct {
	who     string
	timeout time.Duration
}

func (e *timeoutError) Error() string {
	return fmt.Sprintf("%v: %s: no answer within %s", ErrUnavailable, e.who, e.timeout)
}

func (e *timeoutError) Is(target error) bool {
	return target == ErrUnavailable || target == context.DeadlineExceeded
}

// DefaultMinPDQQuality is the quality below which PDQ hashes are not matched,
// as in HMA and the PDQ paper.
const DefaultMinPDQQuality = 50

// DefaultPDQThreshold is the largest PDQ distance that matches. The PDQ
// index's layout is tuned for it, so it is defined there.
const DefaultPDQThreshold = pdqindex.DefaultThreshold

// MaxPDQThreshold bounds the configurable threshold.
const MaxPDQThreshold = 63

// PDQConfidence maps a PDQ distance to a confidence in [0,1].
func PDQConfidence(distance int) float64 {
	c := 1 - float64(distance)/64
	if c < 0 {
		return 0
	}
	return c
}

// HexOf returns the hex of a digest of the given type from q, or "".
func (q *Query) HexOf(t HashType) string {
	switch t {
	case MD5, VideoMD5:
		if q.Has&HasMD5 != 0 {
			return hex.EncodeToString(q.MD5[:])
		}
	case SHA1:
		if q.Has&HasSHA1 != 0 {
			return hex.EncodeToString(q.SHA1[:])
		}
	case SHA256:
		if q.Has&HasSHA256 != 0 {
			return hex.EncodeToString(q.SHA256[:])
		}
	case PDQ:
		if q.Has&HasPDQ != 0 {
			return q.PDQ.String()
		}
	}
	return ""
}
