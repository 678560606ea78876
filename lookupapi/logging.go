package lookupapi

import (
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Kinds of warning, each throttled on its own so a flood of one kind does
// not hide another.
const (
	warnBadRequest = iota
	warnUnauthorized
	warnRateLimited
	warnMatchError
	warnInternal
	numWarnKinds
)

// warnInterval is the least time between two warnings of one kind. Every
// rejection is counted in Stats; the log only needs to show that it is
// happening and why, and must not let an unauthenticated client write to
// the disk at will.
const warnInterval = time.Second

// throttle lets one warning per warnInterval through and counts the rest.
type throttle struct {
	last       atomic.Int64 // unix nanoseconds of the last warning logged
	suppressed atomic.Uint64
}

type throttles [numWarnKinds]throttle

// warn logs at Warn unless a warning of this kind was logged less than
// warnInterval ago; the next one logged says how many were skipped.
func (h *Handler) warn(kind int, msg string, fields ...zap.Field) {
	t := &h.warns[kind]
	now := h.now().UnixNano()
	last := t.last.Load()
	if (last != 0 && now-last < int64(warnInterval) && now >= last) || !t.last.CompareAndSwap(last, now) {
		t.suppressed.Add(1)
		return
	}
	if n := t.suppressed.Swap(0); n > 0 {
		fields = append(fields, zap.Uint64("suppressed_since_last", n))
	}
	h.log.Warn(msg, fields...)
}

// maxLoggedLen bounds a client-supplied string in a log line; Matrix ids
// are at most 255 bytes, anything longer is not one.
const maxLoggedLen = 255

// clip bounds a client-supplied string for logging.
func clip(s string) string {
	if len(s) <= maxLoggedLen {
		return s
	}
	return strings.ToValidUTF8(s[:maxLoggedLen], "") + "…"
}

// prefix returns at most the first n bytes of s.
func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
