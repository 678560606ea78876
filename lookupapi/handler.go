// Package lookupapi serves mediaguard's JSON lookup API: the endpoint the
// Mjolnir HMA plugin (https://github.com/matrix-org/mjolnir/pull/617)
// POSTs the hashes of every media event to, and which answers "block" or
// "allow". It is a plain net/http Handler over a matcher.Matcher, so the
// Caddy adapter stays thin and the API can be tested without Caddy.
//
// The plugin treats every answer that is not a 2xx JSON with
// "action":"block" as allow, and it does not retry: each 400, 401, 413, 429
// or 503 this handler sends lets that media through unscanned. The handler
// therefore rejects only what it cannot scan, logs every rejection (rate
// limited, so a flood cannot fill the disk) and counts it in Stats.
package lookupapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/internal/apigate"
	"github.com/mediaguard/mediaguard/lookupwire"
	"github.com/mediaguard/mediaguard/matcher"
)

// DefaultMaxBodyBytes bounds a request body. The plugin's request is a few
// hundred bytes; 64 KiB leaves room for long Matrix ids without letting a
// client make the handler buffer much.
const DefaultMaxBodyBytes = 64 << 10

// DefaultMaxClients bounds the rate limiter's per-client state.
const DefaultMaxClients = apigate.DefaultMaxClients

// unavailableRetryAfter is the Retry-After sent with a 503. The plugin
// ignores it (it never retries), but other callers may honour it; a
// remote's circuit breaker stays open that long before it probes again.
var unavailableRetryAfter = matcher.DefaultBreakerOpenTimeout

// Config configures a Handler.
type Config struct {
	// Matcher answers the lookups. It should be the same instance the
	// proxy uses (a *matcher.Guard), so both share its verdict cache,
	// breakers and fail policy.
	Matcher matcher.Matcher
	// APIKey, when not empty, must accompany every request, as a bearer
	// token, as the password of HTTP Basic auth (any user name) or as the
	// api_key query parameter. The plugin has no auth setting, so the
	// last two (user:KEY@host or ?api_key=KEY in its configured URL) are
	// the only ways it can carry one.
	APIKey string
	// MaxBodyBytes bounds a request body; larger ones are answered 413.
	// 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// RateLimit is the sustained number of requests per second allowed
	// from one client; 0 disables rate limiting.
	RateLimit float64
	// RateBurst is how many requests a client may make at once before
	// RateLimit applies. 0 means RateLimit rounded up (at least 1). The
	// plugin sends at most 5 requests at once, so keep it at 5 or more.
	RateBurst int
	// ClientKey, when set, names the client a request is counted against
	// for RateLimit. The default is the remote address's IP, IPv6
	// addresses grouped by /64 since anyone holding one address holds the
	// whole /64. A server behind trusted proxies passes the real client IP
	// here (the Caddy adapter uses Caddy's client_ip).
	ClientKey func(r *http.Request) string
	// Health, when set, returns the document answered to GET and HEAD
	// (banks loaded, entry counts, breaker states; see NewHealth); it is
	// encoded as JSON. Nil answers {"status":"ok"}.
	Health func(ctx context.Context) any
	// OnAnswer, when set, is told of every request once it is answered:
	// its action, the API key check's outcome and how long it took (the
	// adapter's metrics). It runs on the request's goroutine and should
	// be quick.
	OnAnswer func(Answer)
	// OnBlock, when set, is told of every lookup answered "block", once
	// the answer is written, with the request (its eventId, roomId and
	// userId clipped as in logs) and the answer: the service links the
	// event the plugin asked about to the story of the picture in the
	// management room. It runs on the request's goroutine and must not
	// block: queue, do not act.
	OnBlock func(lookupwire.Request, lookupwire.Response)
	// Logger receives one Info line per block and Warn lines for rejected
	// or failed requests; nil logs nothing.
	Logger *zap.Logger
	// Now returns the current time; nil means time.Now. Tests set it to
	// drive the rate limiter and log throttling.
	Now func() time.Time
}

