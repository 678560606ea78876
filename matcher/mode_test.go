package matcher

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// A bank in report mode never blocks, and never hides an enforcing bank:
// whatever the order of the banks, the distances or the number of
// report-only entries near the query, media an enforcing bank lists is a
// match.
func TestLocalReportMode(t *testing.T) {
	dir := t.TempDir()
	base := mustPDQ(t, tPDQ)
	enforce := filepath.Join(dir, "enforce.txt")
	writeFile(t, enforce, strings.Join([]string{
		"md5 " + tMD5 + " listed",
		"pdq " + flip(base, 20).String() + " far",
	}, "\n"))
	var crowd strings.Builder
	crowd.WriteString("sha1 " + tSHA1 + "\n")
	crowd.WriteString("md5 " + tMD5 + "\n")
	for i := 0; i < 3*maxEvidence; i++ {
		// Closer to the query than the enforcing entry, and more of
		// them than the evidence list holds.
		fmt.Fprintf(&crowd, "pdq %s\n", flipRange(base, i%200, 1+i%8))
	}
	report := filepath.Join(dir, "report.txt")
	writeFile(t, report, crowd.String())
	banks := func(reportFirst bool) []BankConfig {
		e := BankConfig{Name: "ENFORCED", Path: enforce, Category: "csam"}
		r := BankConfig{Name: "TRIAL", Path: report, Mode: ModeReport, Category: "ncii", Label: "trial list"}
		if reportFirst {
			return []BankConfig{r, e}
		}
		return []BankConfig{e, r}
	}
	for _, reportFirst := range []bool{false, true} {
		l := newTestLocal(t, LocalConfig{Banks: banks(reportFirst)})
		tests := []struct {
			name       string
			q          Query
			match      bool
			wouldBlock bool
			bank       string
			category   string
			label      string
		}{
			{"listed exactly in both", Query{Has: HasMD5, MD5: digest16(t, tMD5)}, true, false, "ENFORCED", "csam", "listed"},
			{"listed only in report", Query{Has: HasSHA1, SHA1: digest20(t, tSHA1)}, false, true, "TRIAL", "ncii", "trial list"},
			{"pdq near many report entries, far enforcing one", Query{Has: HasPDQ, PDQ: base, PDQQuality: 100}, true, false, "ENFORCED", "csam", "far"},
			{"pdq form near report entries only", Query{Forms: formsOf(flipRange(base, 100, 30))}, false, true, "TRIAL", "ncii", "trial list"},
			{"clean", Query{Has: HasSHA256, SHA256: digest32(t, tSHA256)}, false, false, "", "", ""},
		}
		for _, tc := range tests {
			t.Run(fmt.Sprintf("reportFirst=%v/%s", reportFirst, tc.name), func(t *testing.T) {
				v := match(t, l, tc.q)
				if v.Match != tc.match || v.WouldBlock != tc.wouldBlock || v.Bank != tc.bank || v.Category != tc.category {
					t.Fatalf("verdict = match %v would_block %v bank %q category %q, want %v %v %q %q (%s)",
						v.Match, v.WouldBlock, v.Bank, v.Category, tc.match, tc.wouldBlock, tc.bank, tc.category, v.Reason)
				}
				if tc.bank == "" {
					return
				}
				if e := v.Evidence[0]; e.Label != tc.label || e.ReportOnly != tc.wouldBlock {
					t.Errorf("best evidence = %+v, want label %q report_only %v", e, tc.label, tc.wouldBlock)
				}
				if tc.wouldBlock && !strings.HasPrefix(v.Reason, "report only: ") {
					t.Errorf("reason %q does not say report only", v.Reason)
				}
				for _, e := range v.Evidence {
					if e.ReportOnly != (e.Bank == "TRIAL") {
						t.Errorf("evidence %s report_only = %v", e.Bank, e.ReportOnly)
					}
				}
			})
		}
	}
}

func formsOf(h ...pdq.Hash) []pdq.Form {
	out := make([]pdq.Form, len(h))
	for i, x := range h {
		out[i] = pdq.Form{Hash: x, Quality: 100, Name: "frame 2", Variant: pdq.VariantFrame}
	}
	return out
}

// A verdict stored against banks in report mode must not be trusted once
// a bank is enforced: the mode is part of the fingerprint. An enforcing
// bank's fingerprint is what it was before modes existed.
func TestFingerprintCoversMode(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.txt")
	writeFile(t, p, "md5 "+tMD5+"\n")
	fp := func(mode, category string) string {
		return newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "B", Path: p, Mode: mode, Category: category}}}).Fingerprint()
	}
	if fp("", "") != fp(ModeEnforce, "") {
		t.Error("the default mode and enforce fingerprint differently")
	}
	if fp(ModeEnforce, "") == fp(ModeReport, "") {
		t.Error("report and enforce fingerprint alike")
	}
	if fp("", "") != fp("", "spam") {
		t.Error("a category changes the fingerprint, though it decides no match")
	}
}

