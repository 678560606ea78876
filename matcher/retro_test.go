package matcher

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// testEntry is one bank line of a generated bank.
type testEntry struct {
	k     kind
	d     [32]byte // the digest's first bytes, for exact kinds
	h     pdq.Hash // for kPDQ
	label string
}

func (e testEntry) line() string {
	var hx string
	if e.k == kPDQ {
		hx = e.h.String()
	} else {
		hx = hex.EncodeToString(e.d[:kindHexLen[e.k]/2])
	}
	return strings.TrimSpace(string(kindTypes[e.k]) + " " + hx + " " + e.label)
}

// key identifies an entry as DiffBanks does: type and digest.
func (e testEntry) key() string {
	if e.k == kPDQ {
		return "pdq " + e.h.String()
	}
	return string(kindTypes[e.k]) + " " + hex.EncodeToString(e.d[:kindHexLen[e.k]/2])
}

func bankText(es []testEntry) string {
	var sb strings.Builder
	for _, e := range es {
		sb.WriteString(e.line())
		sb.WriteByte('\n')
	}
	return sb.String()
}

func randEntry(r *rand.Rand, labelled bool) testEntry {
	e := testEntry{k: kind(r.IntN(5))}
	if r.IntN(3) > 0 {
		e.k = kPDQ // PDQ is where the matching is subtle
	}
	for i := range e.d {
		e.d[i] = byte(r.Uint32())
	}
	if e.k == kPDQ {
		e.h = randPDQ(r)
	}
	if labelled && r.IntN(4) > 0 {
		e.label = fmt.Sprintf("L%d", r.IntN(1000))
	}
	return e
}

// expectedDelta is what DiffBanks must find in going from old to new,
// as bank lines in the order a file of them would be read: exact entries
// whose digest is new, and PDQ copies beyond the count the other side has
// (the later copies, see diffPDQGroup).
func expectedDelta(from, to []testEntry) []testEntry {
	had := map[string]int{}
	for _, e := range from {
		had[e.key()]++
	}
	seen := map[string]int{}
	var out []testEntry
	for _, e := range to {
		k := e.key()
		n := seen[k]
		seen[k]++
		if e.k == kPDQ && n >= had[k] || e.k != kPDQ && had[k] == 0 {
			out = append(out, e)
		}
	}
	return out
}

// bruteMatches is Local.Match's match-or-not by a scan of the entries.
func bruteMatches(es []testEntry, q *Query, threshold, minQuality int, dihedral bool) bool {
	var hs []pdq.Hash
	if q.Has&HasPDQ != 0 && !q.PDQ.IsZero() && q.PDQQuality >= minQuality {
		hs = append(hs, q.PDQ)
		if dihedral && len(q.Dihedral) == 8 {
			for _, h := range q.Dihedral[1:] {
				if !h.IsZero() {
					hs = append(hs, h)
				}
			}
		}
	}
	for _, f := range q.Forms {
		if !f.Hash.IsZero() && f.Quality >= minQuality {
			hs = append(hs, f.Hash)
		}
	}
	for _, e := range es {
		switch e.k {
		case kPDQ:
			for _, h := range hs {
				if pdq.Distance(h, e.h) <= threshold {
					return true
				}
			}
		case kMD5, kVideoMD5:
			d := [16]byte(e.d[:16])
			if q.Has&HasMD5 != 0 && q.MD5 == d {
				return true
			}
			for _, em := range q.Embedded {
				if e.k == kMD5 && em.MD5 == d {
					return true
				}
			}
		case kSHA1:
			d := [20]byte(e.d[:20])
			if q.Has&HasSHA1 != 0 && q.SHA1 == d {
				return true
			}
			for _, em := range q.Embedded {
				if em.SHA1 == d {
					return true
				}
			}
		case kSHA256:
			if q.Has&HasSHA256 != 0 && q.SHA256 == e.d {
				return true
			}
			for _, em := range q.Embedded {
				if em.SHA256 == e.d {
					return true
				}
			}
		}
	}
	return false
}

