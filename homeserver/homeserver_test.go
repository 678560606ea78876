package homeserver

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeSynapseAdmin implements the Synapse admin endpoints mediaguard uses,
// as documented (reference/matrix.md, Synapse admin API): a Bearer admin
// token; POST /_synapse/admin/v1/media/quarantine/{server}/{mediaId} with
// body {} → 200 {}; POST /_synapse/admin/v1/user/{userId}/media/quarantine
// → 200 {"num_quarantined":N}; PUT /_synapse/admin/v1/suspend/{userId}
// with {"suspend":true} → 200 {}; a non-admin token → 403 M_FORBIDDEN;
// unknown media → 404 M_NOT_FOUND. It can fail the next N calls with 502
// to exercise retries, and serves whoami for user tokens.
type fakeSynapseAdmin struct {
	*httptest.Server
	token    string
	failNext atomic.Int32
	mu       sync.Mutex
	calls    []string
}

func newFakeSynapseAdmin(t *testing.T) *fakeSynapseAdmin {
	f := &fakeSynapseAdmin{token: "admin-secret-token"}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.calls = append(f.calls, r.Method+" "+r.URL.EscapedPath())
		f.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/_matrix/client/v3/account/whoami" {
			if r.Header.Get("Authorization") == "Bearer user-token" {
				io.WriteString(w, `{"user_id":"@uploader:example.org","device_id":"D"}`)
				return
			}
			w.WriteHeader(401)
			io.WriteString(w, `{"errcode":"M_UNKNOWN_TOKEN","error":"Unknown token"}`)
			return
		}
		if f.failNext.Add(-1) >= 0 {
			w.WriteHeader(502)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+f.token {
			w.WriteHeader(403)
			io.WriteString(w, `{"errcode":"M_FORBIDDEN","error":"You are not a server admin"}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/_synapse/admin/v1/media/quarantine/"):
			if string(body) != "{}" {
				w.WriteHeader(400)
				return
			}
			if strings.HasSuffix(r.URL.Path, "/missing") {
				w.WriteHeader(404)
				io.WriteString(w, `{"errcode":"M_NOT_FOUND","error":"Unknown media"}`)
				return
			}
			io.WriteString(w, "{}")
		case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/media/quarantine") && strings.HasPrefix(r.URL.Path, "/_synapse/admin/v1/user/"):
			io.WriteString(w, `{"num_quarantined":3}`)
		case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/_synapse/admin/v1/suspend/"):
			var b struct{ Suspend bool }
			if json.Unmarshal(body, &b) != nil || !b.Suspend {
				w.WriteHeader(400)
				return
			}
			io.WriteString(w, "{}")
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
		}
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSynapseAdmin) lastCall() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[len(f.calls)-1]
}

func TestAdminCalls(t *testing.T) {
	f := newFakeSynapseAdmin(t)
	a, err := NewAdmin(AdminConfig{Homeserver: f.URL, AccessToken: f.token, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.QuarantineMedia(ctx, "example.org", "abcDEF123"); err != nil {
		t.Fatal(err)
	}
	if got := f.lastCall(); got != "POST /_synapse/admin/v1/media/quarantine/example.org/abcDEF123" {
		t.Fatalf("path %q", got)
	}
	n, err := a.QuarantineUserMedia(ctx, "@bad:example.org")
	if err != nil || n != 3 {
		t.Fatalf("user quarantine: %d %v", n, err)
	}
	if got := f.lastCall(); got != "POST /_synapse/admin/v1/user/@bad:example.org/media/quarantine" {
		t.Fatalf("path %q", got)
	}
	if err := a.SuspendUser(ctx, "@bad:example.org"); err != nil {
		t.Fatal(err)
	}
}

func TestAdminRetriesAndFailures(t *testing.T) {
	f := newFakeSynapseAdmin(t)
	a, _ := NewAdmin(AdminConfig{Homeserver: f.URL, AccessToken: f.token, RetryDelay: time.Millisecond, Attempts: 3})
	ctx := context.Background()
	f.failNext.Store(2)
	if err := a.QuarantineMedia(ctx, "example.org", "x"); err != nil {
		t.Fatalf("two 502s then success must succeed: %v", err)
	}
	f.failNext.Store(5)
	err := a.QuarantineMedia(ctx, "example.org", "x")
	if !errors.Is(err, ErrAdmin) || !strings.Contains(err.Error(), "502") {
		t.Fatalf("persistent 502: %v", err)
	}
	f.failNext.Store(0)
	before := len(f.calls)
	err = a.QuarantineMedia(ctx, "example.org", "missing")
	if err == nil || !strings.Contains(err.Error(), "M_NOT_FOUND") || len(f.calls)-before != 1 {
		t.Fatalf("404 must fail at once without retries: %v (%d calls)", err, len(f.calls)-before)
	}
	bad, _ := NewAdmin(AdminConfig{Homeserver: f.URL, AccessToken: "not-admin", RetryDelay: time.Millisecond})
	if err := bad.SuspendUser(ctx, "@u:example.org"); err == nil || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), "not-admin") {
		t.Fatalf("non-admin token: %v", err)
	}
	// A dead server: the error never carries the token.
	dead, _ := NewAdmin(AdminConfig{Homeserver: "http://127.0.0.1:1", AccessToken: "tok-should-not-leak", RetryDelay: time.Millisecond, Attempts: 2})
	if err := dead.QuarantineMedia(ctx, "s", "i"); err == nil || strings.Contains(err.Error(), "tok-should-not-leak") {
		t.Fatalf("dead server: %v", err)
	}
	if _, err := NewAdmin(AdminConfig{Homeserver: "ftp://x", AccessToken: "t"}); err == nil {
		t.Fatal("bad URL accepted")
	}
	if _, err := NewAdmin(AdminConfig{Homeserver: f.URL}); err == nil {
		t.Fatal("missing token accepted")
	}
}

func TestWhoami(t *testing.T) {
	f := newFakeSynapseAdmin(t)
	w, err := NewWhoami(WhoamiConfig{Homeserver: f.URL, TTL: time.Minute, MaxEntries: 2})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if u, why := w.User(ctx, "user-token"); u != "@uploader:example.org" || why != "" {
		t.Fatalf("got %q %q", u, why)
	}
	calls := len(f.calls)
	w.User(ctx, "user-token")
	if len(f.calls) != calls {
		t.Fatal("second lookup was not cached")
	}
	if u, why := w.User(ctx, "bad-token"); u != Unknown || !strings.Contains(why, "401") {
		t.Fatalf("bad token: %q %q", u, why)
	}
	if u, _ := w.User(ctx, ""); u != Unknown {
		t.Fatal("empty token resolved")
	}
	// The cache holds hashes of tokens, never tokens.
	for _, k := range w.cache.Keys() {
		if strings.Contains(string(k[:]), "user-token") {
			t.Fatal("token stored in the cache")
		}
	}
	// TTL expiry.
	w.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	w.User(ctx, "user-token")
	if len(f.calls) == calls {
		t.Fatal("expired entry was served")
	}
}

func TestTokenFrom(t *testing.T) {
	for _, tc := range []struct {
		auth, query, want string
	}{
		{"Bearer abc", "", "abc"},
		{"bearer  abc ", "", "abc"},
		{"", "access_token=xyz", "xyz"},
		{"Basic Zm9v", "", ""},
	} {
		r := httptest.NewRequest("GET", "/_matrix/media/v3/upload?"+tc.query, nil)
		if tc.auth != "" {
			r.Header.Set("Authorization", tc.auth)
		}
		if got := TokenFrom(r); got != tc.want {
			t.Errorf("%q %q: got %q", tc.auth, tc.query, got)
		}
	}
}
