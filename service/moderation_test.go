package service

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/homeserver"
	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
	"github.com/mediaguard/mediaguard/modcmd"
)

// TestModeration: block, unblock, status and lookup act on the proxy's
// memory, the media ledger and the Synapse admin API (a fake: Dendrite
// has no admin API), and every command is on record.
func TestModeration(t *testing.T) {
	dir := t.TempDir()
	listed := []byte("listed bytes, not an image")
	sum := sha256.Sum256(listed)
	bank := filepath.Join(dir, "b.bank")
	if err := os.WriteFile(bank, []byte("sha256 "+hex.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	alog, err := audit.Open(audit.Options{Path: filepath.Join(dir, "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	defer alog.Close()
	store, err := ledger.OpenBolt(filepath.Join(dir, "ledger.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	syn := fakes.NewSynapse(t)
	s, err := New(Config{
		Local:        matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "TEST", Path: bank}}},
		Proxy:        mediaproxy.Config{TempDir: dir, Hashing: mediaproxy.HashingInline},
		Audit:        alog,
		Ledger:       store,
		SynapseAdmin: &homeserver.AdminConfig{Homeserver: syn.URL, AccessToken: syn.AdminToken},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	m := s.Moderation()

	// A clean upload the ledger records, then served on download.
	serve := func(method, path string, body []byte) int {
		w := httptest.NewRecorder()
		s.Proxy().ServeHTTP(w, httptest.NewRequest(method, path, bytes.NewReader(body)), func(w http.ResponseWriter, r *http.Request) error {
			if method == "POST" {
				w.Write([]byte(`{"content_uri":"mxc://hs/clean"}`))
			} else {
				w.Write([]byte("clean bytes"))
			}
			return nil
		})
		return w.Code
	}
	if code := serve("POST", "/_matrix/media/v3/upload", []byte("clean bytes")); code != 200 {
		t.Fatalf("clean upload: %d", code)
	}
	s.book.Flush()
	download := func() int { return serve("GET", "/_matrix/media/v3/download/hs/clean", nil) }
	if code := download(); code != 200 {
		t.Fatalf("clean download: %d", code)
	}

	reply, err := m.Block(ctx, "mxc://hs/clean", "@mod:hs")
	if err != nil || !strings.HasPrefix(reply, "Blocked mxc://hs/clean") || !strings.Contains(reply, "Recorded in the media ledger") || !strings.Contains(reply, "Quarantined") {
		t.Fatalf("block: %q %v", reply, err)
	}
	if code := download(); code != 404 {
		t.Fatalf("download after block: %d", code)
	}
	if r, _, _ := store.Get(ctx, ledger.Key{Server: "hs", ID: "clean"}); r.Verdict != ledger.Blocked || r.Reason != ledger.ManualReasonPrefix+"@mod:hs" {
		t.Fatalf("ledger after block: %v %q", r.Verdict, r.Reason)
	}
	if reply, _ := m.Block(ctx, "mxc://hs/clean", "@mod:hs"); !strings.HasPrefix(reply, "Already blocked") {
		t.Fatalf("second block: %q", reply)
	}
	// A restart forgets the memory; the ledger keeps the block.
	if blocked, reason, ok := s.book.Recall(ctx, ledger.Key{Server: "hs", ID: "clean"}); !blocked || !ok || !ledger.Manual(reason) {
		t.Fatalf("the ledger recalls %v %q %v", blocked, reason, ok)
	}

	reply, err = m.Unblock(ctx, "mxc://hs/clean", "@mod:hs")
	if err != nil || !strings.HasPrefix(reply, "Unblocked mxc://hs/clean") || !strings.Contains(reply, "Quarantine lifted") {
		t.Fatalf("unblock: %q %v", reply, err)
	}
	if code := download(); code != 200 {
		t.Fatalf("download after unblock: %d", code)
	}
	if reply, _ := m.Unblock(ctx, "mxc://hs/clean", "@mod:hs"); !strings.HasPrefix(reply, "Not blocked here") {
		t.Fatalf("second unblock: %q", reply)
	}
	var adminCalls []string
	for _, c := range syn.Calls() {
		if strings.HasPrefix(c.Path, "/_synapse/admin/") {
			adminCalls = append(adminCalls, c.Method+" "+c.Path)
		}
	}
	if strings.Join(adminCalls, "\n") != "POST /_synapse/admin/v1/media/quarantine/hs/clean\nPOST /_synapse/admin/v1/media/unquarantine/hs/clean\nPOST /_synapse/admin/v1/media/unquarantine/hs/clean" {
		t.Errorf("admin calls:\n%s", strings.Join(adminCalls, "\n"))
	}

	// Media never seen: blocked in memory only, and said so.
	if reply, _ := m.Block(ctx, "mxc://hs/never", "@mod:hs"); !strings.Contains(reply, "never seen") {
		t.Fatalf("block of unknown media: %q", reply)
	}
	if _, err := m.Block(ctx, "https://hs/x", "@mod:hs"); err == nil {
		t.Fatal("a URL that is not mxc was blocked")
	}

	hexSum := hex.EncodeToString(sum[:])
	for _, tc := range []struct{ hash, want string }{
		{hexSum, "Listed: bank TEST"},
		{"sha256:" + hexSum, "Matched: sha256 " + hexSum[:16] + "…"},
		{"pdq:" + hexSum, "Not listed"},
		{strings.Repeat("0", 32), "Not listed"},
	} {
		if reply, err := m.Lookup(ctx, tc.hash); err != nil || !strings.Contains(reply, tc.want) || strings.Contains(reply, hexSum[:17]) {
			t.Errorf("lookup %s: %q %v, want %q and never the whole hash", tc.hash, reply, err, tc.want)
		}
	}
	if _, err := m.Lookup(ctx, "md5:abc"); err == nil {
		t.Error("a malformed hash was looked up")
	}

	st, err := m.Status(ctx)
	for _, want := range []string{"Banks: 1 (1 entries)", "• TEST: 1 entries (md5 0, sha1 0, sha256 1", "Remote backends: none", "Requests in the last hour:", "known_blocked 1, known_clean 2, unscannable 1", "Media ledger: 1 media"} {
		if err != nil || !strings.Contains(st, want) {
			t.Errorf("status lacks %q:\n%s", want, st)
		}
	}
	// Without confirmed_bank and allow, the decisions say what is missing.
	if _, err := m.Confirm(ctx, "det-1", "@mod:hs"); err == nil || !strings.Contains(err.Error(), "no confirmed_bank is configured") {
		t.Errorf("confirm without a confirmed bank: %v", err)
	}
	if _, err := m.Dismiss(ctx, "det-1", "@mod:hs"); err == nil {
		t.Error("dismiss without an allowlist succeeded")
	}

	s.recordCommand(modcmd.Record{EventID: "$ev", Moderator: "@mod:hs", Command: "block mxc://hs/clean", Verb: modcmd.VerbBlock, Arg: "mxc://hs/clean", OK: true, Outcome: "Blocked mxc://hs/clean: …"})
	var got []audit.Record
	audit.Read(alog.Path(), time.Time{}, func(r audit.Record) error {
		if r.Action == audit.ActionCommand {
			got = append(got, r)
		}
		return nil
	})
	if len(got) != 1 || got[0].User != "@mod:hs" || got[0].Command != "block mxc://hs/clean" || got[0].Media != "hs/clean" || got[0].Event != "$ev" || !strings.HasPrefix(got[0].Outcome, "ok: Blocked") {
		t.Errorf("audit records of commands: %+v", got)
	}
}

func TestRecent(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	r := newRecent()
	r.now = func() time.Time { return now }
	r.add("clean")
	r.add("blocked")
	now = now.Add(30 * time.Minute)
	r.add("clean")
	if c := r.Counts(); c["clean"] != 2 || c["blocked"] != 1 {
		t.Fatalf("counts %v", c)
	}
	now = now.Add(31 * time.Minute)
	if c := r.Counts(); c["clean"] != 1 || c["blocked"] != 0 {
		t.Fatalf("after an hour: %v", c)
	}
	now = now.Add(2 * time.Hour)
	r.add("refused")
	if c := r.Counts(); len(c) != 1 || c["refused"] != 1 {
		t.Fatalf("a bucket reused after hours: %v", c)
	}
}