// near returns a hash at a random distance up to 45 from a random PDQ
// entry of es (random when there is none), sometimes zero.
func nearHash(r *rand.Rand, es []testEntry) pdq.Hash {
	if r.IntN(20) == 0 {
		return pdq.Hash{}
	}
	var pool []pdq.Hash
	for _, e := range es {
		if e.k == kPDQ {
			pool = append(pool, e.h)
		}
	}
	if len(pool) == 0 || r.IntN(4) == 0 {
		return randPDQ(r)
	}
	h := pool[r.IntN(len(pool))]
	for _, b := range r.Perm(256)[:r.IntN(46)] {
		h[b/64] ^= 1 << (b % 64)
	}
	return h
}

// exactOf returns a digest of an exact entry of es with the given kinds,
// or a random one.
func exactOf(r *rand.Rand, es []testEntry, kinds ...kind) (d [32]byte) {
	var pool [][32]byte
	for _, e := range es {
		for _, k := range kinds {
			if e.k == k {
				pool = append(pool, e.d)
			}
		}
	}
	if len(pool) == 0 || r.IntN(3) == 0 {
		for i := range d {
			d[i] = byte(r.Uint32())
		}
		return d
	}
	return pool[r.IntN(len(pool))]
}

func randQuery(r *rand.Rand, es []testEntry) Query {
	q := Query{Has: Has(r.IntN(16)), PDQQuality: r.IntN(101)}
	md5 := exactOf(r, es, kMD5, kVideoMD5)
	sha1 := exactOf(r, es, kSHA1)
	q.MD5, q.SHA1, q.SHA256 = [16]byte(md5[:16]), [20]byte(sha1[:20]), exactOf(r, es, kSHA256)
	q.PDQ = nearHash(r, es)
	if r.IntN(2) == 0 {
		q.Dihedral = make([]pdq.Hash, 8)
		q.Dihedral[0] = q.PDQ
		for i := 1; i < 8; i++ {
			q.Dihedral[i] = nearHash(r, es)
		}
		if r.IntN(5) == 0 {
			q.Dihedral = q.Dihedral[:7] // not a full set: not matched
		}
	}
	for i := range r.IntN(4) {
		q.Forms = append(q.Forms, pdq.Form{Name: fmt.Sprintf("frame %d", i), Variant: pdq.VariantFrame, Hash: nearHash(r, es), Quality: r.IntN(101)})
	}
	for i := range r.IntN(3) {
		m, s1 := exactOf(r, es, kMD5, kVideoMD5), exactOf(r, es, kSHA1)
		q.Embedded = append(q.Embedded, EmbeddedDigests{
			Where: fmt.Sprintf("pdf image object %d", i), MD5: [16]byte(m[:16]), SHA1: [20]byte(s1[:20]), SHA256: exactOf(r, es, kSHA256),
		})
	}
	return q
}

