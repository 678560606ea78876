package matcher

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// Arachnid Shield's wire format for PDQ lookups, from its public Python SDK
// (https://github.com/CdnCentreForChildProtection/arachnid-shield-sdk-python):
// arachnid_shield_sdk/api/v1.py scan_pdq_hashes() POSTs
// models/scanned_pdq.py ScanMediaFromPdq, {"hashes": [...]}, and reads
// ScannedPDQHashes, {"scanned_hashes": {QUERY: PDQMatch}}; errors are
// models/error_detail.py ErrorDetail, {"detail": "..."}.

// arachnidPDQ encodes a PDQ hash as Arachnid Shield wants it: the 32 bytes
// of the hash, most significant bit first (the order of its 64-digit hex
// form), in standard padded base64. The SDK only says "base64-encoded PDQ
// hashes" (ScanMediaFromPdq); its own test fixture builds one as
// base64.b64encode(np.packbits(hash_).tobytes()) from pdqhash-python's
// bit vector (tests/conftest.py example_image_pdq_b64encoded), whose first
// element is bit 255 (pdqhash/bindings.pyx hash_to_vector,
// https://github.com/faustomorales/pdqhash-python): the same bytes as the
// hex. Should the service ever want another encoding, this is the one line
// to change (arachnid_test.go pins it).
func arachnidPDQ(h pdq.Hash) string {
	var b [32]byte
	for i, w := range h {
		binary.BigEndian.PutUint64(b[8*i:], w)
	}
	return base64.StdEncoding.EncodeToString(b[:])
}

// Classifications Arachnid Shield answers (models/media_classification.py
// MediaClassification, which says "More classification types may be added
// in the future").
const (
	arachnidCSAM    = "csam"
	arachnidHarmful = "harmful-abusive-material"
	arachnidNoMatch = "no-known-match"
)

// The bank names Arachnid Shield's matches are recorded under, one per
// classification, so audit records, notices and the bank_blocks_total
// metric tell CSAM from harmful-abusive material. A classification added
// after this was written is ArachnidBankOther (see arachnidBank).
const (
	ArachnidBankCSAM    = "ARACHNID_CSAM"
	ArachnidBankHarmful = "ARACHNID_HARMFUL"
	ArachnidBankOther   = "ARACHNID_OTHER"
)

// ArachnidBanks lists every bank name an Arachnid Shield match can carry.
var ArachnidBanks = []string{ArachnidBankCSAM, ArachnidBankHarmful, ArachnidBankOther}

// arachnidBank maps a classification to the bank its match is recorded
// under, "" for no match. null, "" and "no-known-match" are no match (the
// SDK's PDQMatch.matches_known_media). Any other classification is a match:
// the service says the hash is a known item, and a classification this
// code has not heard of yet (the SDK warns more will come) must not let
// that media through; it is recorded under ArachnidBankOther with its own
// name as the label, so moderators see what the service said.
func arachnidBank(classification string) string {
	switch strings.ToLower(strings.TrimSpace(classification)) {
	case "", arachnidNoMatch:
		return ""
	case arachnidCSAM:
		return ArachnidBankCSAM
	case arachnidHarmful:
		return ArachnidBankHarmful
	}
	return ArachnidBankOther
}

// arachnidRank orders matches for the verdict: CSAM first, then
// harmful-abusive material, then classifications unknown here.
func arachnidRank(bank string) int {
	switch bank {
	case ArachnidBankCSAM:
		return 0
	case ArachnidBankHarmful:
		return 1
	}
	return 2
}

// arachnidHit is what Arachnid Shield said of one PDQ hash it matched.
type arachnidHit struct {
	bank string
	// classification is the service's word ("csam", ...), printable and
	// bounded.
	classification string
	// matchType is "near" (or whatever the service said), "" for null.
	matchType string
	// sha256 and sha1 identify the known media that matched (the
	// service's near_match_details), "" when not given.
	sha256, sha1 string
}

// label is the evidence label: the classification, and the known media's
// SHA-256 (what a report to the Canadian Centre for Child Protection
// names it by) or else SHA-1.
func (h *arachnidHit) label() string {
	s := h.classification
	switch {
	case h.sha256 != "":
		s += ", near match to known media sha256 " + h.sha256
	case h.sha1 != "":
		s += ", near match to known media sha1 (base32) " + h.sha1
	}
	return s
}

