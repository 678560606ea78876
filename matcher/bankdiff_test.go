package matcher

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// changeRecorder collects OnChange calls.
type changeRecorder struct {
	mu  sync.Mutex
	chs []BankChange
}

func (c *changeRecorder) hook(ch BankChange) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.chs = append(c.chs, ch)
}

func (c *changeRecorder) take() []BankChange {
	c.mu.Lock()
	defer c.mu.Unlock()
	chs := c.chs
	c.chs = nil
	return chs
}

// entriesOf lists a bank's entries as "type hex label", sorted.
func entriesOf(b *Bank) []string {
	var out []string
	for k, r := range b.md5 {
		out = append(out, "md5 "+hex.EncodeToString(k[:])+" "+b.label(r))
	}
	for k, r := range b.videoMD5 {
		out = append(out, "video_md5 "+hex.EncodeToString(k[:])+" "+b.label(r))
	}
	for k, r := range b.sha1 {
		out = append(out, "sha1 "+hex.EncodeToString(k[:])+" "+b.label(r))
	}
	for k, r := range b.sha256 {
		out = append(out, "sha256 "+hex.EncodeToString(k[:])+" "+b.label(r))
	}
	if b.pdq != nil {
		for id := range b.pdq.Len() {
			out = append(out, "pdq "+b.pdq.Hash(int32(id)).String()+" "+b.pdqLabel(int32(id)))
		}
	}
	slices.Sort(out)
	for i := range out {
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}

func sortedLines(lines ...string) []string {
	out := slices.Clone(lines)
	slices.Sort(out)
	return out
}

func TestBankChangesOnReload(t *testing.T) {
	base := mustPDQ(t, tPDQ)
	p1, p2, p3 := flip(base, 40).String(), flip(base, 80).String(), flip(base, 120).String()
	tests := []struct {
		name         string
		before       string
		after        string
		added, remov []string // nil: no change reported
	}{{
		name:   "lines added",
		before: "md5 " + tMD5 + " a\npdq " + p1 + " one\n",
		after:  "md5 " + tMD5 + " a\npdq " + p1 + " one\nsha1 " + tSHA1 + " s\npdq " + p2 + " two\n",
		added:  []string{"sha1 " + tSHA1 + " s", "pdq " + p2 + " two"},
	}, {
		name:   "lines removed",
		before: "md5 " + tMD5 + " a\nsha256 " + tSHA256 + "\npdq " + p1 + " one\npdq " + p2 + " two\n",
		after:  "pdq " + p2 + " two\n",
		remov:  []string{"md5 " + tMD5 + " a", "sha256 " + tSHA256, "pdq " + p1 + " one"},
	}, {
		name:   "added and removed; a label change is no change",
		before: "md5 " + tMD5 + " a\nvideo_md5 " + tMD5b + " v\npdq " + p1 + " one\n",
		after:  "md5 " + tMD5 + " relabelled\nvideo_md5 " + tMD5 + " v2\npdq " + p1 + " uno\npdq " + p3 + " three\n",
		added:  []string{"video_md5 " + tMD5 + " v2", "pdq " + p3 + " three"},
		remov:  []string{"video_md5 " + tMD5b + " v"},
	}, {
		name:   "a second copy of a pdq hash",
		before: "pdq " + p1 + " one\n",
		after:  "pdq " + p1 + " one\npdq " + p1 + " again\n",
		added:  []string{"pdq " + p1 + " again"},
	}, {
		name:   "same entries rewritten",
		before: "md5 " + tMD5 + " a\npdq " + p1 + " one\n",
		after:  "# rewritten\npdq " + p1 + " one\nmd5 " + tMD5 + " a\n",
	}, {
		name:   "emptied",
		before: "md5 " + tMD5 + " a\npdq " + p1 + " one\n",
		after:  "",
		remov:  []string{"md5 " + tMD5 + " a", "pdq " + p1 + " one"},
	}, {
		name:   "NCMEC tombstones",
		before: ncmecFixture(),
		after: strings.Replace(ncmecFixture(), "</images>",
			"<deletedImage><id>1001</id></deletedImage></images>", 1),
		remov: []string{"md5 " + tMD5 + " ncmec:1001 A1", "sha1 " + tSHA1 + " ncmec:1001 A1", "pdq " + tPDQ + " ncmec:1001 A1"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pa, pb := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
			if strings.HasPrefix(tc.before, "<?xml") {
				pa = filepath.Join(dir, "a.xml")
			}
			writeFile(t, pa, tc.before)
			writeFile(t, pb, "md5 "+md5hex("other")+"\n")
			var rec changeRecorder
			l := newTestLocal(t, LocalConfig{
				Banks:    []BankConfig{{Name: "A", Path: pa}, {Name: "B", Path: pb}, {Name: "OFF", Path: pb, Disabled: true}},
				OnChange: rec.hook, ReloadInterval: -1,
			})
			fpBefore := l.Fingerprint()
			rewrite(t, pa, tc.after)
			if err := l.Reload(); err != nil {
				t.Fatal(err)
			}
			chs := rec.take()
			if tc.added == nil && tc.remov == nil {
				if len(chs) != 0 {
					t.Fatalf("reported %d changes for the same entries: %+v", len(chs), chs)
				}
				if l.Fingerprint() != fpBefore {
					t.Error("fingerprint changed with the same entries")
				}
				return
			}
			if len(chs) != 1 || chs[0].Bank != "A" {
				t.Fatalf("changes %+v, want one of bank A", chs)
			}
			ch := chs[0]
			if got, want := entriesOf(ch.Added), sortedLines(tc.added...); !slices.Equal(got, want) {
				t.Errorf("added\n %q\nwant\n %q", got, want)
			}
			if got, want := entriesOf(ch.Removed), sortedLines(tc.remov...); !slices.Equal(got, want) {
				t.Errorf("removed\n %q\nwant\n %q", got, want)
			}
			if ch.Fingerprint != l.Fingerprint() || ch.Fingerprint == fpBefore {
				t.Errorf("change fingerprint %q, Local's %q, before %q", ch.Fingerprint, l.Fingerprint(), fpBefore)
			}
			if ch.Added.Name() != "A" || ch.Removed.Name() != "A" {
				t.Errorf("delta banks named %q and %q", ch.Added.Name(), ch.Removed.Name())
			}
			// Nothing changed since: the next reload reports nothing.
			if err := l.Reload(); err != nil {
				t.Fatal(err)
			}
			if chs := rec.take(); len(chs) != 0 {
				t.Errorf("an idle reload reported %+v", chs)
			}
		})
	}
}

// TestBankChangeOncePerChangedBank: of three banks reloaded together, the
// two that changed are each reported once, in configuration order, and
// the one whose file was merely rewritten is not.
func TestBankChangeOncePerChangedBank(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	for _, n := range []string{"a", "b", "c"} {
		p := filepath.Join(dir, n+".txt")
		writeFile(t, p, "md5 "+md5hex(n)+"\n")
		paths = append(paths, p)
	}
	var rec changeRecorder
	l := newTestLocal(t, LocalConfig{
		Banks:    []BankConfig{{Name: "A", Path: paths[0]}, {Name: "B", Path: paths[1]}, {Name: "C", Path: paths[2]}},
		OnChange: rec.hook, ReloadInterval: -1,
	})
	before := l.Fingerprint()
	rewrite(t, paths[0], "md5 "+md5hex("a")+"\nmd5 "+md5hex("a2")+"\n")
	rewrite(t, paths[1], "md5 "+md5hex("b")+"\n")
	rewrite(t, paths[2], "")
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	chs := rec.take()
	var names []string
	for _, ch := range chs {
		names = append(names, fmt.Sprintf("%s+%d-%d", ch.Bank, ch.Added.Counts().Total(), ch.Removed.Counts().Total()))
	}
	if want := []string{"A+1-0", "C+0-1"}; !slices.Equal(names, want) {
		t.Errorf("changes %q, want %q", names, want)
	}
	// One reload, two changes: both from the same banks to the same, and
	// only the second closes the reload (a retro-scan must see both).
	for i, ch := range chs {
		if ch.From != before || ch.Fingerprint != l.Fingerprint() || ch.Last != (i == len(chs)-1) {
			t.Errorf("change %d: from %q to %q last %v; want from %q to %q", i, ch.From, ch.Fingerprint, ch.Last, before, l.Fingerprint())
		}
	}
	if g := Generation(); g%2 != 0 {
		t.Errorf("generation %d is odd after the reload: odd means a reload is publishing", g)
	}
}

// TestBankChangeHookPanics: a panicking hook is logged, and reloads and
// lookups go on.
func TestBankChangeHookPanics(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	writeFile(t, p, "md5 "+tMD5+"\n")
	calls := 0
	l := newTestLocal(t, LocalConfig{
		Banks:    []BankConfig{{Name: "A", Path: p}},
		OnChange: func(BankChange) { calls++; panic("boom") }, ReloadInterval: -1,
	})
	rewrite(t, p, "md5 "+tMD5b+"\n")
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if calls != 1 || !match(t, l, Query{Has: HasMD5, MD5: digest16(t, tMD5b)}).Match {
		t.Errorf("calls %d, or the new entry does not match", calls)
	}
}

// TestDiffBanksEnabledDisabled: across two configurations a bank enabled
// is all added, one disabled all removed.
func TestDiffBanksEnabledDisabled(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a.txt")
	writeFile(t, p, "md5 "+tMD5+" x\npdq "+tPDQ+" y\n")
	off := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "A", Path: p, Disabled: true}}})
	on := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "A", Path: p}}})
	if off.Bank("A") != nil || on.Bank("A") == nil || on.Bank("NOPE") != nil {
		t.Fatal("Bank returns a disabled or unknown bank, or not an enabled one")
	}
	want := sortedLines("md5 "+tMD5+" x", "pdq "+tPDQ+" y")
	enabled := DiffBanks(off.Bank("A"), on.Bank("A"))
	if got := entriesOf(enabled.Added); enabled.Bank != "A" || !slices.Equal(got, want) || enabled.Removed.Counts().Total() != 0 {
		t.Errorf("enabled: %s added %q removed %+v", enabled.Bank, got, enabled.Removed.Counts())
	}
	disabled := DiffBanks(on.Bank("A"), off.Bank("A"))
	if got := entriesOf(disabled.Removed); disabled.Bank != "A" || !slices.Equal(got, want) || disabled.Added.Counts().Total() != 0 {
		t.Errorf("disabled: %s removed %q added %+v", disabled.Bank, got, disabled.Added.Counts())
	}
	if off.Fingerprint() == on.Fingerprint() {
		t.Error("fingerprint unchanged by enabling a bank")
	}
	if !DiffBanks(nil, nil).Empty() || !DiffBanks(on.Bank("A"), on.Bank("A")).Empty() {
		t.Error("no change is not empty")
	}
}