// Handler is the lookup API's http.Handler. It is safe for concurrent use.
type Handler struct {
	m         matcher.Matcher
	auth      *apigate.Authenticator // nil when no API key is configured
	maxBody   int64
	limiter   *apigate.Limiter // nil when rate limiting is off
	clientKey func(*http.Request) string
	health    func(context.Context) any
	onAnswer  func(Answer)
	onBlock   func(lookupwire.Request, lookupwire.Response)
	log       *zap.Logger
	now       func() time.Time
	warns     throttles
	stats     counters
}

// New checks cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Matcher == nil {
		return nil, errors.New("lookupapi: no matcher")
	}
	h := &Handler{
		m:         cfg.Matcher,
		maxBody:   cfg.MaxBodyBytes,
		clientKey: cfg.ClientKey,
		health:    cfg.Health,
		onAnswer:  cfg.OnAnswer,
		onBlock:   cfg.OnBlock,
		log:       cfg.Logger,
		now:       cfg.Now,
	}
	switch {
	case h.maxBody == 0:
		h.maxBody = DefaultMaxBodyBytes
	case h.maxBody < 0:
		return nil, fmt.Errorf("lookupapi: max body bytes %d is negative", cfg.MaxBodyBytes)
	}
	if h.log == nil {
		h.log = zap.NewNop()
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.clientKey == nil {
		h.clientKey = apigate.RemoteIPKey
	}
	var err error
	if h.auth, h.limiter, err = apigate.New(cfg.APIKey, cfg.RateLimit, cfg.RateBurst, DefaultMaxClients); err != nil {
		return nil, fmt.Errorf("lookupapi: %w", err)
	}
	return h, nil
}

// ServeHTTP answers POST with a lookup and GET or HEAD with the health
// document. The rate limit comes first, so guessing the API key is rate
// limited too, and the method check before auth, since a 405 reveals
// nothing.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	action, auth := h.serve(w, r)
	if h.onAnswer != nil {
		h.onAnswer(Answer{Action: action, Auth: auth, Duration: time.Since(start)})
	}
}

// serve answers the request and says what it got (an Answer's Action and
// Auth).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request) (action, auth string) {
	h.stats.requests.Add(1)
	setCommonHeaders(w.Header())
	client := h.clientKey(r)
	if h.limiter != nil {
		if ok, wait := h.limiter.Allow(client, h.now()); !ok {
			h.stats.rateLimited.Add(1)
			h.warn(warnRateLimited, "lookup request rate limited", zap.String("client", client))
			writeRateLimited(w, wait)
			return ActionRateLimited, AuthUnchecked
		}
	}
	switch r.Method {
	case http.MethodPost, http.MethodGet, http.MethodHead:
	default:
		h.stats.badRequests.Add(1)
		w.Header().Set("Allow", "GET, HEAD, POST")
		writeError(w, http.StatusMethodNotAllowed, codeUnrecognized, "method not allowed: use POST for lookups, GET for health")
		return ActionBadRequest, AuthUnchecked
	}
	auth = AuthOff
	if h.auth != nil {
		res := h.auth.Check(r)
		auth = authLabel(res)
		if res != apigate.AuthOK {
			h.stats.unauthorized.Add(1)
			// Only which kind of failure: never the key or the header.
			h.warn(warnUnauthorized, "lookup request unauthorized", zap.String("client", client), zap.String("problem", res.String()))
			writeUnauthorized(w, res)
			return ActionUnauthorized, auth
		}
	}
	if r.Method == http.MethodPost {
		return h.serveLookup(w, r, client), auth
	}
	return h.serveHealth(w, r), auth
}

