package mediaproxy

import (
	"fmt"
	"testing"
	"time"
)

// TestMemoryBounds: each LRU holds at most max entries and forgets the
// least recently used; a flood of clean verdicts cannot evict a blocked
// one; clean verdicts expire after cleanTTL and with a bank change.
func TestMemoryBounds(t *testing.T) {
	m := NewMemory(2, time.Minute)
	now := time.Unix(1000, 0)
	gen := uint64(1)
	m.now = func() time.Time { return now }
	m.gen = func() uint64 { return gen }
	r := func(id string) Rendition { return MediaKey{Server: "hs", ID: id}.Original() }

	m.Block(MediaKey{Server: "hs", ID: "bad"}, "listed")
	m.Clean(r("a"))
	m.Clean(r("b"))
	if _, ok := m.Get(r("a")); !ok { // a is now the most recent
		t.Fatal("a forgotten")
	}
	m.Clean(r("c")) // evicts b, the least recently used
	if _, ok := m.Get(r("b")); ok {
		t.Fatal("b kept beyond the bound")
	}
	for i := range 10 {
		m.Clean(r(fmt.Sprint("flood", i)))
	}
	if j, ok := m.Get(r("bad")); !ok || !j.Blocked {
		t.Fatal("a flood of clean verdicts evicted a blocked one")
	}
	if c, b := m.Len(); c != 2 || b != 1 {
		t.Fatalf("Len = %d, %d; want 2, 1", c, b)
	}

	m.Clean(r("d"))
	now = now.Add(time.Minute + time.Second)
	if _, ok := m.Get(r("d")); ok {
		t.Fatal("clean verdict outlived cleanTTL")
	}
	m.Clean(r("e"))
	gen++
	if _, ok := m.Get(r("e")); ok {
		t.Fatal("clean verdict outlived a bank change")
	}
	if j, ok := m.Get(r("bad")); !ok || !j.Blocked {
		t.Fatal("blocked verdict expired")
	}
}

// BlockedKeys lists what is blocked, not what is clean, and forgets what
// was unblocked.
func TestMemoryBlockedKeys(t *testing.T) {
	m := NewMemory(10, 0)
	a, b, c := MediaKey{Server: "s", ID: "a"}, MediaKey{Server: "s", ID: "b"}, MediaKey{Server: "s", ID: "c"}
	m.Block(a, "listed")
	m.Block(b, "listed")
	m.Clean(Rendition{Key: c})
	m.Unblock(a)
	if got := m.BlockedKeys(); len(got) != 1 || got[0] != b {
		t.Fatalf("BlockedKeys = %v, want [%v]", got, b)
	}
}
