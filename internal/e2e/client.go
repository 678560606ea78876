package e2e

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// client is shared by all helpers; loopback only, so never a proxy.
var client = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8},
}

// User is a registered account with a logged-in device.
type User struct {
	ID          string // @localpart:localhost
	AccessToken string
	DeviceID    string
	HS          *Dendrite
}

// RegisterUser creates an account through the Synapse-compatible
// shared-secret registration API (/_synapse/admin/v1/register: GET a nonce,
// POST with an HMAC-SHA1 over nonce\0user\0password\0admin|notadmin).
// Dendrite wants passwords of at least 8 characters (else 400 M_WEAK_PASSWORD).
func (d *Dendrite) RegisterUser(t T, localpart, password string, admin bool) *User {
	t.Helper()
	const path = "/_synapse/admin/v1/register"
	status, body := doJSON(t, http.MethodGet, d.URL+path, "", nil)
	var n struct {
		Nonce string `json:"nonce"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &n) != nil || n.Nonce == "" {
		t.Fatalf("e2e: GET %s: %d %s", path, status, body)
	}
	kind := "notadmin"
	if admin {
		kind = "admin"
	}
	mac := hmac.New(sha1.New, []byte(d.secret))
	mac.Write([]byte(strings.Join([]string{n.Nonce, localpart, password, kind}, "\x00")))
	status, body = doJSON(t, http.MethodPost, d.URL+path, "", map[string]any{
		"nonce": n.Nonce, "username": localpart, "password": password,
		"admin": admin, "mac": hex.EncodeToString(mac.Sum(nil)),
	})
	var r struct {
		UserID      string `json:"user_id"`
		AccessToken string `json:"access_token"`
		DeviceID    string `json:"device_id"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &r) != nil || r.AccessToken == "" {
		t.Fatalf("e2e: registering %q: %d %s", localpart, status, body)
	}
	return &User{ID: r.UserID, AccessToken: r.AccessToken, DeviceID: r.DeviceID, HS: d}
}

// Whoami returns the user ID the homeserver reports for u's token.
func (u *User) Whoami(t T) string {
	t.Helper()
	var r struct {
		UserID string `json:"user_id"`
	}
	u.mustJSON(t, http.MethodGet, "/_matrix/client/v3/account/whoami", nil, &r)
	return r.UserID
}

// Upload POSTs body to baseURL/_matrix/media/v3/upload?filename=... with u's
// token and an exact Content-Length. It does not judge the answer: a
// blocked upload is a normal outcome. contentURI is the "content_uri" of a
// 200 answer, else "".
func (u *User) Upload(t T, baseURL, contentType, filename string, body []byte) (status int, respBody []byte, contentURI string) {
	t.Helper()
	target := strings.TrimRight(baseURL, "/") + "/_matrix/media/v3/upload"
	if filename != "" {
		target += "?filename=" + url.QueryEscape(filename)
	}
	req, err := http.NewRequest(http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+u.AccessToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	status, respBody, _ = send(t, req)
	if status == http.StatusOK {
		var r struct {
			ContentURI string `json:"content_uri"`
		}
		if err := json.Unmarshal(respBody, &r); err != nil {
			t.Fatalf("e2e: upload answer is not JSON: %s", respBody)
		}
		contentURI = r.ContentURI
	}
	return status, respBody, contentURI
}

// Download GETs baseURL+path (any path, e.g. from MediaPath), with
// "Authorization: Bearer token" when token is not empty. Only transport
// errors fail the test.
func Download(t T, baseURL, path string, token string) (status int, body []byte, header http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, strings.TrimRight(baseURL, "/")+path, nil)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}

// MediaPath turns "mxc://server/id" into "server/id", to append to a
// download prefix such as "/_matrix/client/v1/media/download/".
func MediaPath(t T, contentURI string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(contentURI, "mxc://")
	if server, id, ok2 := strings.Cut(rest, "/"); !ok || !ok2 || server == "" || id == "" || strings.Contains(id, "/") {
		t.Fatalf("e2e: not an mxc URI: %q", contentURI)
	}
	return rest
}

