package notify

import (
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// The notice says which form of the media matched, so moderators know to
// look at frame 3 or at the picture as displayed, not at what the file
// shows first.
func TestNoticeNamesTheForm(t *testing.T) {
	d := Detection{ID: "d1", Direction: "upload", Endpoint: "upload", HashType: "pdq", MatchedHash: strings.Repeat("ab", 32), Bank: "B", Distance: 4, Form: "frame 3"}
	body, html := Format(d)
	for _, s := range []string{body, html} {
		if !strings.Contains(s, "PDQ distance 4 (frame 3)") {
			t.Fatalf("form missing from %q", s)
		}
	}
	if m := machine(d, 0); m["form"] != "frame 3" {
		t.Fatalf("machine-readable form %v", m["form"])
	}
	d.Form = ""
	if body, _ := Format(d); strings.Contains(body, "(") && strings.Contains(body, "PDQ distance 4 (") {
		t.Fatalf("stored form named: %q", body)
	}
}

// The notice says what the picture had been through when a variant of
// it matched (a quadrant of a collage, its negative), and the
// machine-readable object carries the kind; the picture as stored needs
// no words.
func TestNoticeNamesTheVariant(t *testing.T) {
	d := Detection{ID: "d1", Direction: "upload", Endpoint: "upload", HashType: "pdq", MatchedHash: strings.Repeat("ab", 32), Bank: "B", Distance: 4,
		Form: "frame 1 quadrant 2", Variant: pdq.VariantQuadrant}
	body, html := Format(d)
	for _, s := range []string{body, html} {
		if !strings.Contains(s, "PDQ distance 4 (frame 1 quadrant 2), matched its quadrant, confidence") {
			t.Fatalf("variant missing from %q", s)
		}
	}
	if m := machine(d, 0); m["variant"] != "quadrant" {
		t.Fatalf("machine-readable variant %v", m["variant"])
	}
	for _, v := range []string{"", pdq.VariantStored} {
		d.Form, d.Variant = "", v
		if body, _ := Format(d); strings.Contains(body, "matched") {
			t.Fatalf("%q: the stored picture described: %q", v, body)
		}
	}
	d.HashType, d.Form, d.Variant = "sha256", "zip entry a.jpg", pdq.VariantEmbedded
	if body, _ := Format(d); !strings.Contains(body, "exact match (zip entry a.jpg), matched a file embedded in it") {
		t.Fatalf("embedded: %q", body)
	}
	for _, v := range []string{pdq.VariantFrame, pdq.VariantDisplayed, pdq.VariantComposited, pdq.VariantColourManaged,
		pdq.VariantEmbedded, pdq.VariantTrimmed, pdq.VariantPeeled, pdq.VariantDegapped, pdq.VariantQuadrant,
		pdq.VariantNegative, pdq.VariantStretched, pdq.VariantWindow, pdq.VariantRotated} {
		if variantText[v] == "" {
			t.Errorf("no words for %q", v)
		}
	}
}