// TestRetroMatcherProperty: for random banks changed at random, a
// RetroMatcher of the change's Added (and Removed) agrees with a Local
// loaded with only those lines and with a brute-force scan, match for
// match and, on a match, verdict for verdict.
func TestRetroMatcherProperty(t *testing.T) {
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	for round := range rounds {
		r := rand.New(rand.NewPCG(uint64(round), 77))
		labelled := r.IntN(4) > 0
		old := make([]testEntry, r.IntN(60))
		for i := range old {
			old[i] = randEntry(r, labelled)
		}
		// The new version: some lines dropped, some added anywhere, some
		// copied (a second copy of a PDQ hash is an addition).
		var next []testEntry
		for _, e := range old {
			if r.IntN(5) > 0 {
				next = append(next, e)
			}
			if r.IntN(6) == 0 {
				next = append(next, randEntry(r, labelled))
			}
			if r.IntN(15) == 0 {
				next = append(next, old[r.IntN(len(old))])
			}
		}
		for range r.IntN(30) {
			next = append(next, randEntry(r, labelled))
		}
		thresholds := []int{31, 31, 10, 45, 63}
		qualities := []int{50, 0, 80}
		th, mq, di := thresholds[r.IntN(len(thresholds))], qualities[r.IntN(len(qualities))], r.IntN(2) == 0
		t.Run(fmt.Sprintf("round%d/t%d/q%d/dihedral%v", round, th, mq, di), func(t *testing.T) {
			dir := t.TempDir()
			cfg := func(path string) LocalConfig {
				return LocalConfig{Banks: []BankConfig{{Name: "RETRO", Path: path}}, PDQThreshold: th, MinPDQQuality: &mq, Dihedral: di, ReloadInterval: -1}
			}
			p := filepath.Join(dir, "bank.txt")
			writeFile(t, p, bankText(old))
			var changes []BankChange
			c := cfg(p)
			c.OnChange = func(ch BankChange) { changes = append(changes, ch) }
			l := newTestLocal(t, c)
			rewrite(t, p, bankText(next))
			if err := l.Reload(); err != nil {
				t.Fatal(err)
			}
			added, removed := expectedDelta(old, next), expectedDelta(next, old)
			if len(added)+len(removed) == 0 {
				if len(changes) != 0 {
					t.Fatalf("%d changes reported for no change", len(changes))
				}
				return
			}
			if len(changes) != 1 {
				t.Fatalf("%d changes reported, want 1", len(changes))
			}
			ch := changes[0]
			if ch.Bank != "RETRO" || ch.Fingerprint != l.Fingerprint() {
				t.Errorf("change of %q fingerprint %q, want RETRO %q", ch.Bank, ch.Fingerprint, l.Fingerprint())
			}
			for _, side := range []struct {
				name string
				es   []testEntry
				bank *Bank
			}{{"added", added, ch.Added}, {"removed", removed, ch.Removed}} {
				dp := filepath.Join(dir, side.name+".txt")
				writeFile(t, dp, bankText(side.es))
				want := newTestLocal(t, cfg(dp))
				if got, w := side.bank.Counts(), want.Stats(); got != w {
					t.Fatalf("%s: counts %+v, a load of the lines has %+v", side.name, got, w)
				}
				rm := l.RetroMatcher(side.bank)
				pool := append(append([]testEntry(nil), side.es...), next...)
				hits := 0
				for qi := range 400 {
					q := randQuery(r, pool)
					wv := match(t, want, q)
					brute := bruteMatches(side.es, &q, th, mq, di)
					if wv.Match != brute {
						t.Fatalf("%s query %d: Local says %v, brute force %v", side.name, qi, wv.Match, brute)
					}
					if got := rm.Matches(&q); got != brute {
						t.Fatalf("%s query %d: Matches %v, want %v (%+v)", side.name, qi, got, brute, q)
					}
					gv := rm.Match(&q)
					if !wv.Match {
						if !reflect.DeepEqual(gv, Verdict{}) {
							t.Fatalf("%s query %d: no match but verdict %+v", side.name, qi, gv)
						}
						continue
					}
					hits++
					if !reflect.DeepEqual(gv, wv) {
						t.Fatalf("%s query %d:\n got %+v\nwant %+v", side.name, qi, gv, wv)
					}
				}
				if len(side.es) > 5 && hits == 0 {
					t.Errorf("%s: no query matched: the test tests nothing", side.name)
				}
			}
		})
	}
}

