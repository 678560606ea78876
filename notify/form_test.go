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

// A report-only detection says it would have blocked and that the media
// passed, carries its kind and category for bots, and never makes
// Mjolnir act: a dry run has no consequences.
func TestWouldBlockNotice(t *testing.T) {
	d := Detection{ID: "d1", Direction: "upload", Endpoint: "upload", User: "@u:example.org", MXC: "mxc://example.org/abc",
		HashType: "pdq", MatchedHash: strings.Repeat("ab", 32), Bank: "TRIAL", Category: "ncii", Distance: 4,
		Action: "none: report-only mode, the upload passed", WouldBlock: true}
	body, html := Format(d)
	for _, s := range []string{body, html} {
		for _, want := range []string{"would have blocked an upload", "report-only mode, it passed", "TRIAL, category ncii", "Would have blocked"} {
			if !strings.Contains(s, want) {
				t.Errorf("%q missing from %q", want, s)
			}
		}
		if strings.Contains(s, "mediaguard blocked") || strings.Contains(s, "🚨") {
			t.Errorf("a would-block reads as a block: %q", s)
		}
	}
	if m := machine(d, 0); m["kind"] != "would_block" || m["category"] != "ncii" {
		t.Errorf("machine-readable kind %v category %v", m["kind"], m["category"])
	}
	tpl := []string{"!mjolnir redact {user}", "!mjolnir quarantine-media {mxc}"}
	if c := Commands(tpl, d); len(c) != 0 {
		t.Errorf("commands for a would-block: %q", c)
	}
	d.WouldBlock = false
	if c := Commands(tpl, d); len(c) != 2 {
		t.Errorf("commands for a block: %q", c)
	}
	if m := machine(d, 0); m["kind"] != nil {
		t.Errorf("a block has kind %v", m["kind"])
	}
}
