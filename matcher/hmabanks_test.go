package matcher

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// A configured bank HMA does not have is silence at lookup time (200 {}),
// so the check against GET /c/banks must name it, in the log and in
// MissingBanks; a check that cannot be made says so and never claims the
// banks are there.
func TestHMACheckBanks(t *testing.T) {
	for _, tc := range []struct {
		name        string
		banks       []string
		setup       func(f *fakes.HMA)
		wantMissing []string
		wantErr     error
		wantLog     string
	}{
		{"all present", []string{"TEST_BANK", "OTHER_BANK"}, nil, nil, nil, "INFO configured banks exist in HMA"},
		{"misspelt", []string{"TEST_BANKS", "OTHER_BANK"}, nil, []string{"TEST_BANKS"}, nil, "ERROR configured banks do not exist in HMA"},
		{"deleted", []string{"TEST_BANK", "OTHER_BANK"}, func(f *fakes.HMA) { f.DeleteBank("OTHER_BANK") }, []string{"OTHER_BANK"}, nil, "missing [OTHER_BANK]"},
		{"empty bank exists", []string{"EMPTY"}, func(f *fakes.HMA) { f.SetBank("EMPTY", 1) }, nil, nil, "INFO configured banks exist"},
		{"matching off", []string{"TEST_BANK"}, func(f *fakes.HMA) { f.SetBank("TEST_BANK", 0) }, nil, nil, "WARN configured banks have matching turned off"},
		{"no curator role", []string{"TEST_BANK"}, func(f *fakes.HMA) { f.NoCurator.Store(true) }, nil, ErrUnavailable, "WARN cannot check the configured banks"},
		{"down", []string{"TEST_BANK"}, func(f *fakes.HMA) { f.Close() }, nil, ErrUnavailable, "WARN cannot check the configured banks"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeHMA(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			log, logs := testkit.ObserveLogs()
			h := newTestHMA(t, HMAConfig{URL: f.URL, Banks: tc.banks, Logger: log})
			s, err := h.CheckBanks(context.Background())
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("CheckBanks = %+v, %v; want error %v", s, err, tc.wantErr)
			}
			if !slices.Equal(s.Missing, tc.wantMissing) || !slices.Equal(h.MissingBanks(), tc.wantMissing) {
				t.Fatalf("missing %q (MissingBanks %q); want %q", s.Missing, h.MissingBanks(), tc.wantMissing)
			}
			if wantOff := tc.name == "matching off"; wantOff != slices.Equal(s.NotMatching, []string{"TEST_BANK"}) || !wantOff && len(s.NotMatching) > 0 {
				t.Fatalf("not matching %q", s.NotMatching)
			}
			if !slices.Equal(s.Configured, tc.banks) || (err == nil) == s.Checked.IsZero() || (err != nil) != (s.Err != "") {
				t.Fatalf("status %+v after error %v", s, err)
			}
			if testkit.LogCount(logs, tc.wantLog) == 0 {
				t.Fatalf("log lacks %q:\n%s", tc.wantLog, testkit.LogText(logs))
			}
			if len(tc.wantMissing) > 0 && testkit.LogCount(logs, "hma_banks") == 0 {
				t.Fatalf("the error line should list HMA's banks to spot a misspelling:\n%s", testkit.LogText(logs))
			}
		})
	}
}

// Why the check exists: HMA answers a lookup in a bank it does not have
// exactly as "no match".
func TestHMAUnknownBankIsSilence(t *testing.T) {
	f := newFakeHMA(t)
	h := newTestHMA(t, HMAConfig{URL: f.URL, Banks: []string{"NOPE"}})
	v, err := h.Match(context.Background(), pdqQuery(t, hmaBase, 100))
	if err != nil || v.Match {
		t.Fatalf("Match = %+v, %v; HMA says nothing about an unknown bank", v, err)
	}
	if _, err := h.CheckBanks(context.Background()); err != nil || !slices.Equal(h.MissingBanks(), []string{"NOPE"}) {
		t.Fatalf("CheckBanks: %v, missing %q; want NOPE reported", err, h.MissingBanks())
	}
}

// Watch re-checks: a missing bank created later is seen, one deleted later
// too, and each change is logged once however many checks find it.
func TestHMAWatchRechecks(t *testing.T) {
	f := newFakeHMA(t)
	log, logs := testkit.ObserveLogs()
	h := newTestHMA(t, HMAConfig{URL: f.URL, Banks: []string{"TEST_BANK", "NEW_BANK"}, Logger: log})
	h.bankState.recheckOK = 10 * time.Millisecond
	h.bankState.recheckFailing = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { h.Watch(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	testkit.Eventually(t, "NEW_BANK reported missing", func() bool { return slices.Equal(h.MissingBanks(), []string{"NEW_BANK"}) })
	n := f.BankLists.Load()
	testkit.Eventually(t, "more checks", func() bool { return f.BankLists.Load() > n+3 })
	if c := testkit.LogCount(logs, "do not exist"); c != 1 {
		t.Fatalf("%d error lines for one missing bank; want 1:\n%s", c, testkit.LogText(logs))
	}

	f.SetBank("NEW_BANK", 1)
	testkit.Eventually(t, "NEW_BANK found", func() bool { return len(h.MissingBanks()) == 0 })
	testkit.Eventually(t, "recovery logged", func() bool { return testkit.LogCount(logs, "INFO all configured banks now exist") > 0 })

	f.DeleteBank("TEST_BANK")
	testkit.Eventually(t, "TEST_BANK reported missing", func() bool { return slices.Equal(h.MissingBanks(), []string{"TEST_BANK"}) })
	testkit.Eventually(t, "second error line", func() bool { return testkit.LogCount(logs, "do not exist") == 2 })

	// HMA going away keeps the last answer and warns once.
	f.Close()
	testkit.Eventually(t, "check failing", func() bool { return h.BankStatus().Err != "" })
	time.Sleep(50 * time.Millisecond) // several more failed checks
	if c := testkit.LogCount(logs, "cannot check"); c != 1 || !slices.Equal(h.MissingBanks(), []string{"TEST_BANK"}) {
		t.Fatalf("%d warnings, missing %q; want 1 warning and the last answer kept:\n%s", c, h.MissingBanks(), testkit.LogText(logs))
	}
}

// The Guard runs each remote's Watch from NewGuard to Close and reports
// the missing banks by remote name.
func TestGuardMissingBanks(t *testing.T) {
	f := newFakeHMA(t)
	h := newTestHMA(t, HMAConfig{URL: f.URL, Banks: []string{"TEST_BANK", "TYPO_BANK"}})
	h.bankState.recheckFailing = 10 * time.Millisecond
	g, err := NewGuard(GuardConfig{Remotes: []Remote{{Name: "hma", Matcher: h}, {Name: "svc", Matcher: newFakeBackend(answer(Verdict{}, nil))}}, Cache: noCache})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "missing bank reported", func() bool {
		return slices.Equal(g.MissingBanks()["hma"], []string{"TYPO_BANK"})
	})
	if len(g.MissingBanks()) != 1 {
		t.Fatalf("MissingBanks %v; want only hma", g.MissingBanks())
	}
	g.Close()
	n := f.BankLists.Load()
	time.Sleep(50 * time.Millisecond)
	if f.BankLists.Load() != n {
		t.Fatal("bank checks go on after Close")
	}
}
