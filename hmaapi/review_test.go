package hmaapi

import (
	"testing"

	"github.com/mediaguard/mediaguard/matcher"
)

// Review-band evidence beside a match (a remote matched, a local bank
// was only near) names no bank: an HMA client takes every bank named as
// a hit.
func TestLookupAnswerLeavesOutReview(t *testing.T) {
	v := &matcher.Verdict{Match: true, Evidence: []matcher.Evidence{
		{Bank: "NEAR", HashType: matcher.PDQ, Hash: "ab", Distance: 40, Source: "local:NEAR", Review: true},
		{Bank: "REMOTE", HashType: matcher.PDQ, Hash: "cd", Distance: 3, Source: "hma:x"},
	}}
	got := lookupAnswer(v, nil)
	if len(got) != 1 || got["NEAR"] != nil {
		t.Fatalf("answer %v", got)
	}
}