// TestDiffBanksPDQRandom checks the PDQ diff against a map count on banks
// big enough for the radix sort, with copies and first-word ties.
func TestDiffBanksPDQRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var old []pdq.Hash
	for range 3000 {
		h := randPDQ(r)
		switch r.IntN(10) {
		case 0:
			if len(old) > 0 {
				h = old[r.IntN(len(old))] // a copy
			}
		case 1:
			if len(old) > 0 {
				h = old[r.IntN(len(old))]
				h[3] ^= 1 // same first word
			}
		}
		old = append(old, h)
	}
	var next []pdq.Hash
	for _, h := range old {
		if r.IntN(8) > 0 {
			next = append(next, h)
		}
		if r.IntN(8) == 0 {
			h[2]++
			next = append(next, h)
		}
	}
	bank := func(hs []pdq.Hash) *Bank {
		var sb strings.Builder
		for _, h := range hs {
			sb.WriteString("pdq " + h.String() + "\n")
		}
		b, err := ParseBank("P", "p.txt", strings.NewReader(sb.String()), FormatText)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ob, nb := bank(old), bank(next)
	ch := DiffBanks(ob, nb)
	count := func(hs []pdq.Hash) map[pdq.Hash]int {
		m := map[pdq.Hash]int{}
		for _, h := range hs {
			m[h]++
		}
		return m
	}
	oc, nc := count(old), count(next)
	wantAdd, wantRem := map[pdq.Hash]int{}, map[pdq.Hash]int{}
	for h, n := range nc {
		if n > oc[h] {
			wantAdd[h] = n - oc[h]
		}
	}
	for h, n := range oc {
		if n > nc[h] {
			wantRem[h] = n - nc[h]
		}
	}
	got := func(b *Bank) map[pdq.Hash]int {
		m := map[pdq.Hash]int{}
		for id := range b.pdq.Len() {
			m[b.pdq.Hash(int32(id))]++
		}
		return m
	}
	if g := got(ch.Added); !mapsEqual(g, wantAdd) {
		t.Errorf("added %d distinct, want %d", len(g), len(wantAdd))
	}
	if g := got(ch.Removed); !mapsEqual(g, wantRem) {
		t.Errorf("removed %d distinct, want %d", len(g), len(wantRem))
	}
}

