package actions

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/notify"
)

// fakeNotifier keeps what it is told; full makes its queue refuse.
type fakeNotifier struct {
	mu   sync.Mutex
	got  []notify.Detection
	full bool
}

func (f *fakeNotifier) Notify(d notify.Detection) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.full {
		return false
	}
	f.got = append(f.got, d)
	return true
}

func (f *fakeNotifier) notices() []notify.Detection {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]notify.Detection(nil), f.got...)
}

// fakeAdmin records the admin calls; fail makes every one fail.
type fakeAdmin struct {
	mu    sync.Mutex
	calls []string
	fail  bool
}

func (f *fakeAdmin) call(s string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
	if f.fail {
		return errors.New("503 from synapse")
	}
	return nil
}

func (f *fakeAdmin) QuarantineMedia(_ context.Context, server, id string) error {
	return f.call("quarantine " + server + "/" + id)
}

func (f *fakeAdmin) QuarantineUserMedia(_ context.Context, user string) (int, error) {
	return 1, f.call("quarantine_user_media " + user)
}

func (f *fakeAdmin) SuspendUser(_ context.Context, user string) error {
	return f.call("suspend_user " + user)
}

func decision(upload bool, outcome mediaproxy.Outcome, media, user string) *mediaproxy.Decision {
	path := "/_matrix/media/v3/download/" + media
	if upload {
		path = "/_matrix/media/v3/upload"
	}
	d := &mediaproxy.Decision{
		Request: httptest.NewRequest("GET", path, nil), Endpoint: mediaproxy.Endpoint{Name: path},
		Upload: upload, Outcome: outcome, User: user,
	}
	if server, id, ok := strings.Cut(media, "/"); ok {
		d.MediaKey = mediaproxy.MediaKey{Server: server, ID: id}
	}
	if outcome == mediaproxy.Blocked || outcome == mediaproxy.LateBlocked || outcome == mediaproxy.KnownBlocked {
		d.Verdict = matcher.Verdict{Match: true, Bank: "B", HashType: matcher.SHA256, MatchedHash: "0123456789abcdef0123", Source: "local"}
	}
	if outcome == mediaproxy.Refused || outcome == mediaproxy.Unscanned {
		d.Err = errors.New("hma: connection refused")
	}
	return d
}

