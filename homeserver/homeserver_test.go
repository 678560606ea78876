package homeserver

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/fakes"
)

// newFakeSynapseAdmin starts the shared fake Synapse (internal/fakes.Synapse,
// which says what each answer of the admin API and whoami follows): admin
// token "admin-secret-token", user token "user-token" for
// @uploader:example.org.
func newFakeSynapseAdmin(t *testing.T) *fakes.Synapse { return fakes.NewSynapse(t) }

// lastCall is the method and escaped path of the fake's last request.
func lastCall(f *fakes.Synapse) string {
	calls := f.Calls()
	c := calls[len(calls)-1]
	return c.Method + " " + c.Path
}

func TestAdminCalls(t *testing.T) {
	f := newFakeSynapseAdmin(t)
	a, err := NewAdmin(AdminConfig{Homeserver: f.URL, AccessToken: f.AdminToken, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.QuarantineMedia(ctx, "example.org", "abcDEF123"); err != nil {
		t.Fatal(err)
	}
	if got := lastCall(f); got != "POST /_synapse/admin/v1/media/quarantine/example.org/abcDEF123" {
		t.Fatalf("path %q", got)
	}
	n, err := a.QuarantineUserMedia(ctx, "@bad:example.org")
	if err != nil || n != 3 {
		t.Fatalf("user quarantine: %d %v", n, err)
	}
	if got := lastCall(f); got != "POST /_synapse/admin/v1/user/@bad:example.org/media/quarantine" {
		t.Fatalf("path %q", got)
	}
	if err := a.SuspendUser(ctx, "@bad:example.org"); err != nil {
		t.Fatal(err)
	}
}

func TestAdminRetriesAndFailures(t *testing.T) {
	f := newFakeSynapseAdmin(t)
	a, _ := NewAdmin(AdminConfig{Homeserver: f.URL, AccessToken: f.AdminToken, RetryDelay: time.Millisecond, Attempts: 3})
	ctx := context.Background()
	f.FailAdmin(2, 502)
	if err := a.QuarantineMedia(ctx, "example.org", "x"); err != nil {
		t.Fatalf("two 502s then success must succeed: %v", err)
	}
	f.FailAdmin(5, 502)
	err := a.QuarantineMedia(ctx, "example.org", "x")
	if !errors.Is(err, ErrAdmin) || !strings.Contains(err.Error(), "502") {
		t.Fatalf("persistent 502: %v", err)
	}
	f.FailAdmin(0, 502)
	before := len(f.Calls())
	err = a.QuarantineMedia(ctx, "example.org", "missing")
	if err == nil || !strings.Contains(err.Error(), "M_NOT_FOUND") || len(f.Calls())-before != 1 {
		t.Fatalf("404 must fail at once without retries: %v (%d calls)", err, len(f.Calls())-before)
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
	calls := len(f.Calls())
	w.User(ctx, "user-token")
	if len(f.Calls()) != calls {
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
	if len(f.Calls()) == calls {
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

// IsAdmin asks the admin API about the token's own user; only an admin may
// ask, and a homeserver without the API answers 404.
func TestIsAdmin(t *testing.T) {
	f := newFakeSynapseAdmin(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name, token, user string
		noAPI             bool
		want              bool
		status            int
	}{
		{"admin", f.AdminToken, f.AdminUser, false, true, 0},
		{"another user, asked by an admin", f.AdminToken, "@uploader:example.org", false, false, 0},
		{"not an admin's token", "user-token", "@uploader:example.org", false, false, 403},
		{"no Synapse admin API", f.AdminToken, f.AdminUser, true, false, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.NoAdminAPI.Store(tc.noAPI)
			a, _ := NewAdmin(AdminConfig{Homeserver: f.URL, AccessToken: tc.token, Attempts: 1})
			got, err := a.IsAdmin(ctx, tc.user)
			var se *StatusError
			switch {
			case tc.status == 0 && (err != nil || got != tc.want):
				t.Fatalf("IsAdmin = %v, %v; want %v", got, err, tc.want)
			case tc.status != 0 && (!errors.Is(err, ErrAdmin) || !errors.As(err, &se) || se.Status != tc.status):
				t.Fatalf("IsAdmin error %v; want ErrAdmin with status %d", err, tc.status)
			}
			if c := lastCall(f); c != "GET /_synapse/admin/v1/users/"+tc.user+"/admin" {
				t.Fatalf("asked %q", c)
			}
		})
	}
}

func TestProbes(t *testing.T) {
	f := newFakeSynapseAdmin(t)
	ctx := context.Background()
	if vs, err := Versions(ctx, nil, f.URL+"/"); err != nil || len(vs) == 0 {
		t.Fatalf("Versions = %v, %v", vs, err)
	}
	if name, err := KeyServerName(ctx, nil, f.URL); err != nil || name != f.ServerName {
		t.Fatalf("KeyServerName = %q, %v", name, err)
	}
	if u, err := UserOf(ctx, nil, f.URL, "user-token"); err != nil || u != "@uploader:example.org" {
		t.Fatalf("UserOf = %q, %v", u, err)
	}
	_, err := UserOf(ctx, nil, f.URL, "unknown-token-value")
	var se *StatusError
	if !errors.As(err, &se) || se.Status != 401 || se.Errcode != "M_UNKNOWN_TOKEN" || strings.Contains(err.Error(), "unknown-token-value") {
		t.Fatalf("unknown token: %v", err)
	}
	if _, err := Versions(ctx, nil, "http://127.0.0.1:1"); err == nil {
		t.Fatal("a dead homeserver answered")
	}
	for in, want := range map[string]string{
		"@bot:example.org":      "example.org",
		"@bot:example.org:8448": "example.org:8448",
		"@bot:[::1]:8448":       "[::1]:8448",
		"bot:example.org":       "",
		"@bot":                  "",
	} {
		if got := ServerNameOf(in); got != want {
			t.Errorf("ServerNameOf(%q) = %q, want %q", in, got, want)
		}
	}
}

// A download cut short (the connection closed before Content-Length
// bytes) is an error, never a partial file a watcher would judge as the
// media; the token stays out of every error.
func TestDownloadMediaCutShort(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(200)
		w.Write(make([]byte, 50))
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer srv.Close()
	var buf bytes.Buffer
	_, n, err := DownloadMedia(context.Background(), srv.Client(), srv.URL, "secret-token", "hs", "id", "", &buf, 1<<20)
	if err == nil || strings.Contains(err.Error(), "secret-token") {
		t.Fatalf("cut-short download: %d bytes, err %v", n, err)
	}
	if _, _, err := DownloadMedia(context.Background(), srv.Client(), srv.URL, "t", "hs", "id", "", &buf, 10); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}
