package actions

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/notify"
)

// Reviews and holds are recorded as review detections with what a
// moderator's decision needs, notified (mxc only for stored media),
// redelivered until delivered, and never quarantined nor commanded.
func TestReviewOutcomes(t *testing.T) {
	l := openAudit(t)
	m, adm := &fakeNotifier{}, &fakeAdmin{}
	a := New(Config{Audit: l, Matrix: m, Admin: adm, QuarantineUserMedia: true, SuspendUser: true})
	stored, _ := pdq.ParseHex(strings.Repeat("0f", 32))
	frame, _ := pdq.ParseHex(strings.Repeat("f0", 32))
	q := &matcher.Query{Has: matcher.HasPDQ, PDQ: stored, PDQQuality: 30, Forms: []pdq.Form{{Name: "frame 3", Variant: pdq.VariantFrame, Hash: frame, Quality: 90}}}
	verdict := matcher.Verdict{Review: true, Bank: "LISTED", HashType: matcher.PDQ, MatchedHash: strings.Repeat("ab", 32), Distance: 38, Quality: 90,
		Source: "local:LISTED", Form: "frame 3", Variant: pdq.VariantFrame,
		Evidence: []matcher.Evidence{
			{Bank: "LISTED", HashType: matcher.PDQ, Hash: strings.Repeat("ab", 32), Distance: 38, Label: "case 7", Form: "frame 3", Variant: pdq.VariantFrame, Review: true, Quality: 90},
			{Bank: "LISTED", HashType: matcher.PDQ, Hash: strings.Repeat("cd", 32), Distance: 12, Review: true, Quality: 30, Variant: pdq.VariantStored},
		}}
	var dg hashing.Digests
	dg.Size = 10
	dg.SHA256[0] = 1
	cases := []struct {
		name    string
		upload  bool
		outcome mediaproxy.Outcome
		status  int
		mxc     string
		action  string
	}{
		{"allowed upload stored", true, mediaproxy.Review, 200, "mxc://hs/Stored", "passed"},
		{"held upload", true, mediaproxy.Held, 0, "", "upload held (403)"},
		{"allowed download", false, mediaproxy.Review, 0, "mxc://hs/Stored", "passed"},
		{"held download", false, mediaproxy.Held, 0, "mxc://hs/Stored", "download held (404)"},
	}
	for _, c := range cases {
		d := decision(c.upload, c.outcome, "hs/Stored", "@up:hs")
		d.UpstreamStatus, d.Verdict, d.Query, d.Digests = c.status, verdict, q, dg
		a.Observe(d)
	}
	a.Wait()
	if len(adm.calls) != 0 {
		t.Errorf("admin acted on a review: %q", adm.calls)
	}
	got := m.notices()
	recs := records(t, l)
	if len(got) != len(cases) || len(recs) != len(cases) {
		t.Fatalf("%d notices, %d records", len(got), len(recs))
	}
	for i, c := range cases {
		n, r := got[i], recs[i]
		if !n.Review || n.MXC != c.mxc || n.Quality != 90 || n.Label != "case 7" || n.Distance != 38 || !strings.Contains(n.Action, c.action) {
			t.Errorf("%s: notice %+v", c.name, n)
		}
		if cmds := notify.Commands([]string{"!mjolnir ban {user}", "!mjolnir redact {mxc}"}, n); len(cmds) != 0 {
			t.Errorf("%s: commands %q for a review", c.name, cmds)
		}
		var ev audit.Evidence
		if err := json.Unmarshal(r.Verdict, &ev); err != nil {
			t.Fatal(err)
		}
		if r.Kind != audit.KindReview || ev.Outcome != string(c.outcome) || ev.Quality != 90 || ev.Label != "case 7" || r.Digests["sha256"] == "" {
			t.Errorf("%s: record %+v evidence %+v", c.name, r, ev)
		}
		want := []audit.FormHash{{Form: "frame 3", Variant: pdq.VariantFrame, PDQ: frame.String()}, {Variant: pdq.VariantStored, PDQ: stored.String()}}
		if len(ev.MatchedPDQ) != 2 || ev.MatchedPDQ[0] != want[0] || ev.MatchedPDQ[1] != want[1] {
			t.Errorf("%s: matched pdq %+v", c.name, ev.MatchedPDQ)
		}
		body, _ := notify.Format(n)
		if !strings.Contains(body, "review requested") || !strings.Contains(body, n.ID) || !strings.Contains(body, "quality 90") ||
			!strings.Contains(body, "case 7") || !strings.Contains(body, "(frame 3)") || strings.Contains(body, strings.Repeat("ab", 32)) {
			t.Errorf("%s: notice body %q", c.name, body)
		}
	}
	a.Delivered(got[0].ID)
	again := &fakeNotifier{}
	New(Config{Audit: l, Matrix: again}).RedeliverPending()
	if r := again.notices(); len(r) != len(cases)-1 || !r[0].Review || r[0].Label != "case 7" {
		t.Fatalf("redelivered %+v", r)
	}
}
