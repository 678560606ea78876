package matcher

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// flip returns h with its first n bits inverted: a hash at distance n.
func flip(h pdq.Hash, n int) pdq.Hash {
	for k := 0; k < n; k++ {
		h[k/64] ^= 1 << (k % 64)
	}
	return h
}

// flipRange returns h with bits from..from+n-1 inverted.
func flipRange(h pdq.Hash, from, n int) pdq.Hash {
	for k := from; k < from+n; k++ {
		h[k/64] ^= 1 << (k % 64)
	}
	return h
}

func randPDQ(r *rand.Rand) pdq.Hash {
	return pdq.Hash{r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()}
}

func digest16(t testing.TB, s string) (d [16]byte) {
	t.Helper()
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		t.Fatal(err)
	}
	return d
}

func digest20(t testing.TB, s string) (d [20]byte) {
	t.Helper()
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		t.Fatal(err)
	}
	return d
}

func digest32(t testing.TB, s string) (d [32]byte) {
	t.Helper()
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		t.Fatal(err)
	}
	return d
}

func newTestLocal(t *testing.T, cfg LocalConfig) *Local {
	t.Helper()
	l, err := NewLocal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func match(t testing.TB, l *Local, q Query) Verdict {
	t.Helper()
	v, err := l.Match(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestLocalMatch(t *testing.T) {
	dir := t.TempDir()
	base := mustPDQ(t, tPDQ)
	bankA := filepath.Join(dir, "a.txt")
	writeFile(t, bankA, strings.Join([]string{
		"md5 " + tMD5 + " case-1",
		"video_md5 " + tMD5b + " vid-2",
		"sha1 " + tSHA1,
		"sha256 " + tSHA256 + " case-3",
		"pdq " + flip(base, 4).String() + " near",
		"pdq " + flip(base, 10).String() + " far",
	}, "\n"))
	bankB := filepath.Join(dir, "b.csv")
	writeFile(t, bankB, "type,hash,label\nsha256,"+tSHA256+",in-b\n")
	log, logs := testkit.ObserveLogs()
	l := newTestLocal(t, LocalConfig{
		Banks:  []BankConfig{{Name: "TEST", Path: bankA}, {Name: "OTHER_2", Path: bankB}},
		Logger: log,
	})
	if testkit.LogCount(logs, "bank loaded") == 0 {
		t.Errorf("no load log: %q", testkit.LogLines(logs))
	}

	tests := []struct {
		name       string
		q          Query
		match      bool
		bank       string
		typ        HashType
		hash       string
		dist       int
		conf       float64
		reason     string
		nEvidence  int
		notes      string
		evidence1  string // bank:type of the second evidence, if any
		dihedral   string
		matchLabel string
	}{
		{name: "nothing", q: Query{Has: HasMD5 | HasSHA1 | HasSHA256, MD5: digest16(t, md5hex("zz"))}},
		{
			name: "md5", q: Query{Has: HasMD5, MD5: digest16(t, tMD5)},
			match: true, bank: "TEST", typ: MD5, hash: tMD5, conf: 1, reason: "md5 matches bank TEST (case-1)", nEvidence: 1, matchLabel: "case-1",
		},
		{
			name: "md5 against video_md5", q: Query{Has: HasMD5, MD5: digest16(t, tMD5b), Kind: KindVideo},
			match: true, bank: "TEST", typ: VideoMD5, hash: tMD5b, conf: 1, reason: "video_md5 matches bank TEST (vid-2)", nEvidence: 1,
		},
		{
			name: "md5 bit not set", q: Query{Has: HasSHA1, MD5: digest16(t, tMD5)},
		},
		{
			name: "sha1 without label", q: Query{Has: HasSHA1, SHA1: digest20(t, tSHA1)},
			match: true, bank: "TEST", typ: SHA1, hash: tSHA1, conf: 1, reason: "sha1 matches bank TEST", nEvidence: 1,
		},
		{
			name: "sha256 in two banks, config order", q: Query{Has: HasSHA256, SHA256: digest32(t, tSHA256)},
			match: true, bank: "TEST", typ: SHA256, hash: tSHA256, conf: 1, reason: "sha256 matches bank TEST (case-3)", nEvidence: 2, evidence1: "OTHER_2:sha256",
		},
		{
			name: "pdq near, far second", q: Query{Has: HasPDQ, PDQ: base, PDQQuality: 100},
			match: true, bank: "TEST", typ: PDQ, hash: flip(base, 4).String(), dist: 4, conf: PDQConfidence(4),
			reason: "pdq within distance 4 of bank TEST entry (near)", nEvidence: 2, evidence1: "TEST:pdq",
		},
		{
			name: "exact beats pdq", q: Query{Has: HasPDQ | HasSHA1, PDQ: flip(base, 4), PDQQuality: 80, SHA1: digest20(t, tSHA1)},
			match: true, bank: "TEST", typ: SHA1, hash: tSHA1, conf: 1, reason: "sha1 matches bank TEST", nEvidence: 3, evidence1: "TEST:pdq",
		},
		{
			name: "pdq at threshold", q: Query{Has: HasPDQ, PDQ: flipRange(flip(base, 4), 100, DefaultPDQThreshold), PDQQuality: 50},
			match: true, typ: PDQ, bank: "TEST", hash: flip(base, 4).String(), dist: DefaultPDQThreshold, conf: PDQConfidence(DefaultPDQThreshold),
			reason: "pdq within distance 31 of bank TEST entry (near)", nEvidence: 1,
		},
		{
			name: "pdq beyond threshold", q: Query{Has: HasPDQ, PDQ: flipRange(flip(base, 4), 100, DefaultPDQThreshold+1), PDQQuality: 50},
		},
		{
			name: "low quality note, exact still matched", q: Query{Has: HasPDQ | HasMD5, PDQ: base, PDQQuality: 49, MD5: digest16(t, tMD5)},
			match: true, bank: "TEST", typ: MD5, hash: tMD5, conf: 1, reason: "md5 matches bank TEST (case-1)", nEvidence: 1,
			notes: "pdq not matched: quality 49 is below the minimum 50",
		},
		{
			name: "zero pdq note", q: Query{Has: HasPDQ, PDQQuality: 100},
			notes: "pdq not matched: the hash is all zeros",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := match(t, l, tt.q)
			if v.Match != tt.match || v.Bank != tt.bank || v.HashType != tt.typ || v.MatchedHash != tt.hash ||
				v.Distance != tt.dist || v.Confidence != tt.conf || v.Reason != tt.reason {
				t.Errorf("verdict = %+v\nwant match=%v bank=%s type=%s hash=%s dist=%d conf=%v reason=%q",
					v, tt.match, tt.bank, tt.typ, tt.hash, tt.dist, tt.conf, tt.reason)
			}
			if len(v.Evidence) != tt.nEvidence {
				t.Fatalf("evidence = %+v, want %d", v.Evidence, tt.nEvidence)
			}
			if tt.match {
				e := v.Evidence[0]
				if e.Source != "local:"+tt.bank || e.Bank != tt.bank || e.Hash != tt.hash || v.Source != e.Source {
					t.Errorf("best evidence = %+v", e)
				}
				if tt.matchLabel != "" && e.Label != tt.matchLabel {
					t.Errorf("label = %q, want %q", e.Label, tt.matchLabel)
				}
			}
			if tt.evidence1 != "" {
				if got := v.Evidence[1].Bank + ":" + string(v.Evidence[1].HashType); got != tt.evidence1 {
					t.Errorf("second evidence = %s, want %s", got, tt.evidence1)
				}
			}
			if tt.notes == "" && len(v.Notes) != 0 || tt.notes != "" && (len(v.Notes) != 1 || !strings.Contains(v.Notes[0], tt.notes)) {
				t.Errorf("notes = %q, want %q", v.Notes, tt.notes)
			}
		})
	}
	if want := (Counts{MD5: 1, VideoMD5: 1, SHA1: 1, SHA256: 2, PDQ: 2}); l.Stats() != want {
		t.Errorf("Stats = %+v, want %+v", l.Stats(), want)
	}
}

func TestLocalConfidence(t *testing.T) {
	for _, tc := range []struct {
		d    int
		want float64
	}{{0, 1}, {4, 0.9375}, {16, 0.75}, {31, 33.0 / 64}} {
		dir := t.TempDir()
		base := mustPDQ(t, tPDQ)
		p := filepath.Join(dir, "b.txt")
		writeFile(t, p, "pdq "+flip(base, tc.d).String()+"\n")
		l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "C", Path: p}}})
		v := match(t, l, Query{Has: HasPDQ, PDQ: base, PDQQuality: 90})
		if !v.Match || v.Distance != tc.d || v.Confidence != tc.want {
			t.Errorf("d=%d: match=%v distance=%d confidence=%v, want %v", tc.d, v.Match, v.Distance, v.Confidence, tc.want)
		}
	}
}

