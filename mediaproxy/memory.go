package mediaproxy

import (
	"container/list"
	"sync"
	"time"

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
type Memory struct {
	mu       sync.Mutex
	clean    *lru
	blocked  *lru
	cleanTTL time.Duration
	now      func() time.Time
	// gen is the current bank generation (matcher.Generation): a clean
	// verdict from an older one may no longer hold.
	gen func() uint64
}

// NewMemory returns a Memory holding at most max clean and max blocked
// entries; clean verdicts expire after cleanTTL so new bank entries catch
// media judged before they were added.
func NewMemory(max int, cleanTTL time.Duration) *Memory {
	if max <= 0 {
		max = 100_000
	}
	return &Memory{clean: newLRU(max), blocked: newLRU(max), cleanTTL: cleanTTL, now: time.Now, gen: matcher.Generation}
}

// Get returns the judgement for key, if any. A blocked verdict for the
// media ID (key "server/id") applies to every variant of it.
func (m *Memory) Get(mediaKey, variantKey string) (Judgement, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if j, ok := m.blocked.get(mediaKey); ok {
		return j, true
	}
	j, ok := m.clean.get(variantKey)
	if ok && (j.Gen != m.gen() || m.cleanTTL > 0 && m.now().Sub(j.At) > m.cleanTTL) {
		m.clean.remove(variantKey)
		return Judgement{}, false
	}
	return j, ok
}

// Block records that the media is listed.
func (m *Memory) Block(mediaKey, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blocked.put(mediaKey, Judgement{Blocked: true, Reason: reason, At: m.now()})
}

// Clean records that this variant was scanned and did not match the
// banks as they are now.
func (m *Memory) Clean(variantKey string) { m.CleanAsOf(variantKey, m.Generation()) }

// Generation is the bank generation now: take it before judging, and
// record the verdict with CleanAsOf, so a bank change during the judgement
// is not mistaken for one the verdict saw.
func (m *Memory) Generation() uint64 { return m.gen() }

// CleanAsOf records that this variant did not match the banks of
// generation gen.
func (m *Memory) CleanAsOf(variantKey string, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.clean.put(variantKey, Judgement{At: m.now(), Gen: gen})
}

// Len returns the number of clean and blocked entries (for metrics).
func (m *Memory) Len() (clean, blocked int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.clean.ll.Len(), m.blocked.ll.Len()
}

type lruEntry struct {
	key string
	j   Judgement
}

type lru struct {
	max int
	ll  *list.List
	m   map[string]*list.Element
}

func newLRU(max int) *lru { return &lru{max: max, ll: list.New(), m: map[string]*list.Element{}} }

func (l *lru) get(k string) (Judgement, bool) {
	e, ok := l.m[k]
	if !ok {
		return Judgement{}, false
	}
	l.ll.MoveToFront(e)
	return e.Value.(*lruEntry).j, true
}

func (l *lru) put(k string, j Judgement) {
	if e, ok := l.m[k]; ok {
		e.Value.(*lruEntry).j = j
		l.ll.MoveToFront(e)
		return
	}
	l.m[k] = l.ll.PushFront(&lruEntry{k, j})
	if l.ll.Len() > l.max {
		old := l.ll.Back()
		l.ll.Remove(old)
		delete(l.m, old.Value.(*lruEntry).key)
	}
}

func (l *lru) remove(k string) {
	if e, ok := l.m[k]; ok {
		l.ll.Remove(e)
		delete(l.m, k)
	}
}
