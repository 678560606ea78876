package notify

import (
	"sync"
	"time"
)

// maxAckIDs bounds how many suppressed detection IDs one summary remembers
// for OnDelivered. Beyond it the detections are still counted in the
// summary, but the audit log is not told they were delivered, so it
// re-notifies them after a restart: safe (they are summarised again), just
// noisier, and it keeps a flood from growing memory without bound.
const maxAckIDs = 10000

// maxKeys bounds the burst table. Past it, stale entries are swept; if all
// are live, new keys bypass burst protection (fail open: post, not lose).
const maxKeys = 4096

// burstKey identifies "identical" detections: same list entry, same user.
type burstKey struct {
	hash, user string
	// wouldBlock keeps report-only detections apart from blocks of the
	// same entry, so a summary never says "blocked" of what passed.
	wouldBlock bool
}

// burstEntry is one fixed window for one key.
type burstEntry struct {
	start      time.Time
	posted     int
	suppressed int
	last       Detection // newest suppressed, shown in the summary
	firstID    string    // first suppressed; names the summary's txnId
	ackIDs     []string
	timer      *time.Timer
}

// burst decides whether a detection is posted or folded into a summary.
// It is consulted on the request path, so it does only map work under a
// mutex and never blocks on I/O.
type burst struct {
	window    time.Duration
	threshold int
	emit      func(item) // called from a timer goroutine at window end
	now       func() time.Time

	mu      sync.Mutex
	entries map[burstKey]*burstEntry
	closed  bool
}

func newBurst(window time.Duration, threshold int, emit func(item)) *burst {
	return &burst{window: window, threshold: threshold, emit: emit, now: time.Now,
		entries: map[burstKey]*burstEntry{}}
}

// admit reports whether d should be posted individually. When it returns
// false, d has been counted into a summary that is emitted at window end.
func (b *burst) admit(d Detection) bool {
	if d.Review {
		// Each review names the detection a moderator answers: never
		// folded into a summary.
		return true
	}
	k := burstKey{d.MatchedHash, d.User, d.WouldBlock}
	now := b.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return true
	}
	e := b.entries[k]
	if e != nil && now.Sub(e.start) >= b.window && e.timer == nil {
		e = nil // expired window with nothing pending: start afresh
	}
	if e == nil {
		if len(b.entries) >= maxKeys && !b.sweep(now) {
			return true
		}
		e = &burstEntry{start: now}
		b.entries[k] = e
	}
	if e.posted < b.threshold {
		e.posted++
		return true
	}
	if e.suppressed == 0 {
		e.firstID = d.ID
		// The summary goes out when the window closes, not per detection,
		// so a flood of N costs one notice however large N is.
		e.timer = time.AfterFunc(b.window-now.Sub(e.start), func() { b.flush(k, e) })
	}
	e.suppressed++
	e.last = d
	if len(e.ackIDs) < maxAckIDs {
		e.ackIDs = append(e.ackIDs, d.ID)
	}
	return false
}

// sweep removes expired entries without a pending summary; it reports
// whether there is now room for a new key.
func (b *burst) sweep(now time.Time) bool {
	for k, e := range b.entries {
		if e.timer == nil && now.Sub(e.start) >= b.window {
			delete(b.entries, k)
		}
	}
	return len(b.entries) < maxKeys
}

// flush emits the summary of e and forgets the window.
func (b *burst) flush(k burstKey, e *burstEntry) {
	b.mu.Lock()
	if b.closed || b.entries[k] != e {
		b.mu.Unlock()
		return
	}
	delete(b.entries, k)
	it := item{d: e.last, more: e.suppressed, summaryID: "summary-" + e.firstID, acks: e.ackIDs}
	b.mu.Unlock()
	b.emit(it)
}

// close stops pending summaries; like queued items they stay undelivered
// and the audit log re-notifies them after restart.
func (b *burst) close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	for _, e := range b.entries {
		if e.timer != nil {
			e.timer.Stop()
		}
	}
}
