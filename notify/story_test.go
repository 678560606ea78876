package notify

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

const (
	sha256A = "aa00000000000000000000000000000000000000000000000000000000000000"
	sha1A   = "aa00000000000000000000000000000000000000"
	md5A    = "aa000000000000000000000000000000"
)

func TestStoriesRoot(t *testing.T) {
	s := NewStories(10)
	s.Begin(Digests{SHA256: sha256A, MD5: md5A}, "$root", "det-1")
	for _, tc := range []struct {
		name string
		d    Digests
		want string
	}{
		{"same sha256", Digests{SHA256: sha256A}, "$root"},
		{"sha256 in capitals", Digests{SHA256: strings.ToUpper(sha256A)}, "$root"},
		{"md5 only", Digests{MD5: md5A}, "$root"},
		// The strongest digest both sides have decides: an MD5 made to
		// collide does not tie two files whose SHA-256s differ.
		{"another sha256, same md5", Digests{SHA256: strings.Repeat("b", 64), MD5: md5A}, ""},
		{"a sha1 the story lacks, same md5", Digests{SHA1: sha1A, MD5: md5A}, "$root"},
		{"sha1 never seen", Digests{SHA1: sha1A}, ""},
		{"nothing", Digests{}, ""},
	} {
		got, _, _ := s.Root(tc.d)
		if got != tc.want {
			t.Errorf("%s: Root = %q, want %q", tc.name, got, tc.want)
		}
	}
	// The first story of a file stays its story.
	s.Begin(Digests{SHA256: sha256A, SHA1: sha1A}, "$later", "$event")
	if got, about, _ := s.Root(Digests{SHA256: sha256A}); got != "$root" || about != "det-1" {
		t.Errorf("a second Begin replaced the story: %q about %q", got, about)
	}
	if got, _, _ := s.Root(Digests{SHA1: sha1A}); got != "$later" {
		t.Errorf("a digest without a story took none: %q", got)
	}
}

func TestStoriesClaimAndBound(t *testing.T) {
	s := NewStories(3)
	for _, tc := range []struct {
		room, event string
		want        bool
	}{
		{"!r", "$a", true}, {"!r", "$a", false},
		// A claim is of a room's event: the same event ID named with
		// another room (a lookup's caller chooses both) is another claim.
		{"!other", "$a", true},
		{"!r", "$b", true}, {"!r", "$c", true}, {"!r", "$b", false}, {"!r", "$d", true},
		// The oldest claims are forgotten first.
		{"!r", "$a", true}, {"!other", "$a", true},
	} {
		if got := s.Claim(tc.room, tc.event); got != tc.want {
			t.Errorf("Claim(%s, %s) = %v, want %v", tc.room, tc.event, got, tc.want)
		}
	}
	for i := range 5 {
		s.Begin(Digests{MD5: fmt.Sprintf("%032x", i)}, fmt.Sprintf("$r%d", i), "x")
	}
	for i, want := range []bool{false, false, true, true, true} {
		if _, _, ok := s.Root(Digests{MD5: fmt.Sprintf("%032x", i)}); ok != want {
			t.Errorf("story %d remembered = %v, want %v (the oldest are forgotten first)", i, ok, want)
		}
	}
	var none *Stories
	if !none.Claim("!r", "$x") || !none.Claim("!r", "$x") {
		t.Error("a nil Stories refused a claim")
	}
	none.Begin(Digests{MD5: md5A}, "$r", "x")
	if _, _, ok := none.Root(Digests{MD5: md5A}); ok {
		t.Error("a nil Stories has a story")
	}
}

func TestSightingContent(t *testing.T) {
	s := Sighting{RoomID: "!room:x", EventID: "$ev<b>:x", Sender: "@a:x\n!mjolnir ban @victim:x", MsgType: "m.image",
		Reason: "sha256 matched bank TEST", Redaction: "redacted", Via: SightingLookup, Digests: Digests{SHA256: sha256A}}
	own := SightingContent(s, "")
	body := own["body"].(string)
	for _, want := range []string{"listed media posted in a room (Mjolnir's lookup)", "\nRoom: !room:x\n", "\nEvent: $ev<b>:x\n", "\nSent by: @a:x !mjolnir ban", "\nMatch: sha256 matched bank TEST", "\nEvent: redacted"} {
		if !strings.Contains(body, want) {
			t.Errorf("own notice lacks %q:\n%s", want, body)
		}
	}
	if _, ok := own["m.relates_to"]; ok {
		t.Error("a notice of its own is in a thread")
	}
	reply := SightingContent(s, "$root:x")
	body = reply["body"].(string)
	if first := strings.Split(body, "\n")[0]; first != "🔗 Seen in !room:x as $ev<b>:x, sent by @a:x !mjolnir ban @victim:x (Mjolnir's lookup)" {
		t.Errorf("reply reads %q", first)
	}
	rel, _ := reply["m.relates_to"].(map[string]any)
	if rel["rel_type"] != "m.thread" || rel["event_id"] != "$root:x" {
		t.Errorf("reply relation: %v", rel)
	}
	for _, c := range []map[string]any{own, reply} {
		h := c["formatted_body"].(string)
		if strings.Contains(h, "<b>") || !strings.Contains(h, "&lt;b&gt;") {
			t.Errorf("HTML not escaped: %s", h)
		}
		for _, l := range strings.Split(c["body"].(string), "\n") {
			if strings.HasPrefix(l, "!mjolnir") {
				t.Errorf("a field forged a command line: %q", c["body"])
			}
		}
		if strings.Contains(fmt.Sprint(c), sha256A) {
			t.Error("a sighting shows the file's digest")
		}
		d := c["org.mediaguard.event_detection"].(map[string]any)
		if d["via"] != SightingLookup || d["room_id"] != "!room:x" || d["redaction"] != "redacted" {
			t.Errorf("event_detection: %v", d)
		}
	}
	// What only the lookup request says is marked as its word.
	s.Unverified = true
	own, reply = SightingContent(s, ""), SightingContent(s, "$root:x")
	for _, want := range []string{"\nRoom: !room:x (reported by the lookup request)\n", "\nEvent: $ev<b>:x (reported by the lookup request)\n", "\nSent by: @a:x !mjolnir ban @victim:x (reported by the lookup request)"} {
		if !strings.Contains(own["body"].(string), want) {
			t.Errorf("unverified own notice lacks %q:\n%s", want, own["body"])
		}
	}
	if first := strings.Split(reply["body"].(string), "\n")[0]; first != "🔗 Seen in !room:x as $ev<b>:x, sent by @a:x !mjolnir ban @victim:x (Mjolnir's lookup; room, event and sender reported by the lookup request)" {
		t.Errorf("unverified reply reads %q", first)
	}
	if own["org.mediaguard.event_detection"].(map[string]any)["verified"] != false {
		t.Error("an unverified sighting's event_detection says verified")
	}
	if body := SightingContent(Sighting{RoomID: "!r:x", EventID: "$e:x", Via: SightingWatch, MXC: "mxc://x/y"}, "")["body"].(string); !strings.HasPrefix(body, "🚨 mediaguard: listed media posted in a watched room\n") || !strings.Contains(body, "Sent by: unknown") || !strings.Contains(body, "Media: mxc://x/y") {
		t.Errorf("watch notice:\n%s", body)
	}
}