func TestModeConfigErrors(t *testing.T) {
	p := filepath.Join(t.TempDir(), "b.txt")
	writeFile(t, p, "md5 "+tMD5+"\n")
	for _, bc := range []BankConfig{
		{Name: "B", Path: p, Mode: "dry-run"},
		{Name: "B", Path: p, Mode: "Report"},
		{Name: "B", Path: p, Category: "porn"},
	} {
		if _, err := NewLocal(LocalConfig{Banks: []BankConfig{bc}}); err == nil {
			t.Errorf("NewLocal(%+v) accepted", bc)
		}
	}
	b := newFakeBackend(answer(Verdict{}, nil))
	for _, p := range []BackendPolicy{{Mode: "off"}, {Category: "x"}} {
		if _, err := NewGuard(GuardConfig{Remotes: []Remote{{Name: "r", Matcher: b, Policy: p}}}); err == nil {
			t.Errorf("NewGuard accepted policy %+v", p)
		}
	}
}

// The Guard applies each remote's policy: a report-only remote's match is
// a would-block that does not stop the search, and any enforcing match,
// local or remote, wins over it.
func TestGuardReportMode(t *testing.T) {
	wouldBlockLocal := Verdict{WouldBlock: true, Bank: "TRIAL", Source: "local:TRIAL", Evidence: []Evidence{{Bank: "TRIAL", Source: "local:TRIAL", ReportOnly: true}}}
	report := BackendPolicy{Mode: ModeReport, Category: "spam"}
	tests := []struct {
		name       string
		local      Verdict
		remotes    []Remote
		match      bool
		wouldBlock bool
		source     string
		category   string
		asked      int // remotes asked
	}{
		{"report remote alone", Verdict{}, []Remote{{Name: "a", Matcher: newFakeBackend(answer(remoteMatch("hma:A"), nil)), Policy: report}}, false, true, "hma:A", "spam", 1},
		{"report remote then enforcing remote", Verdict{}, []Remote{
			{Name: "a", Matcher: newFakeBackend(answer(remoteMatch("hma:A"), nil)), Policy: report},
			{Name: "b", Matcher: newFakeBackend(answer(remoteMatch("hma:B"), nil)), Policy: BackendPolicy{Category: "csam"}},
		}, true, false, "hma:B", "csam", 2},
		{"local would-block, enforcing remote", wouldBlockLocal, []Remote{{Name: "b", Matcher: newFakeBackend(answer(remoteMatch("hma:B"), nil))}}, true, false, "hma:B", "", 1},
		{"local would-block, clean remote", wouldBlockLocal, []Remote{{Name: "b", Matcher: newFakeBackend(answer(Verdict{}, nil))}}, false, true, "local:TRIAL", "", 1},
		{"local would-block, report remote", wouldBlockLocal, []Remote{{Name: "a", Matcher: newFakeBackend(answer(remoteMatch("hma:A"), nil)), Policy: report}}, false, true, "local:TRIAL", "", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := newTestGuard(t, GuardConfig{Local: newFakeBackend(answer(tc.local, nil)), Remotes: tc.remotes, Cache: noCache})
			v, err := g.Match(context.Background(), md5Query("x"))
			if err != nil {
				t.Fatal(err)
			}
			if v.Match != tc.match || v.WouldBlock != tc.wouldBlock || v.Source != tc.source || v.Category != tc.category {
				t.Fatalf("verdict = match %v would_block %v source %q category %q, want %v %v %q %q",
					v.Match, v.WouldBlock, v.Source, v.Category, tc.match, tc.wouldBlock, tc.source, tc.category)
			}
			asked := 0
			for _, r := range tc.remotes {
				asked += int(r.Matcher.(*fakeBackend).calls.Load())
			}
			if asked != tc.asked {
				t.Errorf("remotes asked %d times, want %d", asked, tc.asked)
			}
			// A report remote's evidence is marked, and stays so in the
			// cache's copy: the policy never leaks between callers.
			for _, e := range v.Evidence {
				if e.Source == "hma:A" && !e.ReportOnly {
					t.Errorf("report remote's evidence not marked: %+v", e)
				}
			}
		})
	}
}

