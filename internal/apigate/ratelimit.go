package apigate

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// SweepEvery is how often idle clients are dropped even when the map is
// not full, so memory falls back after a burst of clients.
const SweepEvery = time.Minute

// DefaultMaxClients bounds a Limiter's per-client state.
const DefaultMaxClients = 10000

// maxClientKeyLen bounds a client key kept in the map; an IP or a /64 fits
// with room to spare.
const maxClientKeyLen = 64

// bucket is one client's token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// Limiter is a token bucket per client, in a map of bounded size: an
// attacker with many addresses cannot grow it past max. A bucket that has
// refilled is the same as no bucket, so idle clients are forgotten; when
// the map is full of busy clients, arbitrary ones are forgotten, which only
// hands them a full bucket again (an attacker who rotates addresses gets
// full buckets anyway). It is safe for concurrent use.
type Limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int

	mu        sync.Mutex
	clients   map[string]bucket
	lastSweep time.Time
}

// NewLimiter returns a limiter of rate requests per second (> 0) per
// client; burst 0 means rate rounded up, at least 1; maxClients 0 means
// DefaultMaxClients.
func NewLimiter(rate float64, burst, maxClients int) *Limiter {
	if burst <= 0 {
		burst = max(1, int(math.Ceil(rate)))
	}
	if maxClients <= 0 {
		maxClients = DefaultMaxClients
	}
	return &Limiter{
		rate:    rate,
		burst:   float64(burst),
		max:     maxClients,
		clients: make(map[string]bucket),
	}
}

// Allow takes a token from key's bucket, or says how long until one is
// there.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	if len(key) > maxClientKeyLen {
		key = key[:maxClientKeyLen]
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= SweepEvery || now.Before(l.lastSweep) {
		l.sweep(now)
		l.lastSweep = now
	}
	b, ok := l.clients[key]
	if ok {
		// A clock that went backwards refills nothing.
		if dt := now.Sub(b.last); dt > 0 {
			b.tokens = min(l.burst, b.tokens+dt.Seconds()*l.rate)
			b.last = now
		}
	} else {
		if len(l.clients) >= l.max {
			l.makeRoom(now)
		}
		b = bucket{tokens: l.burst, last: now}
	}
	if b.tokens >= 1 {
		b.tokens--
		l.clients[key] = b
		return true, 0
	}
	l.clients[key] = b
	wait := time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	return false, max(wait, time.Millisecond)
}

// idle reports whether b has refilled completely by now.
func (l *Limiter) idle(b bucket, now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst
}

// sweep forgets every idle client.
func (l *Limiter) sweep(now time.Time) {
	for k, b := range l.clients {
		if l.idle(b, now) {
			delete(l.clients, k)
		}
	}
}

// makeRoom frees a tenth of the map, idle clients first, so that the O(n)
// work is paid once per many new clients rather than once per request.
func (l *Limiter) makeRoom(now time.Time) {
	l.sweep(now)
	target := l.max - max(l.max/10, 1)
	for k := range l.clients {
		if len(l.clients) <= target {
			break
		}
		delete(l.clients, k) // map order is unspecified: arbitrary clients
	}
}

// Size is the number of clients tracked (tests, metrics).
func (l *Limiter) Size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.clients)
}

// RemoteIPKey is the default client key: the IP of the remote address,
// with IPv6 addresses grouped by /64 (one subscriber's allocation) and
// IPv4-mapped ones read as IPv4.
func RemoteIPKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return IPKey(host)
}

// IPKey is the client key of an IP address given as text (a proxy's
// idea of the client's IP): IPv6 grouped by /64, IPv4-mapped read as
// IPv4; anything that is not an IP is its own key.
func IPKey(host string) string {
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is6() {
		if p, err := addr.Prefix(64); err == nil {
			return p.String()
		}
	}
	return addr.String()
}

// RetryAfterSeconds is d in whole seconds for a Retry-After header,
// rounded up and at least 1, since Retry-After: 0 invites an immediate
// retry.
func RetryAfterSeconds(d time.Duration) string {
	return strconv.FormatInt(max(int64(math.Ceil(d.Seconds())), 1), 10)
}