func TestLocalThresholdAndQualityConfig(t *testing.T) {
	dir := t.TempDir()
	base := mustPDQ(t, tPDQ)
	p := filepath.Join(dir, "b.txt")
	writeFile(t, p, "pdq "+flip(base, 10).String()+"\n")
	zero := 0
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "T", Path: p}}, PDQThreshold: 8, MinPDQQuality: &zero})
	if v := match(t, l, Query{Has: HasPDQ, PDQ: base, PDQQuality: 0}); v.Match || len(v.Notes) != 0 {
		t.Errorf("threshold 8 matched distance 10, or quality 0 refused: %+v", v)
	}
	if v := match(t, l, Query{Has: HasPDQ, PDQ: flip(base, 3), PDQQuality: 0}); !v.Match || v.Distance != 7 {
		t.Errorf("explicit minimum quality 0 not honoured: %+v", v)
	}
	for _, cfg := range []LocalConfig{
		{PDQThreshold: MaxPDQThreshold + 1},
		{PDQThreshold: -1},
		{MinPDQQuality: func() *int { q := 101; return &q }()},
	} {
		if _, err := NewLocal(cfg); err == nil {
			t.Errorf("NewLocal(%+v) accepted", cfg)
		}
	}
}

func TestLocalConfigErrors(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.txt")
	writeFile(t, good, "md5 "+tMD5+"\n")
	bad := filepath.Join(dir, "bad.txt")
	writeFile(t, bad, "nonsense\n")
	tests := []struct {
		name  string
		banks []BankConfig
		want  string
	}{
		{"lowercase name", []BankConfig{{Name: "test", Path: good}}, `bank name "test" is invalid`},
		{"leading digit", []BankConfig{{Name: "1BANK", Path: good}}, "is invalid"},
		{"dash", []BankConfig{{Name: "A-B", Path: good}}, "is invalid"},
		{"empty name", []BankConfig{{Path: good}}, "is invalid"},
		{"duplicate", []BankConfig{{Name: "A", Path: good}, {Name: "A", Path: good}}, "configured twice"},
		{"no path", []BankConfig{{Name: "A"}}, "has no path"},
		{"missing file", []BankConfig{{Name: "A", Path: filepath.Join(dir, "nope.txt")}}, "nope.txt"},
		{"garbage file", []BankConfig{{Name: "A", Path: good}, {Name: "B", Path: bad}}, "loading bank B: " + bad},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewLocal(LocalConfig{Banks: tt.banks})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
	for _, n := range []string{"A", "_", "HMA_BANK_2", "Z9"} {
		if !ValidBankName(n) {
			t.Errorf("ValidBankName(%q) = false", n)
		}
	}
}

func TestLocalDisabledBankNotConsulted(t *testing.T) {
	dir := t.TempDir()
	on := filepath.Join(dir, "on.txt")
	writeFile(t, on, "sha1 "+tSHA1+"\n")
	off := filepath.Join(dir, "off.txt")
	writeFile(t, off, "md5 "+tMD5+"\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{
		{Name: "ON", Path: on},
		{Name: "OFF", Path: off, Disabled: true},
		// A disabled bank is not even read, so a missing file is fine.
		{Name: "GONE", Path: filepath.Join(dir, "missing.txt"), Disabled: true},
	}})
	if v := match(t, l, Query{Has: HasMD5, MD5: digest16(t, tMD5)}); v.Match {
		t.Errorf("disabled bank matched: %+v", v)
	}
	if v := match(t, l, Query{Has: HasSHA1, SHA1: digest20(t, tSHA1)}); !v.Match || v.Bank != "ON" {
		t.Errorf("enabled bank did not match: %+v", v)
	}
	st := l.Status()
	if len(st) != 3 || !st[0].Enabled || st[1].Enabled || st[2].Enabled || st[1].Counts.Total() != 0 || st[0].Counts.SHA1 != 1 {
		t.Errorf("status = %+v", st)
	}
	if err := l.Reload(); err != nil {
		t.Errorf("Reload consulted a disabled bank: %v", err)
	}
	if l.Problems("ON") != nil || l.Problems("OFF") != nil || l.Problems("NOPE") != nil {
		t.Error("problems reported for a clean, a disabled or an unknown bank")
	}
}

