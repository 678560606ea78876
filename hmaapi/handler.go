// Package hmaapi serves the subset of ThreatExchange HMA 2.0's REST API
// (facebook/ThreatExchange, hasher-matcher-actioner/src/OpenMediaMatch)
// that HMA's clients call, answered by mediaguard itself, so that
// mediaguard can be their HMA base URL. The client it is built for is the
// Matrix.org Foundation's policy server (content/hma.go in
// https://github.com/matrix-org/policyserv), which sends every picture and
// video to POST /h/hash and looks up each returned signal with GET
// /m/lookup, taking every key of the answer as a matched bank.
//
//   - POST /h/hash hashes one multipart file field, photo or video, with
//     the proxy's own spooling and hashing (worker processes included):
//     {"pdq":"<64 hex>"} for a photo (mediaguard's stored-form PDQ; "" below
//     min_pdq_quality), {"video_md5":"<32 hex>"} for a video. A "photo"
//     that is no picture (policyserv sends PDFs and audio as photos) gets
//     its exact digests, {"md5","sha1","sha256"}, rather than HMA's error.
//     It never fetches a URL (HMA's ?url= would let any key holder make
//     this server fetch whatever it names).
//   - GET /m/lookup?signal_type=…&signal=…[&banks=A,B] asks the proxy's own
//     matcher (local banks, then remote backends behind the cache, breakers
//     and fail policy) and answers {"BANK":[{"bank_content_id":N,
//     "distance":"D"}]}, {} for no match.
//   - GET /c/banks, GET /m/index/status, /livez, /readyz and /status as HMA
//     shapes them.
//
// It is a plain net/http Handler: the Caddy adapter stays thin and the
// API is tested without Caddy. It must not import Caddy, and, being a
// serving stage, nothing that acts (actions, notify, homeserver, audit).
package hmaapi

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/internal/apigate"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// Config configures a Handler.
type Config struct {
	// Matcher answers /m/lookup. It should be the proxy's own
	// *matcher.Guard, so lookups share its verdict cache, breakers and
	// fail policy.
	Matcher matcher.Matcher
	// Proxy hashes /h/hash uploads exactly as it hashes media it proxies
	// (its spool, hashing slots and worker processes). Without it /h/hash
	// answers 503.
	Proxy *mediaproxy.Proxy
	// Local lists the local banks for /c/banks, /m/index/status and
	// readiness (a *matcher.Local); nil lists none and is always ready.
	Local interface{ Status() []matcher.BankStatus }
	// Remote lists the banks remote backends are restricted to, for
	// /c/banks (a *matcher.Guard); nil lists none.
	Remote interface{ RemoteBanks() map[string][]string }
	// MinPDQQuality is the PDQ quality below which /h/hash answers "" (a
	// hash nobody matches), as HMA does below its QUALITY_THRESHOLD of
	// 50; nil means matcher.DefaultMinPDQQuality. Set it to the banks'
	// min_pdq_quality so /h/hash hands out what the proxy would match.
	MinPDQQuality *int
	// APIKey, when not empty, must accompany every request but the health
	// routes: as a bearer token (what HMA clients send), the Basic-auth
	// password or ?api_key=.
	APIKey string
	// MaxBodyBytes bounds an /h/hash body, multipart framing included;
	// larger ones are answered 413. 0 means the proxy's max_upload_size.
	MaxBodyBytes int64
	// RateLimit is the sustained number of requests per second allowed
	// from one client; 0 disables rate limiting. policyserv makes one
	// /h/hash and one /m/lookup per media, and a message may carry a
	// picture and its thumbnail.
	RateLimit float64
	// RateBurst is how many requests a client may make at once before
	// RateLimit applies. 0 means RateLimit rounded up (at least 1).
	RateBurst int
	// ClientKey, when set, names the client a request is counted against
	// for RateLimit; the default is the remote IP (IPv6 by /64). The Caddy
	// adapter passes Caddy's client_ip.
	ClientKey func(r *http.Request) string
	// OnAnswer, when set, is told of every request once it is answered
	// (the adapter's metrics). It runs on the request's goroutine.
	OnAnswer func(Answer)
	// Logger receives one Info line per match and throttled Warn lines
	// for refused or failed requests; nil logs nothing.
	Logger *zap.Logger
	// Now returns the current time; nil means time.Now (tests drive the
	// rate limiter and log throttling with it).
	Now func() time.Time
}

// Handler is the HMA-compatible http.Handler. It is safe for concurrent
// use.
type Handler struct {
	m          matcher.Matcher
	proxy      *mediaproxy.Proxy
	local      interface{ Status() []matcher.BankStatus }
	remote     interface{ RemoteBanks() map[string][]string }
	minQuality int
	auth       *apigate.Authenticator // nil when no API key is configured
	maxBody    int64
	limiter    *apigate.Limiter // nil when rate limiting is off
	clientKey  func(*http.Request) string
	onAnswer   func(Answer)
	log        *zap.Logger
	now        func() time.Time
	warns      [numWarnKinds]apigate.Throttle
}

