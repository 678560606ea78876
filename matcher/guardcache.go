package matcher

// The Guard's cache of remote verdicts: its configuration, bound, janitor
// and key.
//
// Cache design: a TTL cache (go-cache) with a size bound enforced here.
// Each verdict has its own lifetime (a match an hour, a miss 30 s, so a
// hash newly added to a remote list starts blocking soon), which is what
// go-cache keeps; it has no size bound of its own, so store counts entries
// under setMu and refuses new ones at MaxEntries, and the janitor purges
// expired ones (see store for why refusing beats evicting here). The
// bounded LRUs elsewhere (mediaproxy.Memory, homeserver.Whoami) serve
// caches that must forget the oldest entry instead.

import (
	"crypto/sha256"
	"encoding/binary"
	"time"

	"go.uber.org/zap"
)

// Cache defaults.
const (
	DefaultCacheMatchTTL   = time.Hour
	DefaultCacheMissTTL    = 30 * time.Second
	DefaultCacheMaxEntries = 100000
)

// CacheConfig configures the cache of remote verdicts. Only what remote
// backends answered is cached: local banks are consulted on every query, so
// a bank reload takes effect at once.
type CacheConfig struct {
	// MatchTTL is how long a remote match is remembered (default 1 h); a
	// negative value does not cache matches.
	MatchTTL time.Duration
	// MissTTL is how long a remote "no match" is remembered (default
	// 30 s), kept short so a hash newly added to a remote list starts
	// blocking soon; a negative value does not cache misses.
	MissTTL time.Duration
	// MaxEntries caps the number of cached verdicts (default 100000); a
	// negative value disables the cache.
	MaxEntries int
}

// janitor purges expired cache entries, which go-cache would otherwise
// keep (and count towards the cap) until overwritten.
func (g *Guard) janitor(interval time.Duration) {
	defer g.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			g.cache.DeleteExpired()
		case <-g.stop:
			return
		}
	}
}

// store caches a complete remote answer. At the cap new entries are simply
// not cached (rather than evicting): go-cache has no cheap eviction (it
// would mean copying the whole map under its lock), the hashes are chosen by
// whoever uploads, and expired entries are purged by the janitor, so the
// cache refills within MissTTL once a flood stops. Callers pay an uncached
// remote lookup meanwhile, never a wrong answer.
func (g *Guard) store(key string, v Verdict) {
	ttl := g.missTTL
	if v.Match {
		ttl = g.matchTTL
	}
	if g.cache == nil || ttl <= 0 {
		return
	}
	g.setMu.Lock()
	defer g.setMu.Unlock()
	if g.closed.Load() {
		return
	}
	if g.cache.ItemCount() >= g.maxEntries {
		g.cacheFull.Add(1)
		g.warnFull()
		return
	}
	g.cache.Set(key, v, ttl)
}

// warnFull logs a full cache at most once a minute.
func (g *Guard) warnFull() {
	now := time.Now().UnixNano()
	last := g.lastFullWarn.Load()
	if now-last < int64(time.Minute) || !g.lastFullWarn.CompareAndSwap(last, now) {
		return
	}
	g.log.Warn("remote verdict cache full: new verdicts not cached", zap.Int("max_entries", g.maxEntries))
}

// cacheKey is a fixed-size digest of everything a remote answer depends on:
// the digests present, the PDQ quality (it decides whether PDQ is sent) and
// the media kind (HMA looks up video MD5 only for videos). Dihedral variants
// are left out: remotes do not use them. So are the forms' names and
// kinds: they follow from the picture, whose forms' hashes are in the key,
// so a cached verdict's Form and Variant are the ones a fresh call gives.
func cacheKey(q *Query) string {
	const maxKey = 4 + 16 + 20 + 32 + 32 + 1 + 32
	buf := make([]byte, 0, maxKey+len(q.Kind))
	buf = append(buf, 1, byte(q.Has&(HasMD5|HasSHA1|HasSHA256|HasPDQ)))
	if q.Has&HasMD5 != 0 {
		buf = append(buf, q.MD5[:]...)
	}
	if q.Has&HasSHA1 != 0 {
		buf = append(buf, q.SHA1[:]...)
	}
	if q.Has&HasSHA256 != 0 {
		buf = append(buf, q.SHA256[:]...)
	}
	if q.Has&HasPDQ != 0 {
		for _, w := range q.PDQ {
			buf = binary.BigEndian.AppendUint64(buf, w)
		}
		buf = append(buf, byte(min(max(q.PDQQuality, 0), 255)))
	}
	for _, f := range q.Forms {
		for _, w := range f.Hash {
			buf = binary.BigEndian.AppendUint64(buf, w)
		}
		buf = append(buf, byte(min(max(f.Quality, 0), 255)))
	}
	buf = append(buf, byte(len(q.Forms)))
	for _, e := range q.Embedded {
		buf = append(buf, e.MD5[:]...)
		buf = append(buf, e.SHA1[:]...)
		buf = append(buf, e.SHA256[:]...)
	}
	buf = append(buf, byte(len(q.Embedded)))
	buf = append(buf, q.Kind...) // last, so its variable length is unambiguous
	sum := sha256.Sum256(buf)
	return string(sum[:])
}