// Problems names the entries a bank's load skipped, for operators.
func TestLocalProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "b.txt")
	writeFile(t, path, "md5 "+tMD5+"\nmd5 nothex\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "B", Path: path}}})
	ps := l.Problems("B")
	if len(ps) != 1 || ps[0].Line != 2 || l.Status()[0].Problems != 1 {
		t.Fatalf("problems %+v, status %+v", ps, l.Status())
	}
}

func TestLocalDihedral(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var variants [8]pdq.Hash
	for i := range variants {
		variants[i] = randPDQ(r)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "b.txt")
	// The bank holds the rotate180 form of the query image, and a near
	// copy of its flipX form.
	writeFile(t, p, "pdq "+variants[2].String()+" rotated\npdq "+flip(variants[4], 3).String()+" flipped\n")
	q := Query{Has: HasPDQ, PDQ: variants[0], PDQQuality: 100, Dihedral: variants[:]}
	for _, on := range []bool{false, true} {
		l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "D", Path: p}}, Dihedral: on})
		v := match(t, l, q)
		if !on {
			if v.Match {
				t.Errorf("dihedral off matched: %+v", v)
			}
			continue
		}
		if !v.Match || len(v.Evidence) != 2 {
			t.Fatalf("dihedral on: %+v", v)
		}
		e0, e1 := v.Evidence[0], v.Evidence[1]
		if e0.Dihedral != "rotate180" || e0.Distance != 0 || e0.Label != "rotated" ||
			e1.Dihedral != "flipX" || e1.Distance != 3 || e1.Label != "flipped" {
			t.Errorf("evidence = %+v", v.Evidence)
		}
		if v.Reason != "pdq (rotate180 variant) within distance 0 of bank D entry (rotated)" {
			t.Errorf("reason = %q", v.Reason)
		}
		// Without the variants in the query only the original is searched.
		if v := match(t, l, Query{Has: HasPDQ, PDQ: variants[0], PDQQuality: 100}); v.Match {
			t.Errorf("matched without variants: %+v", v)
		}
	}
}

