package matcher

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// Every way the HMA backend can fail, through the real HMA client and the
// Guard: lookups keep answering (unscanned under fail-open, ErrUnavailable
// under fail-closed, never "no match"), the breaker opens and later recovers,
// the failure is counted by kind, and a run of failed requests costs one log
// line per breaker transition, not one per request.
func TestGuardHMAFaults(t *testing.T) {
	jsonRaw := func(body string) *fakes.Raw {
		return &fakes.Raw{Status: 200, ContentType: "application/json", Body: body}
	}
	type fault struct {
		name string
		// breakHMA makes the fake fail; it returns the function that heals it.
		breakHMA func(t *testing.T, f *fakes.HMA) (heal func())
		// kind is the RemoteStats counter the failures must land in.
		kind func(RemoteStats) uint64
	}
	errorsOnly := func(s RemoteStats) uint64 { return s.Failures - s.Timeouts - s.Malformed }
	faults := []fault{
		{"down", func(t *testing.T, f *fakes.HMA) func() { return f.Down(t) }, errorsOnly},
		{"slow", func(t *testing.T, f *fakes.HMA) func() {
			f.SetDelay(2 * time.Second)
			return func() { f.SetDelay(0) }
		}, func(s RemoteStats) uint64 { return s.Timeouts }},
		{"500s", func(t *testing.T, f *fakes.HMA) func() {
			f.SetRaw(&fakes.Raw{Status: 500, ContentType: "text/html", Body: "<h1>Internal Server Error</h1>"})
			return func() { f.SetRaw(nil) }
		}, errorsOnly},
		{"malformed JSON", func(t *testing.T, f *fakes.HMA) func() {
			f.SetRaw(jsonRaw(`{"TEST_BANK":[{"bank_content_id":1,`))
			return func() { f.SetRaw(nil) }
		}, func(s RemoteStats) uint64 { return s.Malformed }},
		{"valid JSON, wrong shape", func(t *testing.T, f *fakes.HMA) func() {
			// raw_lookup's shape where lookup's is expected.
			f.SetRaw(jsonRaw(`{"matches":[{"bank_content_id":1,"distance":"0"}]}`))
			return func() { f.SetRaw(nil) }
		}, func(s RemoteStats) uint64 { return s.Malformed }},
	}
	const requests = 40
	for _, fc := range faults {
		for _, policy := range []FailPolicy{FailOpen, FailClosed} {
			t.Run(fc.name+"/"+policy.String(), func(t *testing.T) {
				t.Parallel()
				f := newFakeHMA(t)
				h := newTestHMA(t, HMAConfig{URL: f.URL, Timeout: 5 * time.Second})
				log, logs := testkit.ObserveLogs()
				var tr transitions
				g := newTestGuard(t, GuardConfig{
					Remotes:         []Remote{{Name: "hma", Matcher: h}},
					FailPolicy:      policy,
					Breaker:         BreakerConfig{ConsecutiveFailures: 3, OpenTimeout: 150 * time.Millisecond, CallTimeout: 100 * time.Millisecond},
					Cache:           noCache,
					Logger:          log,
					OnBreakerChange: tr.add,
				})
				// A hash HMA does not hold: only the failure decides.
				q := pdqQuery(t, strings.Repeat("5a", 32), 100)
				heal := fc.breakHMA(t, f)
				for i := range requests {
					v, err := g.Match(context.Background(), q)
					switch policy {
					case FailOpen:
						if err != nil || !v.Unscanned || v.Match {
							t.Fatalf("request %d: %+v, %v; want unscanned", i, v, err)
						}
					case FailClosed:
						if !errors.Is(err, ErrUnavailable) {
							t.Fatalf("request %d: %+v, %v; want ErrUnavailable", i, v, err)
						}
					}
				}
				st := g.Stats().Remotes["hma"]
				if fc.kind(st) != 3 || st.Failures != 3 || st.Rejected != requests-3 {
					t.Fatalf("stats %+v: want 3 failures of this kind, then %d rejected by the open breaker", st, requests-3)
				}
				testkit.Eventually(t, "breaker opened", func() bool { return len(tr.list()) == 1 })
				if n := testkit.LogCount(logs, "remote backend failed"); n != 1 {
					t.Fatalf("%d failure lines for %d failed requests; want 1:\n%s", n, requests, testkit.LogText(logs))
				}
				if n := testkit.LogCount(logs, "not consulting it"); n != 1 {
					t.Fatalf("%d breaker-open lines; want 1:\n%s", n, testkit.LogText(logs))
				}

				heal()
				time.Sleep(200 * time.Millisecond)
				if v, err := g.Match(context.Background(), q); err != nil || v.Unscanned {
					t.Fatalf("after healing: %+v, %v", v, err)
				}
				if s := g.BreakerStates()["hma"]; s != "closed" {
					t.Fatalf("breaker %s after a good probe", s)
				}
				want := []string{"hma:closed->open", "hma:open->half-open", "hma:half-open->closed"}
				testkit.Eventually(t, "breaker closed", func() bool { return len(tr.list()) == len(want) })
				if got := tr.list(); strings.Join(got, " ") != strings.Join(want, " ") {
					t.Fatalf("transitions %q; want %q", got, want)
				}
				if n := testkit.LogCount(logs, "remote backend failed"); n != 1 {
					t.Fatalf("%d failure lines after recovery; want still 1", n)
				}
			})
		}
	}
}

