package notify

import (
	"strings"
	"testing"
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
