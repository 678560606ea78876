package notify

import (
	"strings"
	"sync"
)

// Digests are a media file's own exact digests in hex, any of them ""
// when unknown. They are what ties reports of one file together: the
// proxy's detection knows the file's digests, Mjolnir's lookup of a room
// event sends them, and neither knows what the other saw (an mxc without
// room or event, a room and event without an mxc).
type Digests struct {
	MD5, SHA1, SHA256 string
}

// keys are the index keys of d, strongest first: a SHA-256 is trusted
// before a SHA-1, a SHA-1 before an MD5 (MD5 collisions can be made to
// order, so an MD5 alone links only where nothing better is known; see
// sameFile).
func (d Digests) keys() []string {
	var out []string
	for _, k := range [...]struct{ typ, hex string }{{"sha256", d.SHA256}, {"sha1", d.SHA1}, {"md5", d.MD5}} {
		if k.hex != "" {
			out = append(out, k.typ+":"+strings.ToLower(k.hex))
		}
	}
	return out
}

// sameFile tells whether a and b may be one file: the strongest digest
// both have decides, and a weaker one that agrees counts for nothing
// against it. Two files with one MD5 (a collision made to order) but
// different SHA-256s are two files; without a common digest there is
// nothing to tell them apart by, nor to tie them together.
func sameFile(a, b Digests) bool {
	for _, p := range [...][2]string{{a.SHA256, b.SHA256}, {a.SHA1, b.SHA1}, {a.MD5, b.MD5}} {
		if p[0] != "" && p[1] != "" {
			return strings.EqualFold(p[0], p[1])
		}
	}
	return false
}

// DefaultStories is how many stories and reported events a Stories
// remembers by default: more than the management room's notices of a
// busy day, a few MiB at most.
const DefaultStories = 10000

// Stories makes what the management room is told about one picture one
// story: the first notice about a file is the story's root, and every
// later report of the same file (the proxy's detection, a room event
// Mjolnir's lookup names) is posted as a reply in its thread instead of
// a notice of its own. It also remembers which room events have been
// reported, so that one event gets one notice whichever path (the room
// watcher, the lookup API) comes first.
//
// It is in memory and bounded: the oldest stories are forgotten first,
// and a restart forgets them all (a later report then starts a new
// story). A nil *Stories links nothing and claims every event. Safe for
// concurrent use.
type Stories struct {
	mu     sync.Mutex
	roots  fifo // digest key → root
	events fifo // claimed room ID + event ID → nil
}

// NewStories returns a Stories remembering up to max stories and max
// reported events (DefaultStories when max <= 0).
func NewStories(max int) *Stories {
	if max <= 0 {
		max = DefaultStories
	}
	return &Stories{roots: newFIFO(max), events: newFIFO(max)}
}

// root is a story's first notice and what it was about, so a notice is
// never posted as a reply to itself.
type root struct {
	eventID string
	// about is the detection ID or the room event ID of the first notice.
	about string
	// file is the digests the story began with, which a later report
	// must agree with (sameFile).
	file Digests
}

// Root returns the event ID of the story of the file with digests d, and
// what its root notice was about (a detection ID or a room event ID). A
// story is d's only where the strongest digest both d and the story's
// file have is the same (sameFile): an MD5 in common does not tie two
// files whose SHA-256s differ.
func (s *Stories) Root(d Digests) (eventID, about string, ok bool) {
	if s == nil {
		return "", "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range d.keys() {
		if v, ok := s.roots.get(k); ok {
			if r := v.(root); sameFile(d, r.file) {
				return r.eventID, r.about, true
			}
		}
	}
	return "", "", false
}

// Begin makes eventID, a notice about about (a detection or room event
// ID), the root of the story of the file with digests d, under each of
// its digests that has no story yet: the first story of a file stays
// its story. d must be digests known to be the file's (computed by
// mediaguard, or the one that matched a bank), never a caller's claim:
// a story begun under a made-up digest would draw the later notices of
// whichever file truly has it.
func (s *Stories) Begin(d Digests, eventID, about string) {
	if s == nil || eventID == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range d.keys() {
		s.roots.add(k, root{eventID, about, d})
	}
}

// Claim reports whether the event eventID of room roomID is reported for
// the first time; later claims of the same room and event return false.
// The reporter that claims an event posts the notice about it; the
// others post none. A claim decides nothing else: it is keyed by room
// and event together because a lookup's caller names both unverified,
// and a claim of an event in the wrong room must not stand for the real
// one, and it never stops a reporter from redacting, which each does
// (idempotently, with the same transaction ID) where it may.
func (s *Stories) Claim(roomID, eventID string) bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events.add(roomID+"\x00"+eventID, nil)
}

// fifo is a map bounded by forgetting its oldest key.
type fifo struct {
	m    map[string]any
	ring []string
	next int
}

func newFIFO(max int) fifo { return fifo{m: map[string]any{}, ring: make([]string, 0, max)} }

func (f *fifo) get(k string) (any, bool) {
	v, ok := f.m[k]
	return v, ok
}

// add stores k unless it is there already; it reports whether it did.
func (f *fifo) add(k string, v any) bool {
	if _, ok := f.m[k]; ok {
		return false
	}
	if len(f.ring) < cap(f.ring) {
		f.ring = append(f.ring, k)
	} else {
		delete(f.m, f.ring[f.next])
		f.ring[f.next] = k
		f.next = (f.next + 1) % len(f.ring)
	}
	f.m[k] = v
	return true
}
