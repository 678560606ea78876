package lookupapi

import (
	"strings"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/internal/apigate"
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

// throttles are one apigate.Throttle per kind of warning: every rejection
// is counted in Stats, the log shows at most one a second of each kind.
type throttles [numWarnKinds]apigate.Throttle

// warn logs at Warn unless a warning of this kind was logged less than
// apigate.WarnInterval ago; the next one logged says how many were
// skipped.
func (h *Handler) warn(kind int, msg string, fields ...zap.Field) {
	ok, n := h.warns[kind].Allow(h.now())
	if !ok {
		return
	}
	if n > 0 {
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
