package hmaapi

import (
	"crypto/sha256"
	"encoding/binary"
	"strconv"
	"strings"

	"github.com/mediaguard/mediaguard/matcher"
)

// ContentID is the bank_content_id mediaguard answers for a banked entry.
// HMA numbers the content of its database; mediaguard's banks are files,
// whose entries have no number, so the id is derived from what identifies
// the entry: the first 53 bits of
//
//	SHA-256("mediaguard bank content" NUL BANK NUL TYPE NUL HASH)
//
// with TYPE the bank file's hash type (md5, sha1, sha256, pdq, video_md5)
// and HASH the banked hash in lowercase hex; 0 becomes 1. The same entry
// has the same id across reloads, restarts and instances, whatever its
// line in the file; the same hash in two banks, or as md5 and as
// video_md5, has two. 53 bits keep it exact in every JSON reader (a
// JavaScript number, a float64); two entries of a bank of 10 million share
// an id with a probability of about 1 in 10^8.
func ContentID(bank string, t matcher.HashType, hash string) int64 {
	h := sha256.New()
	h.Write([]byte("mediaguard bank content\x00"))
	h.Write([]byte(bank))
	h.Write([]byte{0})
	h.Write([]byte(t))
	h.Write([]byte{0})
	h.Write([]byte(strings.ToLower(hash)))
	var sum [sha256.Size]byte
	id := int64(binary.BigEndian.Uint64(h.Sum(sum[:0])) >> 11)
	if id == 0 {
		id = 1
	}
	return id
}

// hmaContentPrefix starts the Label matcher.HMA gives its evidence; the
// number after it is the remote HMA's own bank_content_id.
const hmaContentPrefix = "hma content "

// contentIDOf is the bank_content_id of one piece of evidence: a remote
// HMA's own id where the evidence carries it (so an operator can look the
// entry up there), else ContentID of the entry (a local bank's banked hash;
// for a lookup service, the hash it matched).
func contentIDOf(e *matcher.Evidence) int64 {
	if strings.HasPrefix(e.Source, "hma:") && strings.HasPrefix(e.Label, hmaContentPrefix) {
		if id, err := strconv.ParseInt(e.Label[len(hmaContentPrefix):], 10, 64); err == nil && id >= 0 {
			return id
		}
	}
	return ContentID(e.Bank, e.HashType, e.Hash)
}

// bankKey is the top-level key a bank is answered under: its name when it
// is an HMA bank name ([A-Z_][A-Z0-9_]*, which local and HMA banks always
// are), else (a lookup service naming its banks otherwise, or a service's
// own name) the name upper-cased with every other character turned into
// "_", so the answer holds bank names only. Empty names become the
// backend's ("service:NAME" → SERVICE_NAME).
func bankKey(e *matcher.Evidence) string {
	name := e.Bank
	if matcher.ValidBankName(name) {
		return name
	}
	if name == "" {
		name = e.Source
	}
	if name == "" {
		name = "UNNAMED"
	}
	var b strings.Builder
	for i, c := range strings.ToUpper(name) {
		switch {
		case c >= 'A' && c <= 'Z' || c == '_':
		case c >= '0' && c <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
		default:
			c = '_'
		}
		b.WriteRune(c)
	}
	return b.String()
}

// bankMatch is one entry of an /m/lookup answer: HMA's
// MatchWithDistancePayload, with the distance a string (HMA 1.1.7's
// similarity_info.pretty_str(): "31" for PDQ, "-" for exact types).
type bankMatch struct {
	ID       int64  `json:"bank_content_id"`
	Distance string `json:"distance"`
}

// lookupAnswer groups a verdict's evidence by bank, as HMA's GET
// /m/lookup answers ({"BANK": [{"bank_content_id": N, "distance": "D"}]};
// src/OpenMediaMatch/blueprints/matching.py in
// https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner),
// best evidence first within a bank, each entry once, keeping only the
// banks in only (all when nil) and leaving out report-only and review
// evidence. No match (a would-block included) is the empty object.
func lookupAnswer(v *matcher.Verdict, only map[string]bool) map[string][]bankMatch {
	out := make(map[string][]bankMatch)
	if !v.Match {
		return out
	}
	ev := v.Evidence
	if len(ev) == 0 {
		// Every backend gives evidence with a match; should one not,
		// the verdict's own fields are the evidence.
		ev = []matcher.Evidence{{Bank: v.Bank, HashType: v.HashType, Hash: v.MatchedHash, Distance: v.Distance, Source: v.Source}}
	}
	for i := range ev {
		e := &ev[i]
		if e.ReportOnly || e.Review {
			// A bank or backend in report mode never blocks, nor does
			// review-band evidence beside a remote's match, and an HMA
			// client takes every bank named as a hit (policyserv does).
			continue
		}
		bank := bankKey(e)
		if only != nil && !only[bank] {
			continue
		}
		m := bankMatch{ID: contentIDOf(e), Distance: "-"}
		if e.HashType == matcher.PDQ {
			m.Distance = strconv.Itoa(e.Distance)
		}
		dup := false
		for _, o := range out[bank] {
			dup = dup || o.ID == m.ID
		}
		if !dup {
			out[bank] = append(out[bank], m)
		}
	}
	return out
}