// arachnidRequestBody is the POST body for these encoded hashes.
func arachnidRequestBody(keys []string) ([]byte, error) {
	return json.Marshal(struct {
		Hashes []string `json:"hashes"`
	}{keys})
}

// parseArachnidPDQ reads a ScannedPDQHashes answer into a hit per matched
// key. Every key asked must be answered: a key missing from the answer
// (say, because the service spelt it another way) cannot be read as "no
// match", so it is ErrBadResponse, as is anything that is not the shape
// above. A key's value may be null (the SDK's docstring: "If no match was
// found for a query PDQ, the value ... is null") or an object whose
// classification is null or "no-known-match" (what its parser expects):
// both are no match.
func parseArachnidPDQ(body []byte, asked []string) (map[string]*arachnidHit, error) {
	if !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
		return nil, fmt.Errorf("%w: answer is not a JSON object: %s", ErrBadResponse, errorDetail(body))
	}
	var ans struct {
		Scanned map[string]json.RawMessage `json:"scanned_hashes"`
	}
	if err := json.Unmarshal(body, &ans); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if ans.Scanned == nil {
		return nil, fmt.Errorf("%w: no scanned_hashes object in the answer: %s", ErrBadResponse, errorDetail(body))
	}
	out := make(map[string]*arachnidHit)
	for _, k := range asked {
		raw, ok := ans.Scanned[k]
		if !ok {
			return nil, fmt.Errorf("%w: the answer does not mention hash %s (of %d asked, %d answered)", ErrBadResponse, k, len(asked), len(ans.Scanned))
		}
		h, err := parseArachnidMatch(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: hash %s: %v", ErrBadResponse, k, err)
		}
		if h != nil {
			out[k] = h
		}
	}
	return out, nil
}

// parseArachnidMatch reads one PDQMatch; nil is no match.
func parseArachnidMatch(raw json.RawMessage) (*arachnidHit, error) {
	if string(bytes.TrimSpace(raw)) == "null" {
		return nil, nil
	}
	var m struct {
		Classification *string `json:"classification"`
		MatchType      *string `json:"match_type"`
		Near           *struct {
			SHA1   *string `json:"sha1_base32"`
			SHA256 *string `json:"sha256_hex"`
		} `json:"near_match_details"`
	}
	if !bytes.HasPrefix(bytes.TrimSpace(raw), []byte("{")) {
		return nil, fmt.Errorf("want an object or null, got %s", truncateDetail(string(raw), 64))
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, err
	}
	var class string
	if m.Classification != nil {
		class = *m.Classification
	}
	bank := arachnidBank(class)
	if bank == "" {
		return nil, nil
	}
	h := &arachnidHit{bank: bank, classification: printable(strings.ToLower(strings.TrimSpace(class)), 64)}
	if m.MatchType != nil {
		h.matchType = printable(*m.MatchType, 16)
	}
	if m.Near != nil {
		if m.Near.SHA256 != nil && isHex(*m.Near.SHA256, 64) {
			h.sha256 = strings.ToLower(*m.Near.SHA256)
		}
		if m.Near.SHA1 != nil && isBase32(*m.Near.SHA1, 32) {
			h.sha1 = strings.ToUpper(*m.Near.SHA1)
		}
	}
	return h, nil
}

// arachnidErrorDetail describes an error answer: its ErrorDetail's
// "detail" (a string; a list, as FastAPI-style validation errors have, is
// shown as JSON), else the start of the body.
func arachnidErrorDetail(body []byte) string {
	var e struct {
		Detail json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil && len(e.Detail) > 0 && string(e.Detail) != "null" {
		var s string
		if json.Unmarshal(e.Detail, &s) == nil {
			return strconv.Quote(truncateDetail(s, 200))
		}
		return truncateDetail(string(e.Detail), 200)
	}
	return errorDetail(body)
}

// printable keeps the first n bytes of s that are printable ASCII, so a
// remote answer cannot put control characters or unbounded text into
// logs and notices.
func printable(s string, n int) string {
	var b strings.Builder
	for i := 0; i < len(s) && b.Len() < n; i++ {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func isBase32(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}
