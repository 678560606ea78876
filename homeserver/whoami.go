// Package homeserver talks to the homeserver behind mediaguard: who an
// access token belongs to (so a block names its uploader) and Synapse's
// admin API (quarantine, suspend). It is plain net/http, part of the act
// stage, and must not import the proxy, the matcher or Caddy.
package homeserver

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Unknown is the user recorded when the uploader cannot be resolved.
const Unknown = "unknown"

// TokenFrom returns the request's access token: the Authorization bearer
// token, or the legacy ?access_token= parameter.
func TokenFrom(r *http.Request) string {
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return r.URL.Query().Get("access_token")
}

// Whoami resolves access tokens to Matrix user IDs with
// GET /_matrix/client/v3/account/whoami, caching answers under a SHA-256
// of the token (never the token itself) for a short TTL in a bounded LRU.
//
// Cache design: a bounded LRU (golang-lru's simplelru) whose entries carry
// the time they were stored, checked against the TTL on read with w.now.
// Tokens come from clients, so a full cache must forget the least recently
// used answer rather than refuse new ones (go-cache, the Guard's design,
// can only refuse); the expirable LRU of the same module would keep a
// goroutine per Whoami running forever (its v2 never stops it), one more
// at every config reload. w.mu serialises it.
type Whoami struct {
	base    string
	client  *http.Client
	ttl     time.Duration
	timeout time.Duration

	mu    sync.Mutex
	cache *simplelru.LRU[[32]byte, whoEntry]
	now   func() time.Time
}

type whoEntry struct {
	user string
	at   time.Time
}

// WhoamiConfig configures a Whoami.
type WhoamiConfig struct {
	// Homeserver is the client API base URL, e.g. http://127.0.0.1:8008.
	Homeserver string
	// TTL is how long an answer is trusted (default 5 minutes: a logged
	// out token stops resolving soon after).
	TTL time.Duration
	// Timeout bounds one lookup (default 2s).
	Timeout time.Duration
	// MaxEntries bounds the cache (default 10000).
	MaxEntries int
	// HTTPClient is optional.
	HTTPClient *http.Client
}

// NewWhoami returns a resolver.
func NewWhoami(cfg WhoamiConfig) (*Whoami, error) {
	u, err := url.Parse(cfg.Homeserver)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("homeserver: %q is not an http(s) URL", cfg.Homeserver)
	}
	w := &Whoami{base: strings.TrimRight(cfg.Homeserver, "/"), client: cfg.HTTPClient, ttl: cfg.TTL, timeout: cfg.Timeout,
		now: time.Now}
	if w.client == nil {
		w.client = http.DefaultClient
	}
	if w.ttl <= 0 {
		w.ttl = 5 * time.Minute
	}
	if w.timeout <= 0 {
		w.timeout = 2 * time.Second
	}
	entries := cfg.MaxEntries
	if entries <= 0 {
		entries = 10000
	}
	if w.cache, err = simplelru.NewLRU[[32]byte, whoEntry](entries, nil); err != nil {
		return nil, err // cannot happen: entries > 0
	}
	return w, nil
}

// User returns the user ID for token, or Unknown with the reason. It never
// returns an error: a failure to resolve must not change a verdict.
func (w *Whoami) User(ctx context.Context, token string) (user string, why string) {
	if token == "" {
		return Unknown, "no access token"
	}
	key := sha256.Sum256([]byte(token))
	if u, ok := w.cached(key); ok {
		return u, ""
	}
	ctx, cancel := context.WithTimeout(ctx, w.timeout)
	defer cancel()
	u, err := UserOf(ctx, w.client, w.base, token)
	if err != nil {
		return Unknown, err.Error()
	}
	w.store(key, u)
	return u, ""
}

// UserOf asks the homeserver at base whose token is, uncached: GET
// /_matrix/client/v3/account/whoami
// (https://spec.matrix.org/v1.11/client-server-api/#get_matrixclientv3accountwhoami).
// A rejected token is a *StatusError (401 M_UNKNOWN_TOKEN). A nil client is
// http.DefaultClient; the token never appears in an error.
func UserOf(ctx context.Context, c *http.Client, base, token string) (string, error) {
	var out struct {
		UserID string `json:"user_id"`
	}
	if err := getJSON(ctx, c, base, "/_matrix/client/v3/account/whoami", token, &out); err != nil {
		return "", err
	}
	if !strings.HasPrefix(out.UserID, "@") {
		return "", errors.New("whoami answered no user_id")
	}
	return out.UserID, nil
}

func (w *Whoami) cached(key [32]byte) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	ent, ok := w.cache.Get(key)
	if !ok {
		return "", false
	}
	if w.now().Sub(ent.at) > w.ttl {
		w.cache.Remove(key)
		return "", false
	}
	return ent.user, true
}

func (w *Whoami) store(key [32]byte, user string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cache.Add(key, whoEntry{user: user, at: w.now()})
}

// redact removes a token from an error string (net/url errors quote URLs).
func redact(s, token string) string {
	if token == "" {
		return s
	}
	return strings.ReplaceAll(s, token, "REDACTED")
}
