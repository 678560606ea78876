package ncmec

// One window's changes, as read from its pages: per NCMEC entry the
// latest version seen (an entry with its fingerprints, or a tombstone).

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/mediaguard/mediaguard/matcher/ncmecxml"
)

// maxIDLen bounds an entry id, as the XML bank loader does.
const maxIDLen = 64

// key identifies an NCMEC entry: python-threatexchange keys entries by
// member and id ("{member_id}-{id}", ncmec_api.py fetch_iter), and images
// and videos have ids of their own.
type key struct {
	video  bool
	member string
	id     string
}

// Flags of a rec.
const (
	hasMD5 uint8 = 1 << iota // md5 (video_md5 for a video)
	hasSHA1
	hasPDQ
	deleted
)

// rec is an entry's latest version in the window: its digests in binary,
// its classification interned, no pointers (a million of them cost the
// garbage collector nothing to scan).
type rec struct {
	ts    int64 // NCMEC's timestamp, Unix nanoseconds; 0 when missing
	md5   [16]byte
	sha1  [20]byte
	pdq   [32]byte
	class uint16
	flags uint8
}

// window accumulates one [from, to] window. Pages may repeat entries (a
// retried page, an entry updated twice in the window) and give them in
// any order: the version with the latest timestamp wins, and among equal
// timestamps the one read last.
type window struct {
	idx  map[key]int32
	keys []key
	recs []rec
	// classes interns classifications (a handful of values: A1, A2, B1,
	// B2 ...), members the member ids (a few hundred at most).
	classes  []string
	classIdx map[string]uint16
	members  map[string]string
	// entries counts the entry elements read, problems the ones (or the
	// fingerprints) refused; firstProblems keeps the first few messages.
	entries       int
	problems      int
	firstProblems []string
}

func newWindow() *window {
	return &window{idx: map[key]int32{}, classes: []string{""}, classIdx: map[string]uint16{"": 0}, members: map[string]string{}}
}

// changes is how many entries the window changes.
func (w *window) changes() int { return len(w.recs) }

func (w *window) problem(e *ncmecxml.Entry, format string, args ...any) {
	w.problems++
	if len(w.firstProblems) < 10 {
		w.firstProblems = append(w.firstProblems, fmt.Sprintf("<%s> %q: ", e.Kind, clip(e.ID))+fmt.Sprintf(format, args...))
	}
}

func clip(b []byte) string {
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

// add takes one entry element.
func (w *window) add(e *ncmecxml.Entry) error {
	w.entries++
	if e.Overflow {
		w.problem(e, "oversized or too many fields; skipped")
		return nil
	}
	id := bytes.TrimSpace(e.ID)
	if !token(id, maxIDLen) {
		w.problem(e, "no usable <id> (1 to %d printable characters, no blanks or #); skipped", maxIDLen)
		return nil
	}
	member := bytes.TrimSpace(e.Member)
	if len(member) > 0 && !token(member, 32) {
		w.problem(e, "unusable member id; skipped")
		return nil
	}
	var r rec
	if ts := bytes.TrimSpace(e.Timestamp); len(ts) > 0 {
		t, err := time.Parse(time.RFC3339Nano, string(ts))
		if err != nil {
			w.problem(e, "unreadable <timestamp> %q; taken as the oldest", clip(ts))
		} else {
			r.ts = t.UnixNano()
		}
	}
	if e.Kind.IsDeleted() {
		r.flags = deleted
	} else {
		r.class = w.class(bytes.TrimSpace(e.Classification))
		for _, fp := range e.Fingerprints {
			v := bytes.TrimSpace(fp.Value)
			if len(v) == 0 {
				continue // NCMEC leaves fingerprints it lacks empty
			}
			var dst []byte
			var flag uint8
			switch {
			case fp.Name == "md5":
				dst, flag = r.md5[:], hasMD5
			case fp.Name == "sha1" && !e.Kind.IsVideo():
				dst, flag = r.sha1[:], hasSHA1
			case fp.Name == "pdq" && !e.Kind.IsVideo():
				dst, flag = r.pdq[:], hasPDQ
			default:
				continue // no bank type for it: a video's sha1 or pdq
			}
			if len(v) != 2*len(dst) {
				w.problem(e, "%s must be %d hex digits, got %d characters; fingerprint skipped", fp.Name, 2*len(dst), len(v))
				continue
			}
			if _, err := hex.Decode(dst, v); err != nil {
				w.problem(e, "%s is not hexadecimal; fingerprint skipped", fp.Name)
				continue
			}
			if flag == hasPDQ && r.pdq == [32]byte{} {
				// What a too-small image hashes to: banked, it would
				// match every blank picture (the bank loader refuses it
				// too).
				w.problem(e, "pdq is all zeros; fingerprint skipped")
				continue
			}
			r.flags |= flag
		}
	}
	k := key{video: e.Kind.IsVideo(), member: w.member(member), id: string(id)}
	if i, ok := w.idx[k]; ok {
		if r.ts >= w.recs[i].ts {
			w.recs[i] = r
		}
		return nil
	}
	w.idx[k] = int32(len(w.recs))
	w.keys = append(w.keys, k)
	w.recs = append(w.recs, r)
	return nil
}

// absorb takes o's entries into w: o is the window after w's.
func (w *window) absorb(o *window) {
	w.entries += o.entries
	w.problems += o.problems
	for _, p := range o.firstProblems {
		if len(w.firstProblems) < 10 {
			w.firstProblems = append(w.firstProblems, p)
		}
	}
	for i, k := range o.keys {
		r := o.recs[i]
		r.class = w.classString(o.classes[r.class])
		if j, ok := w.idx[k]; ok {
			if r.ts >= w.recs[j].ts {
				w.recs[j] = r
			}
			continue
		}
		w.idx[k] = int32(len(w.recs))
		w.keys = append(w.keys, k)
		w.recs = append(w.recs, r)
	}
}

func (w *window) classString(c string) uint16 {
	if i, ok := w.classIdx[c]; ok {
		return i
	}
	return w.class([]byte(c))
}

func (w *window) class(c []byte) uint16 {
	if len(c) == 0 {
		return 0
	}
	c = sanitize(c, 32)
	if i, ok := w.classIdx[string(c)]; ok {
		return i
	}
	if len(w.classes) >= 1<<16 {
		return 0 // a made-up classification per entry: drop them
	}
	s := string(c)
	i := uint16(len(w.classes))
	w.classes = append(w.classes, s)
	w.classIdx[s] = i
	return i
}

func (w *window) member(m []byte) string {
	if s, ok := w.members[string(m)]; ok {
		return s
	}
	if len(w.members) >= 1<<16 {
		return string(m)
	}
	s := string(m)
	w.members[s] = s
	return s
}

// token reports whether b is 1..max printable ASCII characters with no
// blank and no '#': what a text bank line carries as one word without
// quoting (a '#' after a blank would start a comment).
func token(b []byte, max int) bool {
	if len(b) == 0 || len(b) > max {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// sanitize makes a classification one word: anything but printable ASCII,
// blanks and '#' becomes '_', and it is cut to max bytes.
func sanitize(b []byte, max int) []byte {
	if len(b) > max {
		b = b[:max]
	}
	if token(b, max) {
		return b
	}
	out := make([]byte, len(b))
	for i, c := range b {
		if c <= ' ' || c >= 0x7f || c == '#' {
			c = '_'
		}
		out[i] = c
	}
	return out
}