func openAudit(t *testing.T) *audit.Log {
	t.Helper()
	l, err := audit.Open(audit.Options{Path: filepath.Join(t.TempDir(), "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func records(t *testing.T, l *audit.Log) []audit.Record {
	t.Helper()
	var recs []audit.Record
	if err := audit.Read(l.Path(), time.Time{}, func(r audit.Record) error { recs = append(recs, r); return nil }); err != nil {
		t.Fatal(err)
	}
	return recs
}

// Each decision leaves the records, notices and admin calls it must, and
// no others.
func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		name       string
		d          *mediaproxy.Decision
		cfg        Config // Audit, Matrix, Webhook and Admin are filled in
		adminFails bool
		kinds      []string // audit kinds in order (actions as kind:action:outcome)
		notices    int      // per notifier
		mxc        string   // of the notice
		calls      []string // admin calls
	}{
		{
			name:  "blocked upload: recorded and notified, nothing to quarantine",
			d:     decision(true, mediaproxy.Blocked, "", "@up:hs"),
			kinds: []string{"block"}, notices: 1,
		},
		{
			name:  "blocked PUT upload: its claimed media ID never reaches a notice",
			d:     decision(true, mediaproxy.Blocked, "hs/Claimed", "@up:hs"),
			kinds: []string{"block"}, notices: 1,
		},
		{
			name:  "blocked download: recorded, notified and quarantined",
			d:     decision(false, mediaproxy.Blocked, "hs/Bad", "@down:hs"),
			kinds: []string{"block", "action:quarantine:ok"}, notices: 1, mxc: "mxc://hs/Bad",
			calls: []string{"quarantine hs/Bad"},
		},
		{
			name:    "blocked download with user follow-ups",
			d:       decision(false, mediaproxy.Blocked, "hs/Bad", "@down:hs"),
			cfg:     Config{QuarantineUserMedia: true, SuspendUser: true},
			kinds:   []string{"block", "action:quarantine:ok", "action:quarantine_user_media:ok", "action:suspend_user:ok"},
			notices: 1, mxc: "mxc://hs/Bad",
			calls: []string{"quarantine hs/Bad", "quarantine_user_media @down:hs", "suspend_user @down:hs"},
		},
		{
			name:  "user follow-ups need a known user",
			d:     decision(false, mediaproxy.Blocked, "hs/Bad", ""),
			cfg:   Config{QuarantineUserMedia: true, SuspendUser: true},
			kinds: []string{"block", "action:quarantine:ok"}, notices: 1, mxc: "mxc://hs/Bad",
			calls: []string{"quarantine hs/Bad"},
		},
		{
			name:       "a failed quarantine is on record",
			d:          decision(false, mediaproxy.LateBlocked, "hs/Late", ""),
			adminFails: true,
			kinds:      []string{"late_block", "action:quarantine:failed: 503 from synapse"}, notices: 1, mxc: "mxc://hs/Late",
			calls: []string{"quarantine hs/Late"},
		},
		{
			name:  "a federation download keyed by path is not quarantined",
			d:     decision(false, mediaproxy.Blocked, "/_matrix/federation/v1/media/download/x", ""),
			kinds: []string{"block"}, notices: 1,
		},
		{name: "known block: on record, not a new detection", d: decision(false, mediaproxy.KnownBlocked, "hs/Bad", ""), kinds: []string{"known_block"}},
		{name: "unscannable", d: decision(true, mediaproxy.Unscannable, "", ""), kinds: []string{"unscannable"}},
		{name: "unscanned (fail open)", d: decision(true, mediaproxy.Unscanned, "", ""), kinds: []string{"unscanned"}},
		{name: "refused (fail closed)", d: decision(false, mediaproxy.Refused, "hs/X", ""), kinds: []string{"refused"}},
		{name: "undecodable", d: decision(true, mediaproxy.Undecodable, "", ""), kinds: []string{"undecodable"}},
		{name: "clean: not recorded by default", d: decision(true, mediaproxy.Clean, "", "")},
		{name: "clean with log_clean_scans", d: decision(true, mediaproxy.Clean, "", ""), cfg: Config{LogCleanScans: true}, kinds: []string{"clean"}},
		{name: "known clean: never recorded", d: decision(false, mediaproxy.KnownClean, "hs/Ok", ""), cfg: Config{LogCleanScans: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Audit = openAudit(t)
			m, wh, admin := &fakeNotifier{}, &fakeNotifier{}, &fakeAdmin{fail: tc.adminFails}
			cfg.Matrix, cfg.Webhook, cfg.Admin = m, wh, admin
			a := New(cfg)
			defer a.Close()
			a.Observe(tc.d)
			a.wg.Wait()

			recs := records(t, cfg.Audit)
			var kinds []string
			for _, r := range recs {
				k := r.Kind
				if k == audit.KindAction {
					k += ":" + r.Action + ":" + r.Outcome
					if r.Ref != recs[0].ID {
						t.Errorf("action %s refers to %q, not the detection %q", r.Action, r.Ref, recs[0].ID)
					}
				}
				kinds = append(kinds, k)
			}
			if !reflect.DeepEqual(kinds, tc.kinds) {
				t.Fatalf("records %q, want %q", kinds, tc.kinds)
			}
			if len(recs) > 0 && recs[0].User == "" {
				t.Errorf("record without user: want %q when unknown", "unknown")
			}
			for _, n := range []*fakeNotifier{m, wh} {
				got := n.notices()
				if len(got) != tc.notices {
					t.Fatalf("%d notices, want %d", len(got), tc.notices)
				}
				for _, d := range got {
					if d.ID != recs[0].ID || d.MXC != tc.mxc || d.Bank != "B" || d.User != tc.d.User {
						t.Errorf("notice %+v (want id %s, mxc %q)", d, recs[0].ID, tc.mxc)
					}
				}
			}
			if !reflect.DeepEqual(admin.calls, tc.calls) {
				t.Errorf("admin calls %q, want %q", admin.calls, tc.calls)
			}
		})
	}
}

// The record carries the decision's evidence and digests; the notice
// says what was done.
func TestRecordEvidence(t *testing.T) {
	l := openAudit(t)
	a := New(Config{Audit: l})
	d := decision(false, mediaproxy.Blocked, "hs/Bad", "@u:hs")
	d.Digests.Size = 3
	a.Observe(d)
	recs := records(t, l)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	r := recs[0]
	if r.Direction != "download" || r.Media != "hs/Bad" || r.User != "@u:hs" || r.Endpoint != "/_matrix/media/v3/download/hs/Bad" || r.Digests["sha256"] == "" {
		t.Fatalf("record %+v", r)
	}
	var ev audit.Evidence
	if err := json.Unmarshal(r.Verdict, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.Outcome != "blocked" || ev.Bank != "B" || ev.HashType != "sha256" || ev.Action != "download refused (404); media ID blocked" {
		t.Fatalf("evidence %+v", ev)
	}
	u := decision(true, mediaproxy.Refused, "", "")
	a.Observe(u)
	recs = records(t, l)
	ev = audit.Evidence{}
	if err := json.Unmarshal(recs[1].Verdict, &ev); err != nil || ev.Error != "hma: connection refused" || ev.Action != "" {
		t.Fatalf("refused evidence %s: %v", recs[1].Verdict, err)
	}
}

// A full notice queue drops the notice but never the record or the block.
func TestNoticeQueueFull(t *testing.T) {
	l := openAudit(t)
	m := &fakeNotifier{full: true}
	a := New(Config{Audit: l, Matrix: m, Webhook: m})
	a.Observe(decision(true, mediaproxy.Blocked, "", ""))
	if recs := records(t, l); len(recs) != 1 || recs[0].Kind != audit.KindBlock {
		t.Fatalf("records %+v", recs)
	}
	// Without an audit log or notifiers nothing fails either.
	New(Config{}).Observe(decision(false, mediaproxy.Blocked, "hs/Bad", ""))
}

// A notice delivered is recorded; after a restart only the blocks whose
// delivery was never recorded are handed to the notifier again.
func TestRedeliverPending(t *testing.T) {
	l := openAudit(t)
	m := &fakeNotifier{}
	a := New(Config{Audit: l, Matrix: m})
	a.Observe(decision(false, mediaproxy.Blocked, "hs/One", "@u:hs"))
	a.Observe(decision(false, mediaproxy.LateBlocked, "hs/Two", ""))
	a.Observe(decision(false, mediaproxy.KnownBlocked, "hs/One", ""))
	sent := m.notices()
	if len(sent) != 2 {
		t.Fatalf("%d notices", len(sent))
	}
	a.Delivered(sent[0].ID)

	again := &fakeNotifier{}
	New(Config{Audit: l, Matrix: again}).RedeliverPending()
	got := again.notices()
	if len(got) != 1 || got[0].ID != sent[1].ID || got[0].MXC != "mxc://hs/Two" || got[0].User != "" ||
		got[0].Action != "connection aborted before the end of the download; media ID blocked" {
		t.Fatalf("redelivered %+v", got)
	}
	// Nothing to redeliver to, or from: no-ops.
	New(Config{Audit: l}).RedeliverPending()
	New(Config{Matrix: again}).RedeliverPending()
	New(Config{}).Delivered("x")
}

// The variant label takes pdq's closed set only: an unset kind is the
// media as stored, and anything else is "other", whatever reached the
// verdict.
func TestVariantLabel(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "stored",
		pdq.VariantStored:        "stored",
		pdq.VariantQuadrant:      "quadrant",
		pdq.VariantColourManaged: "colour-managed",
		pdq.VariantEmbedded:      "embedded",
		pdq.VariantRotated:       "rotated",
		"frame 3":                "other",
		"quadrant\n":             "other",
		"@mallory:example.org":   "other",
	} {
		if got := VariantLabel(in); got != want {
			t.Errorf("VariantLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// A block's audit record and notice (live and redelivered from the
// record) carry the kind of what matched.
func TestBlockCarriesVariant(t *testing.T) {
	l := openAudit(t)
	m := &fakeNotifier{}
	a := New(Config{Audit: l, Matrix: m})
	d := decision(true, mediaproxy.Blocked, "", "")
	d.Verdict = matcher.Verdict{Match: true, Bank: "B", HashType: matcher.PDQ, MatchedHash: "ab", Distance: 3,
		Form: "frame 2 quadrant 4", Variant: pdq.VariantQuadrant}
	a.Observe(d)
	recs := records(t, l)
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	var v audit.Evidence
	if err := json.Unmarshal(recs[0].Verdict, &v); err != nil || v.Variant != pdq.VariantQuadrant || v.Form != "frame 2 quadrant 4" {
		t.Fatalf("audit verdict %s: %v", recs[0].Verdict, err)
	}
	if n := detectionFromRecord(recs[0]); n.Variant != pdq.VariantQuadrant || n.Form != "frame 2 quadrant 4" {
		t.Fatalf("redelivered notice %+v", n)
	}
	if n := m.notices(); len(n) != 1 || n[0].Variant != pdq.VariantQuadrant {
		t.Fatalf("notice %+v", n)
	}
}

func TestMatchedPrefix(t *testing.T) {
	for in, want := range map[string]string{"": "", "ab": "ab", "0123456789abcdef": "0123456789abcdef", "0123456789abcdef0": "0123456789abcdef"} {
		if got := MatchedPrefix(in); got != want {
			t.Errorf("MatchedPrefix(%q) = %q", in, got)
		}
	}
}

// A would-block is recorded as its own kind with its category, posted as
// a notice (redelivered like a block if the process stopped first), and
// never quarantined: in report mode the media passes and nobody is acted
// on. A stored upload is named, since it now exists.
func TestWouldBlock(t *testing.T) {
	l := openAudit(t)
	m, wh, adm := &fakeNotifier{}, &fakeNotifier{}, &fakeAdmin{}
	a := New(Config{Audit: l, Matrix: m, Webhook: wh, Admin: adm, QuarantineUserMedia: true, SuspendUser: true})
	d := decision(true, mediaproxy.WouldBlock, "hs/Stored", "@up:hs")
	d.UpstreamStatus = 200
	d.Verdict = matcher.Verdict{WouldBlock: true, Bank: "TRIAL", Category: "spam", HashType: matcher.PDQ, MatchedHash: strings.Repeat("ab", 32), Distance: 3, Source: "local:TRIAL"}
	a.Observe(d)
	notStored := decision(true, mediaproxy.WouldBlock, "hs/Claimed", "@up:hs")
	notStored.UpstreamStatus = 500
	notStored.Verdict = d.Verdict
	a.Observe(notStored)
	a.Wait()
	if len(adm.calls) != 0 {
		t.Errorf("admin acted on a would-block: %q", adm.calls)
	}
	got := m.notices()
	if len(got) != 2 || len(wh.notices()) != 2 {
		t.Fatalf("notices %+v", got)
	}
	if n := got[0]; !n.WouldBlock || n.Category != "spam" || n.MXC != "mxc://hs/Stored" || n.User != "@up:hs" || !strings.Contains(n.Action, "report-only") {
		t.Errorf("notice %+v", n)
	}
	if got[1].MXC != "" {
		t.Errorf("an upload the homeserver did not store is named %q", got[1].MXC)
	}
	recs := records(t, l)
	if len(recs) != 2 || recs[0].Kind != audit.KindWouldBlock {
		t.Fatalf("records %+v", recs)
	}
	var ev audit.Evidence
	if err := json.Unmarshal(recs[0].Verdict, &ev); err != nil || ev.Category != "spam" || ev.Outcome != "would_block" || ev.Bank != "TRIAL" {
		t.Errorf("evidence %+v, %v", ev, err)
	}
	a.Delivered(got[0].ID)
	again := &fakeNotifier{}
	New(Config{Audit: l, Matrix: again}).RedeliverPending()
	if r := again.notices(); len(r) != 1 || r[0].ID != got[1].ID || !r[0].WouldBlock || r[0].Category != "spam" {
		t.Fatalf("redelivered %+v", r)
	}
}

// A notice carries the file's own digests, live and redelivered from its
// record, so that later reports of the file join its story; a decision
// reached without the bytes carries none.
func TestNoticeDigests(t *testing.T) {
	l := openAudit(t)
	m := &fakeNotifier{}
	a := New(Config{Audit: l, Matrix: m})
	d := decision(false, mediaproxy.Blocked, "hs/One", "@u:hs")
	d.Digests.Size, d.Digests.SHA256[0], d.Digests.MD5[0] = 3, 0xab, 0xcd
	a.Observe(d)
	a.Observe(decision(false, mediaproxy.Blocked, "hs/Two", "@u:hs"))
	sent := m.notices()
	if len(sent) != 2 || !strings.HasPrefix(sent[0].Digests.SHA256, "ab00") || !strings.HasPrefix(sent[0].Digests.MD5, "cd00") || len(sent[0].Digests.SHA1) != 40 {
		t.Fatalf("live notice digests %+v", sent)
	}
	if sent[1].Digests != (notify.Digests{}) {
		t.Errorf("a decision without bytes has digests %+v", sent[1].Digests)
	}
	again := &fakeNotifier{}
	New(Config{Audit: l, Matrix: again}).RedeliverPending()
	if got := again.notices(); len(got) != 2 || got[0].Digests != sent[0].Digests {
		t.Fatalf("redelivered digests %+v, want %+v", got, sent[0].Digests)
	}
}