func TestLocalDihedralOneEntryOnce(t *testing.T) {
	// Two variants near the same entry: it is reported once, closest first.
	r := rand.New(rand.NewPCG(5, 6))
	base := randPDQ(r)
	var variants [8]pdq.Hash
	for i := range variants {
		variants[i] = randPDQ(r)
	}
	variants[0] = flip(base, 5)
	variants[3] = flip(base, 2)
	dir := t.TempDir()
	p := filepath.Join(dir, "b.txt")
	writeFile(t, p, "pdq "+base.String()+"\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "D", Path: p}}, Dihedral: true})
	v := match(t, l, Query{Has: HasPDQ, PDQ: variants[0], PDQQuality: 100, Dihedral: variants[:]})
	if len(v.Evidence) != 1 || v.Distance != 2 || v.Evidence[0].Dihedral != "rotate270" {
		t.Errorf("verdict = %+v", v)
	}
}

func TestLocalEvidenceCap(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	base := randPDQ(r)
	var sb strings.Builder
	for i := 0; i < 500; i++ {
		// Distances 1..20 in a scrambled order.
		h := base
		d := 1 + (i*7)%20
		for _, k := range r.Perm(256)[:d] {
			h[k/64] ^= 1 << (k % 64)
		}
		fmt.Fprintf(&sb, "pdq %s e%d\n", h, i)
	}
	sb.WriteString("md5 " + tMD5 + "\n")
	dir := t.TempDir()
	p := filepath.Join(dir, "b.txt")
	writeFile(t, p, sb.String())
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "CAP", Path: p}}})
	v := match(t, l, Query{Has: HasPDQ | HasMD5, PDQ: base, PDQQuality: 100, MD5: digest16(t, tMD5)})
	if len(v.Evidence) != maxEvidence {
		t.Fatalf("evidence = %d, want %d", len(v.Evidence), maxEvidence)
	}
	if v.Evidence[0].HashType != MD5 {
		t.Errorf("exact not first: %+v", v.Evidence[0])
	}
	for i := 2; i < len(v.Evidence); i++ {
		if v.Evidence[i].Distance < v.Evidence[i-1].Distance {
			t.Errorf("evidence not sorted at %d: %d < %d", i, v.Evidence[i].Distance, v.Evidence[i-1].Distance)
		}
	}
	if v.Evidence[1].Distance != 1 {
		t.Errorf("closest pdq = %d, want 1", v.Evidence[1].Distance)
	}
}

