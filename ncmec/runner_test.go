package ncmec

import (
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// A Runner syncs at once when a config attaches, then every Every, with
// the newest config still attached; failures are counted and retried;
// Close ends its goroutine.
func TestRunner(t *testing.T) {
	e := newEnv(t, image("1", time.Minute, "A1"))
	r := NewRunner(e.path)
	if st := r.Stats(); !st.LastSuccess.IsZero() || st.Syncs != 0 {
		t.Fatalf("stats before any sync: %+v", st)
	}
	old := e.cfg()
	old.Every = time.Hour
	a1, err := r.Attach(old)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the first sync", func() bool { return r.Stats().Syncs == 1 })
	if st := r.Stats(); st.Failures != 0 || st.Entries != 1 || st.Counts.MD5 != 1 || st.Bank != "NCMEC" || st.LastSuccess.IsZero() || st.LastError != "" {
		t.Fatalf("stats after the first sync: %+v", st)
	}
	// A reload: the new config attaches (and syncs at once) before the
	// old one detaches. Its wrong password shows which config runs.
	e.setNow(t0.Add(2 * time.Hour))
	bad := e.cfg()
	bad.Name, bad.Password, bad.Every = "NCMEC2", "wrong", 20*time.Millisecond
	a2, err := r.Attach(bad)
	if err != nil {
		t.Fatal(err)
	}
	a1.Detach()
	testkit.Eventually(t, "the failing sync", func() bool { return r.Stats().Failures >= 2 })
	if st := r.Stats(); st.Bank != "NCMEC2" || !strings.Contains(st.LastError, `user "esp-user"`) || st.Entries != 1 {
		t.Fatalf("stats after failures: %+v", st)
	}
	// A rolled-back reload: the new config detaches, the old returns.
	a1, _ = r.Attach(old)
	a2.Detach()
	r.Kick()
	testkit.Eventually(t, "a good sync again", func() bool { st := r.Stats(); return st.LastError == "" && !st.Running })
	a1.Detach()
	a1.Detach() // twice is fine
	r.Close()
	r.Close()
	if _, err := r.Attach(old); err == nil {
		t.Fatal("attached to a closed runner")
	}
	select {
	case <-r.done:
	default:
		t.Fatal("Close returned with the runner's goroutine still running")
	}
	// A new Runner (a restart) starts from the checkpoint's stats.
	if st := NewRunner(e.path).Stats(); st.Entries != 1 || st.Through.IsZero() || st.LastSuccess.IsZero() {
		t.Fatalf("stats from the checkpoint: %+v", st)
	}
	if _, err := NewRunner(e.path).Attach(Config{Name: "X", Path: "/elsewhere", Environment: "test", Username: "u", Password: "p"}); err == nil {
		t.Fatal("a config for another path attached")
	}
}

// Closing a Runner cancels a sync in progress, which leaves nothing half
// done, and returns only once it has stopped.
func TestRunnerCloseCancels(t *testing.T) {
	e := newEnv(t, image("1", time.Minute, "A1"))
	e.sync(e.cfg())
	good := e.snapshot()
	e.fake.Add(image("2", 70*time.Minute, "A1"), image("3", 71*time.Minute, "A1"))
	e.fake.PageSize = 1
	e.setNow(t0.Add(2 * time.Hour))
	cfg := e.cfg()
	cfg.Attempts, cfg.RetryWait = 100, time.Hour // the failing second page waits long
	e.fake.SetFault(&fakesFault500AfterOne)
	r := NewRunner(e.path)
	if _, err := r.Attach(cfg); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the sync to reach its failing page", func() bool { return e.fake.EntryPages.Load() >= 2 })
	done := make(chan struct{})
	go func() { r.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not cancel the sync")
	}
	e.unchanged("a sync cancelled by Close", good)
}

var fakesFault500AfterOne = fakes.NCMECFault{AfterPages: 1, Status: 500}
