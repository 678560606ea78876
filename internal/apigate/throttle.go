package apigate

import (
	"sync/atomic"
	"time"
)

// WarnInterval is the least time between two warnings of one kind. Every
// refusal is counted in the APIs' statistics; the log only needs to show
// that it is happening and why, and must not let an unauthenticated
// client write to the disk at will.
const WarnInterval = time.Second

// Throttle lets one warning per WarnInterval through and counts the rest.
// The zero value is ready; it is safe for concurrent use.
type Throttle struct {
	last       atomic.Int64 // unix nanoseconds of the last warning let through
	suppressed atomic.Uint64
}

// Allow reports whether a warning may be logged at now and, when it may,
// how many were suppressed since the last one let through (to log with
// it).
func (t *Throttle) Allow(now time.Time) (ok bool, suppressed uint64) {
	n := now.UnixNano()
	last := t.last.Load()
	if (last != 0 && n-last < int64(WarnInterval) && n >= last) || !t.last.CompareAndSwap(last, n) {
		t.suppressed.Add(1)
		return false, 0
	}
	return true, t.suppressed.Swap(0)
}
