package matcher

// The retro matcher: media already judged, against a bank's new entries.

import (
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher/pdqindex"
)

// RetroMatcher matches queries against a few banks (a BankChange's Added
// or Removed) with exactly a Local's semantics: its PDQ threshold, minimum
// quality, dihedral matching, forms with their own quality, embedded
// files' exact digests and video_md5. It is built for a retro-scan, which
// asks it about every media in the ledger (millions) while the banks hold
// a few thousand entries: Matches answers most queries, which match
// nothing, in about a hundred nanoseconds without allocating, and Match
// builds a Verdict only for those that match.
//
// A RetroMatcher is immutable and safe for concurrent use.
type RetroMatcher struct {
	// l holds the Local's settings; st the banks, so that Match is
	// Local.Match itself.
	l  *Local
	st *localState
	// The digests' first two bytes, per type, rule out almost every
	// query before a map is read.
	md5, videoMD5, sha1, sha256 digestFilter
	// pdq holds every bank's PDQ entries; nil when there are none.
	pdq   *pdqindex.Small
	empty bool
}

// digestFilter has bit v set when some digest starts with the two bytes v.
type digestFilter [1 << 16 / 64]uint64

func (f *digestFilter) add(d []byte) {
	v := uint32(d[0])<<8 | uint32(d[1])
	f[v>>6] |= 1 << (v & 63)
}

func (f *digestFilter) may(b0, b1 byte) bool {
	v := uint32(b0)<<8 | uint32(b1)
	return f[v>>6]&(1<<(v&63)) != 0
}

// RetroMatcher returns a matcher of the given banks (typically a
// BankChange's Added or Removed; nil ones are skipped) under l's settings.
// Evidence names the banks in the order given.
func (l *Local) RetroMatcher(banks ...*Bank) *RetroMatcher {
	r := &RetroMatcher{
		l:  &Local{threshold: l.threshold, minQuality: l.minQuality, dihedral: l.dihedral, log: l.log},
		st: &localState{},
	}
	var hashes []pdq.Hash
	for _, b := range banks {
		if b == nil || b.counts.Total() == 0 {
			continue
		}
		r.st.active = append(r.st.active, b)
		for k := range b.md5 {
			r.md5.add(k[:])
		}
		for k := range b.videoMD5 {
			r.videoMD5.add(k[:])
		}
		for k := range b.sha1 {
			r.sha1.add(k[:])
		}
		for k := range b.sha256 {
			r.sha256.add(k[:])
		}
		if b.pdq != nil {
			for id := range b.pdq.Len() {
				hashes = append(hashes, b.pdq.Hash(int32(id)))
			}
		}
	}
	r.empty = len(r.st.active) == 0
	if len(hashes) > 0 {
		r.pdq = pdqindex.BuildSmall(hashes, l.threshold)
	}
	return r
}

// Counts is the number of entries the matcher holds, per type.
func (r *RetroMatcher) Counts() Counts {
	var c Counts
	for _, b := range r.st.active {
		c.add(b.counts)
	}
	return c
}

// Matches reports whether Match would find a match for q: what a
// retro-scan asks of every record, so it reads no map and no PDQ entry
// for almost every query and never allocates.
func (r *RetroMatcher) Matches(q *Query) bool {
	if r.empty {
		return false
	}
	if q.Has&HasMD5 != 0 {
		if r.md5.may(q.MD5[0], q.MD5[1]) && r.inMD5(q.MD5) ||
			r.videoMD5.may(q.MD5[0], q.MD5[1]) && r.inVideoMD5(q.MD5) {
			return true
		}
	}
	if q.Has&HasSHA1 != 0 && r.sha1.may(q.SHA1[0], q.SHA1[1]) && r.inSHA1(q.SHA1) {
		return true
	}
	if q.Has&HasSHA256 != 0 && r.sha256.may(q.SHA256[0], q.SHA256[1]) && r.inSHA256(q.SHA256) {
		return true
	}
	for i := range q.Embedded {
		e := &q.Embedded[i]
		if r.md5.may(e.MD5[0], e.MD5[1]) && r.inMD5(e.MD5) ||
			r.sha1.may(e.SHA1[0], e.SHA1[1]) && r.inSHA1(e.SHA1) ||
			r.sha256.may(e.SHA256[0], e.SHA256[1]) && r.inSHA256(e.SHA256) {
			return true
		}
	}
	if r.pdq == nil {
		return false
	}
	// The gates are Local.Match's: the stored picture's hash needs its
	// digest bit and the minimum quality, its dihedral variants dihedral
	// matching and all 8 (a zero one is skipped), each form its own
	// quality and no variants.
	th := r.l.threshold
	if q.Has&HasPDQ != 0 && !q.PDQ.IsZero() && q.PDQQuality >= r.l.minQuality {
		if r.pdq.Any(q.PDQ, th) {
			return true
		}
		if r.l.dihedral && len(q.Dihedral) == 8 {
			for _, h := range q.Dihedral[1:] {
				if !h.IsZero() && r.pdq.Any(h, th) {
					return true
				}
			}
		}
	}
	for i := range q.Forms {
		f := &q.Forms[i]
		if !f.Hash.IsZero() && f.Quality >= r.l.minQuality && r.pdq.Any(f.Hash, th) {
			return true
		}
	}
	return false
}

func (r *RetroMatcher) inMD5(d [16]byte) bool {
	for _, b := range r.st.active {
		if _, ok := b.md5[d]; ok {
			return true
		}
	}
	return false
}

func (r *RetroMatcher) inVideoMD5(d [16]byte) bool {
	for _, b := range r.st.active {
		if _, ok := b.videoMD5[d]; ok {
			return true
		}
	}
	return false
}

func (r *RetroMatcher) inSHA1(d [20]byte) bool {
	for _, b := range r.st.active {
		if _, ok := b.sha1[d]; ok {
			return true
		}
	}
	return false
}

func (r *RetroMatcher) inSHA256(d [32]byte) bool {
	for _, b := range r.st.active {
		if _, ok := b.sha256[d]; ok {
			return true
		}
	}
	return false
}

// Match returns the Verdict Local.Match would give for q against these
// banks alone, evidence best first, when it is a match; otherwise the
// zero Verdict, at the cost of Matches (without the Notes on what could
// not be matched, which a retro-scan has no use for).
func (r *RetroMatcher) Match(q *Query) Verdict {
	if !r.Matches(q) {
		return Verdict{}
	}
	return r.l.match(r.st, q)
}
