package homeserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// AdminConfig configures the Synapse admin API client.
type AdminConfig struct {
	// Homeserver is Synapse's base URL (admin API on the same listener or
	// a separate one), e.g. http://127.0.0.1:8008.
	Homeserver string
	// AccessToken is a Synapse admin user's token; use {env.X}.
	AccessToken string
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// Attempts is how many times a call is tried on network errors, 429
	// and 5xx (default 4).
	Attempts int
	// RetryDelay is the first backoff, doubled each retry (default 1s).
	RetryDelay time.Duration
	// HTTPClient is optional.
	HTTPClient *http.Client
}

// Admin calls Synapse's admin API. Failures are returned (and retried
// first) so the caller can record them; nothing here blocks a request.
type Admin struct {
	cfg AdminConfig
}

// ErrAdmin wraps every admin API failure.
var ErrAdmin = errors.New("homeserver: synapse admin API")

// NewAdmin validates cfg.
func NewAdmin(cfg AdminConfig) (*Admin, error) {
	u, err := url.Parse(cfg.Homeserver)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("homeserver: %q is not an http(s) URL", cfg.Homeserver)
	}
	if cfg.AccessToken == "" {
		return nil, errors.New("homeserver: the Synapse admin API needs an admin access token")
	}
	cfg.Homeserver = strings.TrimRight(cfg.Homeserver, "/")
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 4
	}
	if cfg.RetryDelay <= 0 {
		cfg.RetryDelay = time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	return &Admin{cfg: cfg}, nil
}

// QuarantineMedia quarantines one item: POST
// /_synapse/admin/v1/media/quarantine/{server}/{mediaId} with body {}.
// Since Synapse 1.128 this also covers byte-identical copies.
func (a *Admin) QuarantineMedia(ctx context.Context, server, mediaID string) error {
	_, err := a.call(ctx, http.MethodPost, "/_synapse/admin/v1/media/quarantine/"+url.PathEscape(server)+"/"+url.PathEscape(mediaID), struct{}{})
	return err
}

// UnquarantineMedia lifts the quarantine of one item: POST
// /_synapse/admin/v1/media/unquarantine/{server}/{mediaId} with body {}
// (Synapse's Media Admin API,
// https://element-hq.github.io/synapse/latest/admin_api/media_admin_api.html#remove-media-from-quarantine-by-id).
func (a *Admin) UnquarantineMedia(ctx context.Context, server, mediaID string) error {
	_, err := a.call(ctx, http.MethodPost, "/_synapse/admin/v1/media/unquarantine/"+url.PathEscape(server)+"/"+url.PathEscape(mediaID), struct{}{})
	return err
}

// QuarantineUserMedia quarantines all of a user's media: POST
// /_synapse/admin/v1/user/{userId}/media/quarantine → {"num_quarantined":N}.
func (a *Admin) QuarantineUserMedia(ctx context.Context, userID string) (int, error) {
	body, err := a.call(ctx, http.MethodPost, "/_synapse/admin/v1/user/"+url.PathEscape(userID)+"/media/quarantine", struct{}{})
	if err != nil {
		return 0, err
	}
	var out struct {
		N int `json:"num_quarantined"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return 0, fmt.Errorf("%w: quarantine answer is not JSON", ErrAdmin)
	}
	return out.N, nil
}

// SuspendUser suspends a user: PUT /_synapse/admin/v1/suspend/{userId}
// with {"suspend":true}.
func (a *Admin) SuspendUser(ctx context.Context, userID string) error {
	_, err := a.call(ctx, http.MethodPut, "/_synapse/admin/v1/suspend/"+url.PathEscape(userID), map[string]bool{"suspend": true})
	return err
}

// IsAdmin reports whether userID is a server admin: GET
// /_synapse/admin/v1/users/{userId}/admin → {"admin":true}
// (https://element-hq.github.io/synapse/latest/admin_api/user_admin_api.html#get-whether-a-user-is-a-server-administrator-or-not).
// Only an admin may ask, so for a token that is not an admin's Synapse
// answers 403 M_FORBIDDEN, returned as an error wrapping ErrAdmin and a
// *StatusError; a homeserver without Synapse's admin API (Dendrite)
// answers 404 M_UNRECOGNIZED. Pass the token's own user (UserOf) to check
// the token.
func (a *Admin) IsAdmin(ctx context.Context, userID string) (bool, error) {
	body, err := a.call(ctx, http.MethodGet, "/_synapse/admin/v1/users/"+url.PathEscape(userID)+"/admin", nil)
	if err != nil {
		return false, err
	}
	var out struct {
		Admin *bool `json:"admin"`
	}
	if json.Unmarshal(body, &out) != nil || out.Admin == nil {
		return false, fmt.Errorf("%w: the users/admin answer has no \"admin\"", ErrAdmin)
	}
	return *out.Admin, nil
}

func (a *Admin) call(ctx context.Context, method, path string, body any) ([]byte, error) {
	var payload []byte // none for a GET
	if body != nil {
		payload, _ = json.Marshal(body)
	}
	delay := a.cfg.RetryDelay
	var last error
	for attempt := 1; attempt <= a.cfg.Attempts; attempt++ {
		out, retry, err := a.once(ctx, method, path, payload)
		if err == nil {
			return out, nil
		}
		last = err
		if !retry || attempt == a.cfg.Attempts {
			break
		}
		select {
		case <-time.After(delay):
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %s %s: %v (after %d attempts: %v)", ErrAdmin, method, path, ctx.Err(), attempt, last)
		}
		delay *= 2
	}
	return nil, last
}

// once makes one attempt; retry says whether another may succeed.
func (a *Admin) once(ctx context.Context, method, path string, payload []byte) (body []byte, retry bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, a.cfg.Homeserver+path, bytes.NewReader(payload))
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrAdmin, err)
	}
	req.Header.Set("Authorization", "Bearer "+a.cfg.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := a.cfg.HTTPClient.Do(req)
	if err != nil {
		return nil, true, fmt.Errorf("%w: %s %s: %s", ErrAdmin, method, path, redact(err.Error(), a.cfg.AccessToken))
	}
	defer resp.Body.Close()
	// A page of the quarantine feed (100 records of IDs up to 255 bytes)
	// may approach 64 KiB; nothing the admin API answers comes near 1 MiB.
	body, _ = io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return body, false, nil
	}
	retry = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	bare, _, _ := strings.Cut(path, "?")
	return nil, retry, fmt.Errorf("%w: %w", ErrAdmin, statusError(method, bare, resp.StatusCode, body))
}
