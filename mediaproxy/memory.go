package mediaproxy

import (
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/mediaguard/mediaguard/matcher"
)

// Judgement is what is remembered about a media ID.
type Judgement struct {
	Blocked bool
	// Reason is the block reason (for logs), empty when clean.
	Reason string
	At     time.Time
	// Gen is the bank generation a clean verdict was judged against.
	Gen uint64
}

// Memory remembers verdicts by media key so a download of media already
// judged (at upload, or by an earlier download) is decided without
// buffering or hashing. It is a bounded LRU: media IDs come from clients, so
// an attacker must not be able to grow it without limit. Blocked entries
// are kept in a separate LRU so a flood of clean IDs cannot evict them.
//
// Cache design: a bounded LRU (golang-lru's simplelru), not a TTL cache.
// A full Memory must forget the least recently used verdict to make room,
// not refuse new ones (go-cache, the Guard's design, can only refuse), and
// blocked verdicts never expire. A clean verdict's TTL and bank generation
// are checked on read, against m.now, under m.mu, which also covers both
// LRUs (so the unsynchronised simplelru suffices); golang-lru's expirable
// LRU would keep a goroutine per Memory running forever (its v2 never
// stops it), one more at every config reload.
type Memory struct {
	mu       sync.Mutex
	clean    *simplelru.LRU[Rendition, Judgement]
	blocked  *simplelru.LRU[MediaKey, Judgement]
	cleanTTL time.Duration
	now      func() time.Time
	// gen is the current bank generation (matcher.Generation): a clean
	// verdict from an older one may no longer hold.
	gen func() uint64
}

// NewMemory returns a Memory holding at most max clean and max blocked
// entries. A clean verdict is dropped when the local banks change; with
// cleanTTL > 0 it also expires after cleanTTL, for lists that change
// without telling (remote backends); 0 keeps it until the banks change.
func NewMemory(max int, cleanTTL time.Duration) *Memory {
	if max <= 0 {
		max = 100_000
	}
	return &Memory{clean: newLRU[Rendition](max), blocked: newLRU[MediaKey](max), cleanTTL: cleanTTL, now: time.Now, gen: matcher.Generation}
}

// newLRU returns an LRU of max > 0 entries.
func newLRU[K comparable](max int) *simplelru.LRU[K, Judgement] {
	l, err := simplelru.NewLRU[K, Judgement](max, nil)
	if err != nil {
		panic(err) // only for max <= 0, which NewMemory rules out
	}
	return l
}

// Get returns the judgement for rendition r, if any. A blocked verdict
// for the media applies to every rendition of it.
func (m *Memory) Get(r Rendition) (Judgement, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j, ok := m.blocked.Get(r.Key); ok {
		return j, true
	}
	j, ok := m.clean.Get(r)
	if ok && (j.Gen != m.gen() || m.cleanTTL > 0 && m.now().Sub(j.At) > m.cleanTTL) {
		m.clean.Remove(r)
		return Judgement{}, false
	}
	return j, ok
}

// Block records that the media is listed.
func (m *Memory) Block(k MediaKey, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocked.Add(k, Judgement{Blocked: true, Reason: reason, At: m.now()})
}

// Clean records that this rendition was scanned and did not match the
// banks as they are now.
func (m *Memory) Clean(r Rendition) { m.CleanAsOf(r, m.Generation()) }

// Generation is the bank generation now: take it before judging, and
// record the verdict with CleanAsOf, so a bank change during the judgement
// is not mistaken for one the verdict saw.
func (m *Memory) Generation() uint64 { return m.gen() }

// CleanAsOf records that this rendition did not match the banks of
// generation gen.
func (m *Memory) CleanAsOf(r Rendition, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clean.Add(r, Judgement{At: m.now(), Gen: gen})
}

// Len returns the number of clean and blocked entries (for metrics).
func (m *Memory) Len() (clean, blocked int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clean.Len(), m.blocked.Len()
}

// BlockedKeys returns the media remembered blocked, so that a caller that
// learns elsewhere of lifted blocks (another instance's retro-scan over a
// shared ledger) can find the ones to Unblock.
func (m *Memory) BlockedKeys() []MediaKey {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blocked.Keys()
}

// Unblock forgets that the media is listed (the entry that listed it was
// removed from its bank and nothing else matches it), so its next request
// is judged again.
func (m *Memory) Unblock(k MediaKey) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocked.Remove(k)
}