func mapsEqual(a, b map[pdq.Hash]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		writeFile(t, p, content)
		return p
	}
	lines := []string{"md5 " + tMD5 + " a", "sha1 " + tSHA1, "sha256 " + tSHA256 + " c", "video_md5 " + tMD5b, "pdq " + tPDQ + " p", "pdq " + tPDQb}
	reversed := slices.Clone(lines)
	slices.Reverse(reversed)
	p1 := write("one.txt", strings.Join(lines, "\n"))
	p2 := write("two.txt", "# same entries, other order, other labels\n"+strings.ReplaceAll(strings.Join(reversed, "\n"), " a", " other"))
	p3 := write("three.csv", "type,hash,label\n"+strings.Join(func() []string {
		var out []string
		for _, l := range lines {
			f := strings.Fields(l)
			out = append(out, f[0]+","+f[1])
		}
		return out
	}(), "\n"))
	fp := func(cfg LocalConfig) string { return newTestLocal(t, cfg).Fingerprint() }
	one := func(p string) LocalConfig { return LocalConfig{Banks: []BankConfig{{Name: "A", Path: p}}} }
	base := fp(one(p1))
	if len(base) != 32 {
		t.Errorf("fingerprint %q", base)
	}
	for _, p := range []string{p1, p2, p3} {
		if got := fp(one(p)); got != base {
			t.Errorf("%s: fingerprint %s, want %s", filepath.Base(p), got, base)
		}
	}
	q := 60
	differ := map[string]LocalConfig{
		"renamed":         {Banks: []BankConfig{{Name: "B", Path: p1}}},
		"threshold":       {Banks: one(p1).Banks, PDQThreshold: 30},
		"quality":         {Banks: one(p1).Banks, MinPDQQuality: &q},
		"dihedral":        {Banks: one(p1).Banks, Dihedral: true},
		"entry removed":   one(write("less.txt", strings.Join(lines[1:], "\n"))),
		"entry added":     one(write("more.txt", strings.Join(lines, "\n")+"\nmd5 "+md5hex("x"))),
		"pdq copy":        one(write("copy.txt", strings.Join(lines, "\n")+"\npdq "+tPDQ)),
		"type changed":    one(write("type.txt", strings.Replace(strings.Join(lines, "\n"), "video_md5 "+tMD5b, "md5 "+tMD5b, 1))),
		"no banks":        {},
		"second bank":     {Banks: []BankConfig{{Name: "A", Path: p1}, {Name: "B", Path: p2}}},
		"banks reordered": {Banks: []BankConfig{{Name: "B", Path: p2}, {Name: "A", Path: p1}}},
	}
	seen := map[string]string{base: "base"}
	for name, cfg := range differ {
		got := fp(cfg)
		if other, dup := seen[got]; dup {
			t.Errorf("%s: fingerprint equals %s's", name, other)
		}
		seen[got] = name
	}
}

