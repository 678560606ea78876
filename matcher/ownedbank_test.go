package matcher

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sha(c byte) string { return strings.Repeat(string([]byte{c}), 64) }

func TestOwnedBankRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "learned.bank")
	writes := 0
	b, err := OpenOwnedBank(OwnedBankConfig{Path: path, Writer: "a test", OnWrite: func() { writes++ }})
	if err != nil {
		t.Fatal(err)
	}
	// Created at once, loadable by a Local, matching nothing.
	local, err := NewLocal(LocalConfig{Banks: []BankConfig{{Name: "LEARNED", Path: path}}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer local.Close()
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
	a, c := OwnedEntry{SHA256, sha('a')}, OwnedEntry{SHA256, sha('c')}
	shared := OwnedEntry{PDQ, strings.Repeat("f0", 32)}
	if err := b.Put("media one", []OwnedEntry{a, shared, a}); err != nil {
		t.Fatal(err)
	}
	if err := b.Put("media two", []OwnedEntry{{SHA256, strings.ToUpper(sha('c'))}, shared}); err != nil {
		t.Fatal(err)
	}
	if wrote, err := b.Commit(); !wrote || err != nil || writes != 1 {
		t.Fatalf("commit: %v %v, %d writes", wrote, err, writes)
	}
	if wrote, _ := b.Commit(); wrote || writes != 1 {
		t.Fatal("a commit without changes wrote")
	}
	matches := func(e OwnedEntry) string {
		local.Reload()
		var q Query
		q.Has = HasSHA256
		copy(q.SHA256[:], mustHex(t, e.Hash))
		v, _ := local.Match(context.Background(), q)
		if !v.Match {
			return ""
		}
		return v.Evidence[0].Label
	}
	if got := matches(c); got != "media two" {
		t.Fatalf("c matched %q (upper-case hex is normalised)", got)
	}
	if got := b.Entries("media one"); len(got) != 2 {
		t.Fatalf("media one holds %v: a repeated entry must be kept once", got)
	}
	if k, ok := b.KeyWith(shared); !ok || k != "media one" {
		t.Fatalf("KeyWith: %q %v", k, ok)
	}

	// Reopened: the same groups.
	b2, err := OpenOwnedBank(OwnedBankConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if b2.Len() != 2 || b2.EntryCount() != 4 || !b2.Has("media two") {
		t.Fatalf("reopened: %d keys, %d entries", b2.Len(), b2.EntryCount())
	}
	// Removing one key removes its entries only: the entry media two
	// also holds stays in the file.
	if !b2.Remove("media one") || b2.Remove("media one") {
		t.Fatal("Remove")
	}
	if _, err := b2.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := matches(a); got != "" {
		t.Fatalf("a still matches %q after its key was removed", got)
	}
	content, _ := os.ReadFile(path)
	if !strings.Contains(string(content), "pdq "+shared.Hash+" media two") || strings.Contains(string(content), "media one") {
		t.Fatalf("file after remove:\n%s", content)
	}
	if !strings.HasPrefix(string(content), OwnedHeader+": written by mediaguard") {
		t.Fatalf("header: %q", strings.SplitN(string(content), "\n", 2)[0])
	}
}

func TestOwnedBankRefuses(t *testing.T) {
	dir := t.TempDir()
	operators := filepath.Join(dir, "operator.bank")
	os.WriteFile(operators, []byte("sha256 "+sha('a')+" hand-made\n"), 0o600)
	if _, err := OpenOwnedBank(OwnedBankConfig{Path: operators}); err == nil || !strings.Contains(err.Error(), "not written by mediaguard") {
		t.Fatalf("an operator's bank: %v", err)
	}
	if b, _ := os.ReadFile(operators); string(b) != "sha256 "+sha('a')+" hand-made\n" {
		t.Fatal("an operator's bank was changed")
	}
	empty := filepath.Join(dir, "empty.bank")
	os.WriteFile(empty, nil, 0o600)
	if _, err := OpenOwnedBank(OwnedBankConfig{Path: empty}); err != nil {
		t.Fatalf("an empty file is adopted: %v", err)
	}
	broken := filepath.Join(dir, "broken.bank")
	os.WriteFile(broken, []byte(OwnedHeader+"\nmd6 "+sha('a')+" x\n"), 0o600)
	if _, err := OpenOwnedBank(OwnedBankConfig{Path: broken}); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("a broken line: %v", err)
	}
	b, err := OpenOwnedBank(OwnedBankConfig{Path: filepath.Join(dir, "new.bank")})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key     string
		entries []OwnedEntry
	}{
		{"", []OwnedEntry{{SHA256, sha('a')}}},
		{"has # hash", []OwnedEntry{{SHA256, sha('a')}}},
		{" padded", []OwnedEntry{{SHA256, sha('a')}}},
		{"new\nline", []OwnedEntry{{SHA256, sha('a')}}},
		{"ok", nil},
		{"ok", []OwnedEntry{{SHA256, "abc"}}},
		{"ok", []OwnedEntry{{PDQ, strings.Repeat("0", 64)}}},
		{"ok", []OwnedEntry{{"md6", sha('a')}}},
	} {
		if err := b.Put(tc.key, tc.entries); err == nil {
			t.Errorf("Put(%q, %v) accepted", tc.key, tc.entries)
		}
	}
	if b.Len() != 0 {
		t.Fatal("a refused Put left entries")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
