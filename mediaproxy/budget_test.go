package mediaproxy

import (
	"runtime"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/sched"
	"github.com/mediaguard/mediaguard/hashing/worker"
)

// An image whose decoding outlasts its CPU budget (a crafted one: a
// thousand progressive scans, a bomb) is killed on its worker and judged
// undecodable, so the default policy refuses it: being too costly to
// judge never makes a picture clean. The budget is lowered to a
// millisecond so an ordinary photo stands for the crafted one; with the
// budget as shipped the same photo passes.
func TestImageOverCPUBudgetIsRefused(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SKIPPED LOUDLY: workers' CPU time is read from /proc on Linux only; elsewhere jobs are bounded by wall time")
	}
	pool := worker.NewPool(1, worker.Options{})
	t.Cleanup(pool.Close)
	e := newEnv(t, nil, func(c *Config) {
		c.Runner = sched.NewRunnerFor(pool, nil)
		c.Hashing = HashingProcess
	})
	photo := jpegBytes(testPhoto(21, 1600, 1200), 90)
	if resp, _ := e.upload(t, "image/jpeg", photo); resp.StatusCode != 200 {
		t.Fatalf("within its budget: %d (%s)", resp.StatusCode, e.obs.last().Outcome)
	}
	old := cpuBudgetFor
	cpuBudgetFor = func(string, int64) time.Duration { return time.Millisecond }
	t.Cleanup(func() { cpuBudgetFor = old })
	resp, code := e.upload(t, "image/jpeg", photo[:len(photo)-1]) // new digests: not remembered as clean
	if resp.StatusCode != 403 || code != "M_FORBIDDEN" {
		t.Fatalf("over its budget: %d %s (%s: %s)", resp.StatusCode, code, e.obs.last().Outcome, e.obs.last().UnscannableReason)
	}
	if d := e.obs.last(); d.Outcome != Undecodable {
		t.Fatalf("outcome %s, want %s", d.Outcome, Undecodable)
	}
	t.Logf("refused: %s", e.obs.last().UnscannableReason)
}