// BenchmarkDiffBanks diffs a bank of a million entries against the same
// plus a thousand (and minus a thousand): the PDQ diff, and the exact one
// over a million md5 entries.
func BenchmarkDiffBanks(b *testing.B) {
	const n, k = 1_000_000, 1_000
	for _, typ := range []string{"pdq", "md5"} {
		b.Run(typ+"1M+1k-1k", func(b *testing.B) {
			r := rand.New(rand.NewPCG(8, 9))
			var bo, bn bankBuilder
			line := func() []byte {
				if typ == "pdq" {
					return []byte(randPDQ(r).String())
				}
				var d [16]byte
				for i := range d {
					d[i] = byte(r.Uint32())
				}
				return []byte(hex.EncodeToString(d[:]))
			}
			kd := map[string]kind{"pdq": kPDQ, "md5": kMD5}[typ]
			for i := range n {
				h := line()
				if i >= k {
					bo.add(kd, h, nil)
				}
				bn.add(kd, h, nil)
			}
			for range k {
				bo.add(kd, line(), nil)
			}
			old, new := bo.build("B", "old"), bn.build("B", "new")
			b.ResetTimer()
			for b.Loop() {
				ch := DiffBanks(old, new)
				if ch.Added.Counts().Total() != k || ch.Removed.Counts().Total() != k {
					b.Fatalf("added %+v removed %+v", ch.Added.Counts(), ch.Removed.Counts())
				}
			}
		})
	}
}