// Fail-open and report mode together: the would-block is still reported,
// and the media is recorded as not fully scanned.
func TestGuardReportModeFailOpen(t *testing.T) {
	down := newFakeBackend(answer(Verdict{}, fmt.Errorf("%w: down", ErrUnavailable)))
	rep := newFakeBackend(answer(remoteMatch("hma:A"), nil))
	g := newTestGuard(t, GuardConfig{Remotes: []Remote{{Name: "a", Matcher: rep, Policy: BackendPolicy{Mode: ModeReport}}, {Name: "down", Matcher: down}}, Cache: noCache})
	v, err := g.Match(context.Background(), md5Query("x"))
	if err != nil || v.Match || !v.WouldBlock || !v.Unscanned {
		t.Fatalf("Match = %+v, %v", v, err)
	}
	g = newTestGuard(t, GuardConfig{Remotes: []Remote{{Name: "a", Matcher: rep, Policy: BackendPolicy{Mode: ModeReport}}, {Name: "down", Matcher: down}}, Cache: noCache, FailPolicy: FailClosed})
	if _, err := g.Match(context.Background(), md5Query("x")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("fail-closed with a report-only match = %v, want unavailable", err)
	}
}

// Entries added to a bank in report mode reach a retro-scan as
// would-blocks, never as matches: a trial list must not quarantine stored
// media.
func TestRetroOfReportBank(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "trial.txt")
	writeFile(t, p, "md5 "+tMD5+"\n")
	var changes []BankChange
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "TRIAL", Path: p, Mode: ModeReport, Category: "spam"}},
		OnChange: func(ch BankChange) { changes = append(changes, ch) }})
	rewrite(t, p, "md5 "+tMD5+"\nsha1 "+tSHA1+"\n")
	if err := l.Reload(); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 1 {
		t.Fatalf("changes %d", len(changes))
	}
	rm := l.RetroMatcher(changes[0].Added)
	q := Query{Has: HasSHA1, SHA1: digest20(t, tSHA1)}
	if !rm.Matches(&q) {
		t.Fatal("the added entry is not found")
	}
	if v := rm.Match(&q); v.Match || !v.WouldBlock || v.Category != "spam" {
		t.Fatalf("retro verdict %+v, want a would-block", v)
	}
}

// BenchmarkLocalMatchModes is the cost of report mode: the same two banks
// of 100k PDQ entries each, both enforcing (one pass) or one in report
// mode (enforcing banks first, the report bank only without a match).
// A clean query searches both banks either way.
func BenchmarkLocalMatchModes(b *testing.B) {
	dir := b.TempDir()
	pa, pb := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	writePDQBank(b, pa, 100_000)
	writePDQBank(b, pb, 100_000)
	r := rand.New(rand.NewPCG(21, 22))
	q := Query{Has: HasMD5 | HasSHA1 | HasSHA256 | HasPDQ, PDQ: randPDQ(r), PDQQuality: 100}
	for _, mode := range []string{ModeEnforce, ModeReport} {
		b.Run("second="+mode, func(b *testing.B) {
			l, err := NewLocal(LocalConfig{Banks: []BankConfig{{Name: "A", Path: pa}, {Name: "B", Path: pb, Mode: mode}}})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				l.Match(ctx, q)
			}
		})
	}
}

// MatchEachBank names every bank near the query, however many closer
// entries another bank holds; Match keeps the closest across banks.
func TestMatchEachBank(t *testing.T) {
	dir := t.TempDir()
	base := mustPDQ(t, tPDQ)
	var crowd strings.Builder
	for i := 0; i < 2*maxEvidence; i++ {
		fmt.Fprintf(&crowd, "pdq %s\n", flipRange(base, i*3, 1+i%4))
	}
	learned, ncmec := filepath.Join(dir, "learned.txt"), filepath.Join(dir, "ncmec.txt")
	writeFile(t, learned, crowd.String())
	writeFile(t, ncmec, "pdq "+flip(base, 20).String()+"\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "LEARNED", Path: learned}, {Name: "NCMEC", Path: ncmec}}})
	q := Query{Has: HasPDQ, PDQ: base, PDQQuality: 100}
	banks := func(v Verdict) map[string]int {
		m := map[string]int{}
		for _, e := range v.Evidence {
			m[e.Bank]++
		}
		return m
	}
	if m := banks(match(t, l, q)); m["NCMEC"] != 0 || m["LEARNED"] != maxEvidence {
		t.Fatalf("Match evidence by bank %v: the premise (NCMEC crowded out) does not hold", m)
	}
	v, err := l.MatchEachBank(context.Background(), q)
	if err != nil || !v.Match {
		t.Fatalf("MatchEachBank = %+v, %v", v, err)
	}
	if m := banks(v); m["NCMEC"] != 1 || m["LEARNED"] != maxEvidence {
		t.Errorf("MatchEachBank evidence by bank %v, want NCMEC 1 and LEARNED %d", m, maxEvidence)
	}
}
