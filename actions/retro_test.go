package actions

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/notify"
)

func TestRetroBlockRecordsQuarantinesAndNotifiesOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	log, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	room, hook, admin := &fakeNotifier{}, &fakeNotifier{}, &fakeAdmin{}
	a := New(Config{Audit: log, Matrix: room, Webhook: hook, Admin: admin})
	first := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := ledger.Record{Key: ledger.Key{Server: "example.org", ID: "abcDEF"}, Uploader: "@alice:example.org", FirstSeen: first,
		Query: matcher.Query{Has: matcher.HasSHA256, SHA256: [32]byte{1, 2, 3}}}
	v := matcher.Verdict{Match: true, Bank: "NCMEC", HashType: matcher.SHA256, MatchedHash: strings.Repeat("ab", 32), Reason: "sha256 in bank NCMEC"}
	a.RetroBlock(rec, v)
	a.wg.Wait()

	if got := admin.calls; len(got) != 1 || got[0] != "quarantine example.org/abcDEF" {
		t.Fatalf("admin calls = %v, want one quarantine of the stored media", got)
	}
	for name, n := range map[string]*fakeNotifier{"room": room, "webhook": hook} {
		got := n.notices()
		if len(got) != 1 {
			t.Fatalf("%s notices = %d, want 1", name, len(got))
		}
		d := got[0]
		if !d.Retro || d.MXC != "mxc://example.org/abcDEF" || d.User != "@alice:example.org" || !d.FirstSeen.Equal(first) || d.Bank != "NCMEC" {
			t.Errorf("%s notice = %+v", name, d)
		}
		body, _ := notify.Format(d)
		for _, want := range []string{"stored media now matches NCMEC", "mxc://example.org/abcDEF", "@alice:example.org", "First seen: 2026-03-01T12:00:00Z", "retro-scan"} {
			if !strings.Contains(body, want) {
				t.Errorf("%s notice body lacks %q:\n%s", name, want, body)
			}
		}
	}

	var kinds []string
	var ev audit.Evidence
	if err := audit.Read(path, time.Time{}, func(r audit.Record) error {
		kinds = append(kinds, r.Kind)
		if r.Kind == audit.KindRetroBlock {
			if r.Media != "example.org/abcDEF" || r.User != "@alice:example.org" || r.Digests["sha256"] == "" {
				t.Errorf("retro_block record = %+v", r)
			}
			json.Unmarshal(r.Verdict, &ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(kinds, ",") != "retro_block,action" {
		t.Errorf("audit kinds = %v, want retro_block then the quarantine action", kinds)
	}
	if ev.Bank != "NCMEC" || !ev.FirstSeen.Equal(first) {
		t.Errorf("retro_block evidence = %+v", ev)
	}
	// Undelivered, it is pending like any block, and redelivered as a
	// retro notice.
	pending, err := audit.Pending(path)
	if err != nil || len(pending) != 1 || !detectionFromRecord(pending[0]).Retro {
		t.Fatalf("pending = %v (%v), want the retro_block, redelivered as a retro notice", pending, err)
	}
}

func TestStoredMatchOfContentOnlyMedia(t *testing.T) {
	room, admin := &fakeNotifier{}, &fakeAdmin{}
	a := New(Config{Matrix: room, Admin: admin})
	rec := ledger.Record{Key: ledger.Key{Server: "other.example", ID: ledger.ContentOnlyPrefix + "abcd"}}
	a.StoredMatch(rec, matcher.Verdict{Match: true, Bank: "NCMEC", HashType: matcher.PDQ, Distance: 4}, ByBackfill)
	a.Wait()
	if len(admin.calls) != 0 {
		t.Fatalf("quarantined %v: a filesystem ID names nothing the admin API knows", admin.calls)
	}
	got := room.notices()
	if len(got) != 1 || got[0].MXC != "" || !strings.Contains(got[0].Action, "media ID is unknown") {
		t.Fatalf("notices = %+v, want one naming no mxc and saying why it was not quarantined", got)
	}
	if body, _ := notify.Format(got[0]); !strings.Contains(body, "backfill of the homeserver's media store") {
		t.Errorf("notice does not say the backfill found it:\n%s", body)
	}
}
