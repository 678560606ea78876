package apigate

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLimiterBounded: many clients cannot grow the map past its cap, idle
// clients are forgotten, and a busy client is still limited.
func TestLimiterBounded(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(1, 1, 100)
	for i := range 1000 {
		l.Allow(fmt.Sprintf("10.0.%d.%d", i/256, i%256), now)
		if n := l.Size(); n > 100 {
			t.Fatalf("after %d clients the map holds %d", i+1, n)
		}
	}
	if ok, wait := l.Allow("10.0.3.231", now); ok || wait != time.Second {
		t.Errorf("the last client was not limited: %v %v", ok, wait)
	}
	now = now.Add(SweepEvery)
	l.Allow("fresh", now)
	if n := l.Size(); n != 1 {
		t.Errorf("idle clients kept after a sweep: %d", n)
	}
	if ok, _ := l.Allow(strings.Repeat("k", 1000), now); !ok {
		t.Error("long key refused")
	}
}

// TestLimiterBurst: a burst is allowed at once, then one request per
// 1/rate; a clock going backwards refills nothing.
func TestLimiterBurst(t *testing.T) {
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(2, 3, 0)
	var got []bool
	for range 4 {
		ok, _ := l.Allow("c", now)
		got = append(got, ok)
	}
	if fmt.Sprint(got) != "[true true true false]" {
		t.Errorf("burst: %v", got)
	}
	if ok, _ := l.Allow("c", now.Add(-time.Hour)); ok {
		t.Error("a clock going backwards refilled the bucket")
	}
	if ok, _ := l.Allow("c", now.Add(500*time.Millisecond)); !ok {
		t.Error("not refilled after 1/rate")
	}
}

func TestRemoteIPKey(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.7:5555", "192.0.2.7"},
		{"[::ffff:192.0.2.7]:5555", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"not an address", "not an address"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.addr
		if got := RemoteIPKey(r); got != tc.want {
			t.Errorf("RemoteIPKey(%q) = %q, want %q", tc.addr, got, tc.want)
		}
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "1", time.Millisecond: "1", 1500 * time.Millisecond: "2", 30 * time.Second: "30"} {
		if got := RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %s, want %s", d, got, want)
		}
	}
}

// TestThrottle: one warning per WarnInterval, and the next says how many
// were held back.
func TestThrottle(t *testing.T) {
	var th Throttle
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if ok, n := th.Allow(now); !ok || n != 0 {
		t.Fatalf("first: %v %d", ok, n)
	}
	for range 5 {
		if ok, _ := th.Allow(now.Add(time.Millisecond)); ok {
			t.Fatal("a second warning within the interval was let through")
		}
	}
	if ok, n := th.Allow(now.Add(WarnInterval)); !ok || n != 5 {
		t.Errorf("after the interval: %v %d, want true 5", ok, n)
	}
}

// TestAuthenticator: each place a key may come from, and keys no client
// could send are refused at construction.
func TestAuthenticator(t *testing.T) {
	const key = "k3y/with+odd%chars"
	a, err := NewAuthenticator(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		target string
		set    func(*http.Request)
		want   AuthResult
	}{
		{"none", "/", nil, AuthMissing},
		{"bearer", "/", func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+key) }, AuthOK},
		{"bearer, odd spacing and case", "/", func(r *http.Request) { r.Header.Set("Authorization", " bearer  "+key+" ") }, AuthOK},
		{"wrong bearer", "/", func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, AuthWrong},
		{"basic password", "/", func(r *http.Request) { r.SetBasicAuth("any", key) }, AuthOK},
		{"query", "/?api_key=k3y%2Fwith%2Bodd%25chars", nil, AuthOK},
		{"wrong header, right query", "/?api_key=k3y%2Fwith%2Bodd%25chars", func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") }, AuthOK},
		{"other scheme", "/", func(r *http.Request) { r.Header.Set("Authorization", "Token "+key) }, AuthMissing},
	} {
		r := httptest.NewRequest(http.MethodGet, tc.target, nil)
		if tc.set != nil {
			tc.set(r)
		}
		if got := a.Check(r); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	for _, bad := range []string{" lead", "trail ", "ctl\x01"} {
		if _, err := NewAuthenticator(bad); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
}