// rewrite replaces path atomically, as bank publishers should.
func rewrite(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestLocalHotReload(t *testing.T) {
	if testing.Short() {
		// Still quick (a few seconds), but it is bound to real time.
		t.Log("running the 2s hot-reload bound in -short too")
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "bank.txt")
	writeFile(t, p, "md5 "+tMD5+" v1\n")
	log, logs := testkit.ObserveLogs()
	// The default interval: the bound under test is the production one.
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "HOT", Path: p}}, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.Start(ctx)
	l.Start(ctx) // idempotent

	qA := Query{Has: HasMD5, MD5: digest16(t, tMD5)}
	qB := Query{Has: HasSHA1, SHA1: digest20(t, tSHA1)}
	loaded1 := l.Status()[0].LoadedAt

	// In-place edit (what an editor or `>>` does).
	writeFile(t, p, "md5 "+tMD5+" v2\nsha1 "+tSHA1+"\n")
	took := testkit.EventuallyWithin(t, 2*time.Second, "in-place edit", func() bool { return match(t, l, qB).Match })
	t.Logf("in-place edit live after %v", took)
	if v := match(t, l, qA); v.Evidence[0].Label != "v2" {
		t.Errorf("label = %q, want v2", v.Evidence[0].Label)
	}
	if st := l.Status()[0]; !st.LoadedAt.After(loaded1) || st.Counts.SHA1 != 1 || st.LastError != "" {
		t.Errorf("status after reload = %+v", st)
	}

	// Atomic replacement removing an entry.
	rewrite(t, p, "sha1 "+tSHA1+"\n")
	took = testkit.EventuallyWithin(t, 2*time.Second, "atomic replace", func() bool { return !match(t, l, qA).Match })
	t.Logf("atomic replace live after %v", took)

	// Garbage: the previous bank stays and Status shows why.
	rewrite(t, p, "this is not a bank\nat all\n")
	testkit.EventuallyWithin(t, 2*time.Second, "reload error", func() bool { return l.Status()[0].LastError != "" })
	st := l.Status()[0]
	if !strings.Contains(st.LastError, "no valid entries") || !strings.Contains(st.LastError, p) || st.Counts.SHA1 != 1 || st.LastErrorAt.IsZero() {
		t.Errorf("status = %+v", st)
	}
	if !match(t, l, qB).Match {
		t.Error("previous bank dropped after a failed reload")
	}
	if testkit.LogCount(logs, "bank reload failed") == 0 {
		t.Error("failed reload not logged")
	}
	// A forced check of unchanged garbage neither reparses nor re-reports.
	if err := l.Reload(); err != nil {
		t.Errorf("Reload of an already reported failure = %v", err)
	}

	// Fixing the file clears the error.
	rewrite(t, p, "md5 "+tMD5+" v3\n")
	testkit.EventuallyWithin(t, 2*time.Second, "fixed file", func() bool { return match(t, l, qA).Match })
	if st := l.Status()[0]; st.LastError != "" || st.Counts.MD5 != 1 || st.Counts.SHA1 != 0 {
		t.Errorf("status after fix = %+v", st)
	}

	// A deleted file keeps the bank, with the error shown.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyWithin(t, 2*time.Second, "missing file error", func() bool { return l.Status()[0].LastError != "" })
	if !match(t, l, qA).Match {
		t.Error("bank dropped when its file vanished")
	}

	// After Close the poller stops; lookups still answer.
	l.Close()
	writeFile(t, p, "sha1 "+tSHA1+"\n")
	time.Sleep(1500 * time.Millisecond)
	if !match(t, l, qA).Match {
		t.Error("reloaded after Close")
	}
}