// TestRetroMatcherSeveralBanks: evidence names each bank in the order
// given, as Local names its banks in configuration order.
func TestRetroMatcherSeveralBanks(t *testing.T) {
	dir := t.TempDir()
	base := mustPDQ(t, tPDQ)
	a, b := filepath.Join(dir, "a.txt"), filepath.Join(dir, "b.txt")
	writeFile(t, a, "md5 "+tMD5+" in-a\npdq "+flip(base, 3).String()+" a3\n")
	writeFile(t, b, "md5 "+tMD5+" in-b\npdq "+flip(base, 1).String()+" b1\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "A", Path: a}, {Name: "B", Path: b}}})
	rm := l.RetroMatcher(l.Bank("A"), nil, l.Bank("B"))
	q := Query{Has: HasMD5 | HasPDQ, MD5: digest16(t, tMD5), PDQ: base, PDQQuality: 90}
	if got, want := rm.Match(&q), match(t, l, q); !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if c := rm.Counts(); c != (Counts{MD5: 2, PDQ: 2}) {
		t.Errorf("counts %+v", c)
	}
	if empty := l.RetroMatcher(); empty.Matches(&q) || empty.Match(&q).Match {
		t.Error("a matcher of no banks matched")
	}
}

func TestRetroMatcherMissAllocs(t *testing.T) {
	rm, queries := retroBench(t, 1000, 1000, 10)
	for i := range 2 {
		q := &queries[i]
		if n := testing.AllocsPerRun(100, func() { rm.Matches(q) }); n != 0 {
			t.Errorf("Matches allocates %v times", n)
		}
		if n := testing.AllocsPerRun(100, func() { rm.Match(q) }); n != 0 {
			t.Errorf("Match of a miss allocates %v times", n)
		}
	}
}

// retroBench builds a Local whose bank is nPDQ random PDQ entries and
// nExact exact ones (md5, sha1, sha256 in turn), its RetroMatcher, and
// random queries that miss it, each with all digests, a PDQ hash and
// forms forms.
func retroBench(tb testing.TB, nPDQ, nExact, forms int) (*RetroMatcher, []Query) {
	r := rand.New(rand.NewPCG(5, 6))
	var sb strings.Builder
	for i := range nPDQ {
		fmt.Fprintf(&sb, "pdq %s new-%d\n", randPDQ(r), i)
	}
	for i := range nExact {
		var d [32]byte
		for j := range d {
			d[j] = byte(r.Uint32())
		}
		k := []kind{kMD5, kSHA1, kSHA256}[i%3]
		fmt.Fprintf(&sb, "%s %s new-%d\n", kindTypes[k], hex.EncodeToString(d[:kindHexLen[k]/2]), i)
	}
	p := filepath.Join(tb.TempDir(), "new.txt")
	writeFile(tb, p, sb.String())
	l, err := NewLocal(LocalConfig{Banks: []BankConfig{{Name: "NEW", Path: p}}, Dihedral: true, ReloadInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	rm := l.RetroMatcher(l.Bank("NEW"))
	queries := make([]Query, 1024)
	for i := range queries {
		q := Query{Has: HasMD5 | HasSHA1 | HasSHA256 | HasPDQ, PDQ: randPDQ(r), PDQQuality: 90, Kind: KindImage}
		for j := range q.MD5 {
			q.MD5[j] = byte(r.Uint32())
		}
		for j := range q.SHA1 {
			q.SHA1[j] = byte(r.Uint32())
		}
		for j := range q.SHA256 {
			q.SHA256[j] = byte(r.Uint32())
		}
		for j := range forms {
			q.Forms = append(q.Forms, pdq.Form{Name: fmt.Sprintf("frame %d", j), Variant: pdq.VariantFrame, Hash: randPDQ(r), Quality: 90})
		}
		queries[i] = q
	}
	return rm, queries
}

// BenchmarkRetroMatcher is the retro-scan's cost per ledger record: a
// RetroMatcher of 1,000 new PDQ and 1,000 new exact entries asked about
// media that match none of them (as nearly all do), with one PDQ hash or
// with 10 forms besides. The parallel variants use every core, as a scan
// of the ledger in parts does.
func BenchmarkRetroMatcher(b *testing.B) {
	for _, forms := range []int{0, 10} {
		rm, queries := retroBench(b, 1000, 1000, forms)
		b.Run(fmt.Sprintf("forms%d", forms), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if rm.Match(&queries[i&1023]).Match {
					b.Fatal("a random query matched")
				}
			}
		})
		b.Run(fmt.Sprintf("forms%d/parallel", forms), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					rm.Matches(&queries[i&1023])
					i++
				}
			})
		})
	}
}

// BenchmarkLocalMatchSmallBank is Local.Match against the same 2,000
// entries, for comparison: what a retro-scan would cost without
// RetroMatcher.
func BenchmarkLocalMatchSmallBank(b *testing.B) {
	rm, queries := retroBench(b, 1000, 1000, 0)
	ctx := context.Background()
	l := &Local{threshold: rm.l.threshold, minQuality: rm.l.minQuality, dihedral: rm.l.dihedral}
	l.state.Store(rm.st)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		l.Match(ctx, queries[i&1023])
	}
}