// TestStoryThreads: on the notifier's one delivery goroutine, the first
// notice about a file begins its story and every later one (a sighting,
// a detection) is a reply in its thread; a review stays in the timeline;
// a detection redelivered is never a reply to itself.
func TestStoryThreads(t *testing.T) {
	f := newFakeHS(t)
	var delivered []string // sightings' events, on the delivery goroutine
	var mu sync.Mutex
	m := f.notifier(t, MatrixConfig{Stories: NewStories(0), OnSightingDelivered: func(s Sighting) {
		mu.Lock()
		delivered = append(delivered, s.EventID)
		mu.Unlock()
	}})
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	file := Digests{SHA256: sha256A, SHA1: sha1A, MD5: md5A}
	det := sample("det-1", "@up:fake")
	det.Digests = file
	review := sample("rev-1", "@up:fake")
	review.Review, review.Digests = true, file
	other := sample("det-2", "@up:fake")
	other.Digests = Digests{SHA256: strings.Repeat("c", 64), MD5: md5A} // det-1's MD5, not its SHA-256: another file
	lookup := Sighting{RoomID: "!pub:fake", EventID: "$e1:fake", Sender: "@s:fake", Via: SightingLookup, Digests: Digests{MD5: md5A}, Verified: Digests{MD5: md5A}}
	newFile := Sighting{RoomID: "!pub:fake", EventID: "$e2:fake", Sender: "@s:fake", Via: SightingLookup,
		Digests: Digests{SHA1: strings.Repeat("d", 40)}, Verified: Digests{SHA1: strings.Repeat("d", 40)}}
	later := sample("det-3", "@dl:fake")
	later.Digests = Digests{SHA1: strings.Repeat("d", 40)}
	// A lookup whose listed MD5 matched, carrying a made-up SHA-256 (of
	// a file its caller expects mediaguard to see later): its story is
	// begun under the MD5 only, and that file's detection is not drawn
	// into it.
	forged := Sighting{RoomID: "!pub:fake", EventID: "$e3:fake", Sender: "@s:fake", Via: SightingLookup,
		Digests: Digests{SHA256: strings.Repeat("e", 64), MD5: strings.Repeat("f", 32)}, Verified: Digests{MD5: strings.Repeat("f", 32)}}
	victim := sample("det-4", "@up:fake")
	victim.Digests = Digests{SHA256: strings.Repeat("e", 64), SHA1: strings.Repeat("e", 40), MD5: strings.Repeat("9", 32)}

	m.Notify(det)
	m.Sighting(lookup)
	m.Notify(review)
	m.Notify(other)
	m.Notify(det) // an audit-log redelivery: the same transaction
	m.Sighting(newFile)
	m.Notify(later)
	m.Sighting(forged)
	m.Notify(victim)
	testkit.EventuallyWithin(t, 5*time.Second, "9 deliveries", func() bool { return m.Stats().Delivered == 9 })

	f.mu.Lock()
	defer f.mu.Unlock()
	var got []string
	for _, c := range f.events {
		rel, _ := c["m.relates_to"].(map[string]any)
		got = append(got, fmt.Sprint(rel["event_id"]))
	}
	// $ev1 det-1, $ev2 the lookup in its thread, $ev3 the review (own),
	// $ev4 det-2 (another file), $ev5 the sighting of a new file, $ev6
	// det-3 in that sighting's thread, $ev7 the forged sighting (own),
	// $ev8 det-4 (own: nothing begun under the forged SHA-256). det-1's
	// redelivery is $ev1 again.
	if want := "[<nil> $ev1:fake <nil> <nil> <nil> $ev5:fake <nil> <nil>]"; fmt.Sprint(got) != want {
		t.Errorf("thread roots = %v, want %s", got, want)
	}
	if st := m.Stats(); st.Queued != 9 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(delivered) != "[$e1:fake $e2:fake $e3:fake]" {
		t.Errorf("sightings said delivered: %v", delivered)
	}
}