// serveLookup answers one lookup.
func (h *Handler) serveLookup(w http.ResponseWriter, r *http.Request, client string) (action string) {
	req, herr := h.readRequest(w, r)
	if herr != nil {
		h.stats.badRequests.Add(1)
		h.warn(warnBadRequest, "lookup request rejected", zap.String("client", client), zap.Int("status", herr.status), zap.String("problem", herr.msg))
		writeError(w, herr.status, herr.code, herr.msg)
		return ActionBadRequest
	}
	q, err := matcher.QueryFromLookup(&req)
	if err == nil && q.Has == 0 {
		err = errNoHashes
	}
	if err != nil {
		msg := badRequestMessage(err)
		h.stats.badRequests.Add(1)
		h.warn(warnBadRequest, "lookup request rejected", zap.String("client", client), zap.Int("status", http.StatusBadRequest),
			zap.String("problem", msg), zap.String("user_id", clip(req.UserID)), zap.String("room_id", clip(req.RoomID)),
			zap.String("event_id", clip(req.EventID)))
		writeError(w, http.StatusBadRequest, codeBadJSON, msg)
		return ActionBadRequest
	}
	v, err := h.m.Match(r.Context(), q)
	if err != nil {
		// Fail-closed Guard or backend down. The plugin treats this 503,
		// like every non-2xx, as allow: fail-closed stops media at the
		// proxy, not through the plugin.
		h.stats.errors.Add(1)
		h.warn(warnMatchError, "lookup failed", zap.String("client", client), zap.Error(err),
			zap.String("user_id", clip(req.UserID)), zap.String("room_id", clip(req.RoomID)), zap.String("event_id", clip(req.EventID)))
		w.Header().Set("Retry-After", apigate.RetryAfterSeconds(unavailableRetryAfter))
		writeError(w, http.StatusServiceUnavailable, codeUnavailable, unavailableMessage(r.Context(), err))
		return ActionError
	}
	resp := matcher.LookupResponseFromVerdict(v)
	action = ActionAllow
	if resp.Action == lookupwire.ActionBlock {
		action = ActionBlock
		h.stats.blocks.Add(1)
		h.log.Info("lookup blocked media",
			zap.String("user_id", clip(req.UserID)), zap.String("room_id", clip(req.RoomID)), zap.String("event_id", clip(req.EventID)),
			zap.String("media_type", clip(req.MediaType)), zap.String("hash_type", resp.HashType), zap.String("bank", resp.Bank),
			// The plugin's notice shows the same 8 characters; the whole
			// hash stays out of logs that are shipped around.
			zap.String("matched_hash_prefix", prefix(resp.MatchedHash, 8)),
			zap.Float64("confidence", resp.Confidence), zap.String("client", client))
	} else {
		h.stats.allows.Add(1)
		if resp.Unscanned {
			h.stats.unscanned.Add(1)
			action = ActionUnscanned
		}
	}
	_ = writeJSON(w, http.StatusOK, resp) // a lookupwire.Response always encodes
	if action == ActionBlock && h.onBlock != nil {
		req.EventID, req.RoomID, req.UserID = clip(req.EventID), clip(req.RoomID), clip(req.UserID)
		h.onBlock(req, resp)
	}
	return action
}

// serveHealth answers GET and HEAD.
func (h *Handler) serveHealth(w http.ResponseWriter, r *http.Request) (action string) {
	var doc any = map[string]string{"status": HealthOK}
	if h.health != nil {
		doc = h.health(r.Context())
	}
	if err := writeJSON(w, http.StatusOK, doc); err != nil {
		h.stats.errors.Add(1)
		h.warn(warnInternal, "health document could not be encoded", zap.Error(err))
		writeError(w, http.StatusInternalServerError, codeInternal, "the health document could not be encoded")
		return ActionError
	}
	h.stats.healthChecks.Add(1)
	return ActionHealth
}

// unavailableMessage says why a lookup could not be answered without
// passing on backend detail (URLs, addresses), which goes to the log only.
func unavailableMessage(ctx context.Context, err error) string {
	switch {
	case ctx.Err() != nil:
		return "lookup abandoned: the request was cancelled"
	case errors.Is(err, matcher.ErrUnavailable):
		return "hash lists unavailable: a matching backend could not be consulted, try again later"
	}
	return "lookup failed: the hash lists could not be consulted"
}