// CreateRoom creates a private room owned by u and returns its ID.
func (u *User) CreateRoom(t T) string {
	t.Helper()
	var r struct {
		RoomID string `json:"room_id"`
	}
	u.mustJSON(t, http.MethodPost, "/_matrix/client/v3/createRoom", map[string]any{"preset": "private_chat"}, &r)
	return r.RoomID
}

// Invite invites userID into roomID.
func (u *User) Invite(t T, roomID, userID string) {
	t.Helper()
	u.mustJSON(t, http.MethodPost, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/invite", map[string]any{"user_id": userID}, nil)
}

// Join joins roomID (an ID or alias).
func (u *User) Join(t T, roomID string) {
	t.Helper()
	u.mustJSON(t, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(roomID), map[string]any{}, nil)
}

var txnCounter atomic.Int64

// SendMessage sends an m.room.message with the given content (e.g.
// {"msgtype":"m.notice","body":"..."}) and returns its event ID.
func (u *User) SendMessage(t T, roomID string, content map[string]any) string {
	t.Helper()
	txn := fmt.Sprintf("e2e-%d-%d", time.Now().UnixNano(), txnCounter.Add(1))
	var r struct {
		EventID string `json:"event_id"`
	}
	u.mustJSON(t, http.MethodPut, "/_matrix/client/v3/rooms/"+url.PathEscape(roomID)+"/send/m.room.message/"+txn, content, &r)
	return r.EventID
}

// Event is the part of a room event the tests look at.
type Event struct {
	Type           string         `json:"type"`
	EventID        string         `json:"event_id"`
	Sender         string         `json:"sender"`
	OriginServerTS int64          `json:"origin_server_ts"`
	Content        map[string]any `json:"content"`
	// Redacts is the event a redaction redacts (top level before room
	// version 11, https://spec.matrix.org/v1.11/rooms/v11/#redactions;
	// from v11 on it is in Content).
	Redacts string `json:"redacts,omitempty"`
}

// Messages returns up to limit of the room's latest events, newest first
// (GET /rooms/{roomId}/messages?dir=b).
func (u *User) Messages(t T, roomID string, limit int) []Event {
	t.Helper()
	var r struct {
		Chunk []Event `json:"chunk"`
	}
	u.mustJSON(t, http.MethodGet, fmt.Sprintf("/_matrix/client/v3/rooms/%s/messages?dir=b&limit=%d", url.PathEscape(roomID), limit), nil, &r)
	return r.Chunk
}

// Notices returns the bodies of the m.notice messages among the room's
// latest limit events, newest first.
func (u *User) Notices(t T, roomID string, limit int) []string {
	t.Helper()
	var out []string
	for _, ev := range u.Messages(t, roomID, limit) {
		if ev.Type == "m.room.message" && ev.Content["msgtype"] == "m.notice" {
			body, _ := ev.Content["body"].(string)
			out = append(out, body)
		}
	}
	return out
}

// Do sends an authenticated JSON request (body may be nil) to the
// homeserver's path and returns the status and body, for endpoints the
// helpers above do not cover.
func (u *User) Do(t T, method, path string, body any) (int, []byte) {
	t.Helper()
	return doJSON(t, method, u.HS.URL+path, u.AccessToken, body)
}

// mustJSON is Do that requires a 200 and decodes the answer into out (if
// not nil).
func (u *User) mustJSON(t T, method, path string, body, out any) {
	t.Helper()
	status, resp := u.Do(t, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("e2e: %s %s as %s: %d %s", method, path, u.ID, status, resp)
	}
	if out != nil {
		if err := json.Unmarshal(resp, out); err != nil {
			t.Fatalf("e2e: %s %s: decoding %s: %v", method, path, resp, err)
		}
	}
}

func doJSON(t T, method, target, token string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("e2e: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, target, rd)
	if err != nil {
		t.Fatalf("e2e: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	status, resp, _ := send(t, req)
	return status, resp
}

func send(t T, req *http.Request) (int, []byte, http.Header) {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("e2e: %s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("e2e: %s %s: reading body: %v", req.Method, req.URL, err)
	}
	return resp.StatusCode, body, resp.Header
}