// New checks cfg and returns a Handler.
func New(cfg Config) (*Handler, error) {
	if cfg.Matcher == nil {
		return nil, errors.New("hmaapi: no matcher")
	}
	h := &Handler{
		m: cfg.Matcher, proxy: cfg.Proxy, local: cfg.Local, remote: cfg.Remote,
		minQuality: matcher.DefaultMinPDQQuality, maxBody: cfg.MaxBodyBytes,
		clientKey: cfg.ClientKey, onAnswer: cfg.OnAnswer, log: cfg.Logger, now: cfg.Now,
	}
	if cfg.MinPDQQuality != nil {
		h.minQuality = *cfg.MinPDQQuality
		if h.minQuality < 0 || h.minQuality > 100 {
			return nil, fmt.Errorf("hmaapi: minimum pdq quality %d out of range 0..100", h.minQuality)
		}
	}
	switch {
	case h.maxBody < 0:
		return nil, fmt.Errorf("hmaapi: max body bytes %d is negative", cfg.MaxBodyBytes)
	case h.maxBody == 0 && h.proxy != nil:
		h.maxBody = h.proxy.MaxUploadSize()
	case h.maxBody == 0:
		h.maxBody = mediaproxy.DefaultMaxUploadSize
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
	if h.auth, h.limiter, err = apigate.New(cfg.APIKey, cfg.RateLimit, cfg.RateBurst, apigate.DefaultMaxClients); err != nil {
		return nil, fmt.Errorf("hmaapi: %w", err)
	}
	return h, nil
}

// route is one served path: its Route label, the methods it takes, and
// whether it needs the API key.
type route struct {
	name    string
	methods string // for Allow
	get     bool   // GET and HEAD
	post    bool
	open    bool // served without the API key
	serve   func(h *Handler, w http.ResponseWriter, r *http.Request, client string) string
	// lookupShape: refusals that give no verdict are answered as a list
	// (writeNoVerdict), so a client that does not check the status
	// cannot read them as "no match".
	lookupShape bool
}

// allows reports whether the route serves method (HEAD wherever GET is,
// as Flask does).
func (rt *route) allows(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead:
		return rt.get
	case http.MethodPost:
		return rt.post
	}
	return false
}

// routes are HMA's paths this handler serves, under the site root as
// under an HMA base URL.
var routes = map[string]*route{
	"/h/hash":         {name: RouteHash, methods: "GET, HEAD, POST", get: true, post: true, serve: (*Handler).serveHash},
	"/m/lookup":       {name: RouteLookup, methods: "GET, HEAD", get: true, serve: (*Handler).serveLookup, lookupShape: true},
	"/c/banks":        {name: RouteBanks, methods: "GET, HEAD", get: true, serve: (*Handler).serveBanks},
	"/m/index/status": {name: RouteIndexStatus, methods: "GET, HEAD", get: true, serve: (*Handler).serveIndexStatus},
	"/livez":          {name: RouteHealth, methods: "GET, HEAD", get: true, open: true, serve: (*Handler).serveLive},
	"/readyz":         {name: RouteHealth, methods: "GET, HEAD", get: true, open: true, serve: (*Handler).serveReady},
	"/status":         {name: RouteHealth, methods: "GET, HEAD", get: true, open: true, serve: (*Handler).serveStatus},
}

// ServeHTTP answers one request. The rate limit comes first, so guessing
// the API key is rate limited too; an unknown path or method is refused
// before the key is checked, since that reveals nothing.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt := routes[r.URL.Path]
	a := Answer{Route: RouteOther, Auth: AuthUnchecked}
	if rt != nil {
		a.Route = rt.name
	}
	a.Outcome, a.Auth = h.serve(w, r, rt, a.Auth)
	if h.onAnswer != nil {
		a.Duration = time.Since(start)
		h.onAnswer(a)
	}
}

// serve answers the request and says what it got (an Answer's Outcome and
// Auth).
func (h *Handler) serve(w http.ResponseWriter, r *http.Request, rt *route, auth string) (outcome, _ string) {
	client := h.clientKey(r)
	refuse := writeMessage
	if rt != nil && rt.lookupShape {
		refuse = writeNoVerdict
	}
	if h.limiter != nil {
		if ok, wait := h.limiter.Allow(client, h.now()); !ok {
			h.warn(warnRateLimited, "hma request rate limited", zap.String("client", client))
			retryAfter(w, wait)
			refuse(w, http.StatusTooManyRequests, "too many requests: slow down")
			return OutcomeRateLimited, auth
		}
	}
	if rt == nil {
		writeMessage(w, http.StatusNotFound, "not found: mediaguard serves HMA's POST /h/hash, GET /m/lookup, /c/banks, /m/index/status, /livez, /readyz and /status")
		return OutcomeBadRequest, auth
	}
	if !rt.allows(r.Method) {
		w.Header().Set("Allow", rt.methods)
		// Flask's own text for a 405.
		refuse(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
		return OutcomeBadRequest, auth
	}
	if !rt.open {
		auth = AuthOff
		if h.auth != nil {
			res := h.auth.Check(r)
			auth = res.Label()
			if res != apigate.AuthOK {
				// Only which kind of failure: never the key or the header.
				h.warn(warnUnauthorized, "hma request unauthorized", zap.String("client", client), zap.String("problem", res.String()))
				w.Header().Set("WWW-Authenticate", apigate.Challenge)
				msg := "an api key is required: send it as a bearer token"
				if res == apigate.AuthWrong {
					msg = "the api key is not valid"
				}
				refuse(w, http.StatusUnauthorized, msg)
				return OutcomeUnauthorized, auth
			}
		}
	}
	return rt.serve(h, w, r, client), auth
}

// Kinds of warning, each throttled on its own so a flood of one kind does
// not hide another.
const (
	warnBadRequest = iota
	warnUnauthorized
	warnRateLimited
	warnUnavailable
	warnUnscanned
	numWarnKinds
)

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
