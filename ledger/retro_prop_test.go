package ledger

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
)

// TestRetroEqualsLinearScan is the retro-scan's property: for a random
// ledger and a random bank change built as the service builds it, the hits
// of Book.Retro are exactly the records (not already blocked) that a
// Local holding only the added lines matches when asked about each record
// on its own, with the same verdict. The records are genRecord's mix
// (forms, embedded files, low quality, unscannable, blocked), a tenth
// with dihedral hashes; the change plants lines near records' hashes at
// distances around the threshold and their exact digests, and dihedral
// matching is on in every other round. Both stores, since the embedded
// one answers from a partial decoding (decodeQuery) and PostgreSQL from
// whole rows.
func TestRetroEqualsLinearScan(t *testing.T) {
	for _, sk := range storeKinds {
		t.Run(sk.name, func(t *testing.T) {
			for round := range 4 {
				t.Run(fmt.Sprint("round ", round), func(t *testing.T) {
					checkRetroRound(t, sk, uint64(round+1), round%2 == 1)
				})
			}
		})
	}
}

func checkRetroRound(t *testing.T, sk storeKind, seed uint64, dihedral bool) {
	ctx := context.Background()
	s, _ := sk.open(t)
	rng := rand.New(rand.NewPCG(seed, 99))
	recs := make([]Record, 3*scanChunk+50)
	all := map[Key]Record{}
	var targets []Record
	var lines []string
	for i := range recs {
		r := genRecord(i, seed)
		if q := &r.Query; q.Has&matcher.HasPDQ != 0 && rng.IntN(10) == 0 {
			q.Dihedral = []pdq.Hash{q.PDQ}
			for range 7 {
				q.Dihedral = append(q.Dihedral, genHash(rng))
			}
			// A line near a turned copy: a hit only with dihedral matching.
			lines = append(lines, fmt.Sprintf("pdq %s dihedral-%d", flipBits(rng, q.Dihedral[1+rng.IntN(7)], rng.IntN(matcher.DefaultPDQThreshold+3)), i))
		}
		recs[i], all[r.Key] = r, r
		if rng.IntN(8) == 0 {
			targets = append(targets, r)
		}
	}
	putAll(t, s, all)
	added := append(genChange(rng, targets, 150, 150), lines...)
	ch, local := serviceChange(t, genBaseBank(rng, 100), added, fmt.Sprint("prop-", seed), dihedral)
	if err := s.SetMeta(ctx, metaConsistent, ch.From); err != nil {
		t.Fatal(err)
	}
	book := NewBook(BookConfig{Store: s, Matcher: local, Fingerprint: local.Fingerprint})
	t.Cleanup(func() { book.Close() })
	got := map[Key]matcher.Verdict{}
	st, err := book.Retro(ctx, ch, func(h Hit) { got[h.Record.Key] = h.Verdict }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := linearLocal(t, added, dihedral)
	want := map[Key]matcher.Verdict{}
	for i := range recs {
		if v, ok := linearHit(ref, &recs[i]); ok {
			want[recs[i].Key] = v
		}
	}
	if len(want) < 20 {
		t.Fatalf("only %d records hit: the planted lines miss", len(want))
	}
	if st.CatchUp || st.Scanned != len(recs) || st.Hits != len(want) {
		t.Errorf("retro-scan %+v; want %d scanned, %d hits, not a catch-up", st, len(recs), len(want))
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: the linear scan matches it (%s), the retro-scan did not", k, w.Reason)
			continue
		}
		if g.Bank != w.Bank || g.HashType != w.HashType || g.MatchedHash != w.MatchedHash || g.Distance != w.Distance || g.Form != w.Form || g.Variant != w.Variant || g.Reason != w.Reason {
			t.Errorf("%s: retro verdict %+v\nlinear verdict %+v", k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: the retro-scan matched it (%s), the linear scan does not", k, g.Reason)
		}
	}
	// And what it recorded: the hits blocked, the rest as they were.
	for i := range recs {
		r := &recs[i]
		stored, ok, err := s.Get(ctx, r.Key)
		if err != nil || !ok {
			t.Fatalf("%s: Get = %v, %v", r.Key, ok, err)
		}
		_, hit := want[r.Key]
		if wantV := map[bool]Verdict{true: Blocked, false: r.Verdict}[hit]; stored.Verdict != wantV {
			t.Errorf("%s: stored verdict %s, want %s", r.Key, stored.Verdict, wantV)
		}
	}
}
