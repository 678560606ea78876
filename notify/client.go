package notify

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/rs/zerolog"
	"maunium.net/go/mautrix"
)

// UserAgent is what the bot's requests say they are.
const UserAgent = "mediaguard"

// NewClient returns a Matrix client-server API client for the bot
// (maunium.net/go/mautrix, the Go SDK Meowlnir and the mautrix bridges
// use), set up the way mediaguard's delivery loops need it:
//
//   - no retries inside the SDK (DefaultHTTPRetries 0, so each call is one
//     attempt): the callers keep their own queue and backoff, because a
//     notice must wait in order behind the one being retried, a 403 means
//     "rejoin, then retry", and the SDK's retry loop sleeps inside one call
//     where Close could not interrupt it promptly;
//   - its zerolog logger discarded: callers log outcomes through zap,
//     and request URLs (which carry room and event IDs) stay out of logs;
//   - the access token only ever in the Authorization header (the SDK's
//     way), never in a URL.
//
// hc may be nil (a client with a 30 s timeout). userID may be "" where
// no call needs it (sending, joining); the command loop learns it with
// whoami.
func NewClient(homeserver, accessToken string, hc *http.Client) (*mautrix.Client, error) {
	cli, err := mautrix.NewClient(homeserver, "", accessToken)
	if err != nil {
		return nil, fmt.Errorf("notify: homeserver %q: %w", homeserver, err)
	}
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	cli.Client = hc
	cli.DefaultHTTPRetries = 0
	cli.Log = zerolog.Nop()
	cli.UserAgent = UserAgent
	return cli, nil
}

// Failure is what a failed call to the homeserver tells its caller.
type Failure struct {
	// Status is the HTTP status, 0 when no answer came (network error).
	Status int
	// Errcode is the Matrix errcode of the answer ("M_FORBIDDEN"), if any.
	Errcode string
	// Reason is "errcode: error" for logs, or the network error.
	Reason string
	// RetryAfter is a 429 answer's retry_after_ms (or Retry-After
	// header), zero if absent.
	RetryAfter time.Duration
}

// Explain reads err from a mautrix call. The SDK's own error text
// includes the request URL for network errors; Reason keeps only the
// operation and cause, so a token carried in a URL by some future
// change could never reach a log line.
func Explain(err error) Failure {
	var f Failure
	var he mautrix.HTTPError
	if !errors.As(err, &he) {
		f.Reason = redact(err).Error()
		return f
	}
	if he.Response != nil {
		f.Status = he.Response.StatusCode
		if s, err := strconv.Atoi(he.Response.Header.Get("Retry-After")); err == nil && s > 0 {
			f.RetryAfter = time.Duration(s) * time.Second
		}
	}
	if re := he.RespError; re != nil {
		f.Errcode = re.ErrCode
		f.Reason = re.ErrCode + ": " + re.Err
		// retry_after_ms is the spec's field
		// (https://spec.matrix.org/v1.11/client-server-api/#rate-limiting);
		// it wins over the header, as Synapse sends both.
		if ms, ok := re.ExtraData["retry_after_ms"].(float64); ok && ms > 0 {
			f.RetryAfter = time.Duration(ms) * time.Millisecond
		}
	}
	switch {
	case f.Reason != "":
	case he.WrappedError != nil:
		f.Reason = redact(he.WrappedError).Error()
	case f.Status != 0:
		f.Reason = "HTTP " + strconv.Itoa(f.Status)
	default:
		f.Reason = he.Message
	}
	return f
}

// Error is the failure as an error: "HTTP 403 M_FORBIDDEN: reason" or the
// network error.
func (f Failure) Error() string {
	if f.Status == 0 {
		return f.Reason
	}
	if f.Errcode == "" {
		return fmt.Sprintf("HTTP %d", f.Status)
	}
	return fmt.Sprintf("HTTP %d %s", f.Status, f.Reason)
}

// redact strips the URL from transport errors: it is harmless today, but
// keeping request details out of logs means a future ?access_token= never
// leaks through an error message.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}