// After the breaker closes again, the next failure is logged once more: a
// relapse must not be silent.
func TestGuardFailureLoggedAgainAfterRecovery(t *testing.T) {
	backend := newFakeBackend(answer(Verdict{}, ErrUnavailable))
	log, logs := testkit.ObserveLogs()
	g := newTestGuard(t, GuardConfig{
		Remotes: []Remote{{Name: "svc", Matcher: backend}},
		Breaker: BreakerConfig{ConsecutiveFailures: 2, OpenTimeout: 50 * time.Millisecond},
		Cache:   noCache,
		Logger:  log,
	})
	ctx := context.Background()
	g.Match(ctx, md5Query("x"))
	g.Match(ctx, md5Query("x"))
	backend.set(answer(Verdict{}, nil))
	time.Sleep(80 * time.Millisecond)
	g.Match(ctx, md5Query("x")) // the probe closes the breaker
	testkit.Eventually(t, "closed", func() bool { return testkit.LogCount(logs, "changed") == 3 })
	backend.set(answer(Verdict{}, ErrBadResponse))
	g.Match(ctx, md5Query("x"))
	g.Match(ctx, md5Query("x"))
	if n := testkit.LogCount(logs, "remote backend failed"); n != 2 {
		t.Fatalf("%d failure lines; want 2 (one per closed period):\n%s", n, testkit.LogText(logs))
	}
}

// A video banked in HMA is blocked through the Guard, however often it is
// asked: HMA's "distance":"-" for exact types (see parseHMALookup) is an
// answer, not a failure towards the breaker.
func TestGuardHMAVideoDashDistance(t *testing.T) {
	sum := md5.Sum([]byte("banked video"))
	f := newFakeHMA(t)
	f.SetContents(fakes.HMAContent{Bank: "MEDIAGUARD_TEST", ID: 3, SignalType: "video_md5", Signal: hex.EncodeToString(sum[:])})
	h := newTestHMA(t, HMAConfig{URL: f.URL, Banks: []string{"MEDIAGUARD_TEST"}})
	g := newTestGuard(t, GuardConfig{
		Remotes:    []Remote{{Name: "hma", Matcher: h}},
		FailPolicy: FailClosed,
		Breaker:    BreakerConfig{ConsecutiveFailures: 1},
		Cache:      noCache,
	})
	q := Query{Has: HasMD5, MD5: sum, Kind: KindVideo}
	for i := range 3 {
		v, err := g.Match(context.Background(), q)
		if err != nil || !v.Match || v.HashType != VideoMD5 || v.Bank != "MEDIAGUARD_TEST" || v.Distance != 0 {
			t.Fatalf("lookup %d: %+v, %v; want the banked video blocked", i, v, err)
		}
	}
	if st := g.Stats().Remotes["hma"]; st.Failures != 0 || st.Calls != 3 {
		t.Fatalf("stats %+v; want 3 calls, no failures", st)
	}
	if s := g.BreakerStates()["hma"]; s != "closed" {
		t.Fatalf("breaker %s; want closed", s)
	}
}
