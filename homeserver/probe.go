package homeserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// The probes below answer what an operator checks by hand before trusting
// a deployment (`caddy mediaguard doctor`): does the homeserver answer, and
// which server is it. None needs a token.

// StatusError is a homeserver's non-2xx answer, with the Matrix error
// code when the body carried one ("Standard error response",
// https://spec.matrix.org/v1.11/client-server-api/#standard-error-response).
type StatusError struct {
	// Method and Path are the request's (Path without the query).
	Method, Path string
	// Status is the HTTP status.
	Status int
	// Errcode and Message are the body's errcode and error, if any.
	Errcode, Message string
}

func (e *StatusError) Error() string {
	return strings.TrimSpace(fmt.Sprintf("%s %s answered %d %s %s", e.Method, e.Path, e.Status, e.Errcode, e.Message))
}

// Versions returns the client-server API versions the homeserver at base
// supports: GET /_matrix/client/versions, which needs no token and which
// every homeserver serves on its client listener
// (https://spec.matrix.org/v1.11/client-server-api/#get_matrixclientversions).
// A nil client is http.DefaultClient.
func Versions(ctx context.Context, c *http.Client, base string) ([]string, error) {
	var out struct {
		Versions []string `json:"versions"`
	}
	if err := getJSON(ctx, c, base, "/_matrix/client/versions", "", &out); err != nil {
		return nil, err
	}
	if len(out.Versions) == 0 {
		return nil, fmt.Errorf("GET /_matrix/client/versions: no versions in the answer (not a Matrix homeserver?)")
	}
	return out.Versions, nil
}

// KeyServerName returns the server_name the homeserver at base publishes
// with its signing keys: GET /_matrix/key/v2/server
// (https://spec.matrix.org/v1.11/server-server-api/#get_matrixkeyv2server).
// It is the authoritative name, but a key endpoint is served with the
// federation API, which may be on another listener or turned off (a
// *StatusError with Status 404 then): ServerNameOf a user ID is the
// fallback.
func KeyServerName(ctx context.Context, c *http.Client, base string) (string, error) {
	var out struct {
		ServerName string `json:"server_name"`
	}
	if err := getJSON(ctx, c, base, "/_matrix/key/v2/server", "", &out); err != nil {
		return "", err
	}
	if out.ServerName == "" {
		return "", fmt.Errorf("GET /_matrix/key/v2/server: no server_name in the answer")
	}
	return out.ServerName, nil
}

// ServerNameOf returns the server name of a user ID: what follows the
// first colon of @localpart:server_name. A localpart never holds a colon
// and a server name may (a port, an IPv6 literal), so the first colon is
// the separator (https://spec.matrix.org/v1.11/appendices/#user-identifiers).
// It returns "" for anything that is not a user ID.
func ServerNameOf(userID string) string {
	if !strings.HasPrefix(userID, "@") {
		return ""
	}
	_, server, ok := strings.Cut(userID, ":")
	if !ok {
		return ""
	}
	return server
}

// getJSON GETs base+path (with token as bearer when set) and decodes a 200
// answer into out. A token never appears in the error.
func getJSON(ctx context.Context, c *http.Client, base, path, token string, out any) error {
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		// The cause alone: the URL is known to the caller and its
		// text is best kept out of messages.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %s", path, redact(err.Error(), token))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return statusError(http.MethodGet, path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("GET %s: the answer is not JSON: %v", path, err)
	}
	return nil
}

// statusError reads a Matrix error body into a *StatusError.
func statusError(method, path string, status int, body []byte) *StatusError {
	var e struct {
		Errcode string `json:"errcode"`
		Error   string `json:"error"`
	}
	json.Unmarshal(body, &e)
	return &StatusError{Method: method, Path: path, Status: status, Errcode: e.Errcode, Message: e.Error}
}