func TestLocalReloadForced(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "bank.txt")
	writeFile(t, p, "md5 "+tMD5+"\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "F", Path: p}}, ReloadInterval: -1})
	rewrite(t, p, "md5 "+tMD5b+"\n")
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if !match(t, l, Query{Has: HasMD5, MD5: digest16(t, tMD5b)}).Match {
		t.Error("Reload did not load the new file")
	}
	rewrite(t, p, "garbage\n")
	if err := l.Reload(); err == nil || !strings.Contains(err.Error(), "bank F") {
		t.Errorf("Reload of garbage = %v", err)
	}
}

// TestLocalReloadUnderLoad rewrites two banks continuously while lookups
// run; run it with -race. Every version of a bank holds two entries with the
// same label, so a lookup that saw a half-loaded bank (or two versions)
// would see two labels.
func TestLocalReloadUnderLoad(t *testing.T) {
	dir := t.TempDir()
	base := mustPDQ(t, tPDQ)
	content := func(gen int) string {
		return fmt.Sprintf("md5 %s g%d\nsha256 %s g%d\npdq %s g%d\n", tMD5, gen, tSHA256, gen, flip(base, 2), gen)
	}
	paths := []string{filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")}
	for _, p := range paths {
		writeFile(t, p, content(0))
	}
	l := newTestLocal(t, LocalConfig{
		Banks:          []BankConfig{{Name: "A", Path: paths[0]}, {Name: "B", Path: paths[1]}},
		ReloadInterval: 5 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l.Start(ctx)

	dur := 1500 * time.Millisecond
	if testing.Short() {
		dur = 500 * time.Millisecond
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var lookups, failures atomic.Int64
	q := Query{Has: HasMD5 | HasSHA256 | HasPDQ, MD5: digest16(t, tMD5), SHA256: digest32(t, tSHA256), PDQ: base, PDQQuality: 100}
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := l.Match(context.Background(), q)
				lookups.Add(1)
				if err != nil || !v.Match || len(v.Evidence) != 6 {
					failures.Add(1)
					continue
				}
				var labelA, labelB string
				for _, e := range v.Evidence {
					l := &labelA
					if e.Bank == "B" {
						l = &labelB
					}
					if *l == "" {
						*l = e.Label
					} else if *l != e.Label {
						failures.Add(1)
					}
				}
				_ = l.Status()
				_ = l.Stats()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for gen := 1; ; gen++ {
			select {
			case <-stop:
				return
			default:
			}
			rewrite(t, paths[gen%2], content(gen))
			if gen%5 == 0 {
				l.Reload() // forced checks race the poller
			}
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(dur)
	close(stop)
	wg.Wait()
	if failures.Load() != 0 {
		t.Errorf("%d of %d lookups saw an inconsistent bank", failures.Load(), lookups.Load())
	}
	if lookups.Load() == 0 {
		t.Error("no lookups ran")
	}
}

func TestLocalMatchCanceled(t *testing.T) {
	l := newTestLocal(t, LocalConfig{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Match(ctx, Query{}); err == nil {
		t.Error("canceled context answered")
	}
}

func TestLocalMatchAllocs(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	var sb strings.Builder
	for i := 0; i < 1000; i++ {
		fmt.Fprintf(&sb, "pdq %s\n", randPDQ(r))
	}
	sb.WriteString("md5 " + tMD5 + "\n")
	dir := t.TempDir()
	p := filepath.Join(dir, "b.txt")
	writeFile(t, p, sb.String())
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "A", Path: p}}})
	miss := Query{Has: HasMD5 | HasSHA1 | HasSHA256 | HasPDQ, PDQ: randPDQ(r), PDQQuality: 100}
	if n := testing.AllocsPerRun(100, func() { l.Match(context.Background(), miss) }); n != 0 {
		t.Errorf("a miss allocates %v times", n)
	}
}

func BenchmarkLocalMatch(b *testing.B) {
	r := rand.New(rand.NewPCG(11, 12))
	dir := b.TempDir()
	p := filepath.Join(dir, "b.txt")
	writePDQBank(b, p, 100_000)
	l, err := NewLocal(LocalConfig{Banks: []BankConfig{{Name: "A", Path: p}}})
	if err != nil {
		b.Fatal(err)
	}
	q := Query{Has: HasMD5 | HasSHA1 | HasSHA256 | HasPDQ, PDQ: randPDQ(r), PDQQuality: 100}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		l.Match(ctx, q)
	}
}
