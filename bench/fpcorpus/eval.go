package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/picture"
	"github.com/mediaguard/mediaguard/hashing/worker"
	"github.com/mediaguard/mediaguard/matcher"
)

// minSide is the smallest picture side kept: below it a picture is an
// icon or a spacer, which PDQ hashes poorly and no list holds.
const minSide = 32

// hashed is a candidate that decoded, with its stored PDQ hash.
type hashed struct {
	candidate
	W, H    int
	Hash    pdq.Hash
	Quality int
	// Shown are the hashes of the forms a viewer is shown, the stored one
	// first (then composited on white or black, orientation or colour
	// profile applied, further frames): what the picture is, before any
	// edit is undone.
	Shown []pdq.Hash
}

func (h *hashed) id() string { return h.Source + ":" + h.Name }

// hashStored decodes every candidate as the proxy does (hashing/worker,
// which runs hashing/picture) and keeps its stored hash: the first frame
// as stored, which is what lists are built from. Undecodable files and
// pictures with a side under minSide are dropped and counted.
func hashStored(cands []candidate, maxPixels, workers int) (out []hashed, undecodable []string, tiny int) {
	res := make([]*hashed, len(cands))
	errs := make([]error, len(cands))
	var small atomic.Int64
	parallel(len(cands), workers, func(i int) {
		c := cands[i]
		_, w, h, err := picture.DecodeConfig(bytes.NewReader(c.Data))
		if err == nil && (w < minSide || h < minSide) {
			small.Add(1)
			return
		}
		r, _, err := worker.HashViewedBytes(c.Data, pdq.DecodeOptions{MaxPixels: maxPixels, Viewed: true}, pdq.Options{Workers: 1, Search: pdq.SearchOff})
		if err != nil {
			errs[i] = err
			return
		}
		res[i] = &hashed{candidate: c, W: w, H: h, Hash: r.Hash, Quality: r.Quality}
		res[i].Shown = append(res[i].Shown, r.Hash)
		for _, f := range r.Forms {
			res[i].Shown = append(res[i].Shown, f.Hash)
		}
	})
	for i, r := range res {
		if r != nil {
			out = append(out, *r)
		}
		if errs[i] != nil {
			undecodable = append(undecodable, cands[i].Source+":"+cands[i].Name+": "+errs[i].Error())
		}
	}
	return out, undecodable, int(small.Load())
}

// dedup keeps, in order of content SHA-256, each picture none of whose
// viewed hashes (stored, composited, displayed, ...) is within threshold
// of any viewed hash of a picture kept before it, so no two kept
// pictures would match each other before any editing: the same emblem
// at two sizes differs as stored (the colour under transparent pixels)
// but not as shown. Identical files are one picture, and so are the
// files that same groups (related.txt) as one picture: the same artwork
// with another margin is an edit PDQ cannot see through, which a person
// judged. It returns the kept pictures and how many were dropped by
// same alone.
func dedup(in []hashed, threshold int, same map[string]int) (kept []hashed, related int) {
	in = slices.Clone(in)
	slices.SortFunc(in, func(a, b hashed) int { return bytes.Compare(a.Sum[:], b.Sum[:]) })
	groupKept := map[int]bool{}
	for i, h := range in {
		if i > 0 && h.Sum == in[i-1].Sum {
			continue
		}
		near := false
		for j := range kept {
			if nearAny(&h, &kept[j], threshold) {
				near = true
				break
			}
		}
		if near {
			continue
		}
		if g, ok := same[h.id()]; ok {
			if groupKept[g] {
				related++
				continue
			}
			groupKept[g] = true
		}
		kept = append(kept, h)
	}
	return kept, related
}

func nearAny(a, b *hashed, threshold int) bool {
	for _, x := range a.Shown {
		for _, y := range b.Shown {
			if pdq.Distance(x, y) <= threshold {
				return true
			}
		}
	}
	return false
}

// split deals the kept pictures, in order of content SHA-256, alternately
// to the bank (a) and the queries (b).
func split(kept []hashed) (a, b []hashed) {
	kept = slices.Clone(kept)
	slices.SortFunc(kept, func(x, y hashed) int { return bytes.Compare(x.Sum[:], y.Sum[:]) })
	for i, h := range kept {
		if i%2 == 0 {
			a = append(a, h)
		} else {
			b = append(b, h)
		}
	}
	return a, b
}

// kindStats is what one variant kind did against the bank.
type kindStats struct {
	Kind string
	// Forms is how many forms of this kind were hashed; LowQuality how
	// many of them had a quality under the minimum (never matched).
	Forms, LowQuality int
	// Matches are forms matched at the settings; Held are forms within
	// the threshold that the quality minimum kept from matching.
	Matches, Held int
	// Closest is, for each form of usable quality that did not match, its
	// distance to the nearest banked hash.
	Closest []int
}

// match is one false positive: a form of a query picture within the
// threshold of a banked picture.
type match struct {
	Query, Form, Kind, Bank string
	Distance, Quality       int
}

// evaluation is the outcome of matching every form of the queries.
type evaluation struct {
	Kinds   []*kindStats // in the order kinds were first seen, "stored" first
	Matches []match
	// Images is how many query pictures were hashed; Failed how many of
	// them could not be hashed the second time (never, unless the
	// decoder is not deterministic).
	Images, Failed int
	// Verdicts is how many queries the real matcher (matcher.Local over a
	// bank file of the bank half) judged a match; it must agree with
	// the forms counted in Matches.
	Verdicts int
	// FormsPerImage counts the forms of each query beyond the stored
	// hash, by query index, for the tests.
	FormsPerImage []int
}

// evaluate banks the stored hashes of a, hashes every form of each
// picture of b at the given search level, and matches each form against
// the bank twice: through matcher.Local, the proxy's own local-bank code
// (the verdict), and by a linear scan with the same rules (a form is
// matched when its quality is at least minQuality and its distance to a
// banked hash at most threshold), which also gives the closest distance
// of every form that did not match.
func evaluate(a, b []hashed, search pdq.Search, threshold, minQuality, maxPixels, workers int) (*evaluation, error) {
	dir, err := os.MkdirTemp("", "fpcorpus-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	var bank strings.Builder
	var banked []hashed
	for i, h := range a {
		if h.Hash.IsZero() {
			continue // bank files refuse it: it would match every blank picture
		}
		fmt.Fprintf(&bank, "pdq %s a%d\n", h.Hash, i)
		banked = append(banked, a[i])
	}
	path := filepath.Join(dir, "corpus.bank")
	if err := os.WriteFile(path, []byte(bank.String()), 0o600); err != nil {
		return nil, err
	}
	local, err := matcher.NewLocal(matcher.LocalConfig{
		Banks:         []matcher.BankConfig{{Name: "FPCORPUS", Path: path}},
		PDQThreshold:  threshold,
		MinPDQQuality: &minQuality,
		// Not dihedral: the proxy's default, and variants are the subject.
		ReloadInterval: -1,
	})
	if err != nil {
		return nil, err
	}
	defer local.Close()

	type outcome struct {
		res     pdq.Result
		err     error
		verdict matcher.Verdict
	}
	outs := make([]outcome, len(b))
	parallel(len(b), workers, func(i int) {
		res, _, err := worker.HashViewedBytes(b[i].Data, pdq.DecodeOptions{MaxPixels: maxPixels, Viewed: true}, pdq.Options{Workers: 1, Search: search})
		if err != nil {
			outs[i].err = err
			return
		}
		outs[i].res = res
		outs[i].verdict, outs[i].err = local.Match(context.Background(), matcher.Query{
			Has: matcher.HasPDQ, PDQ: res.Hash, PDQQuality: res.Quality, Forms: res.Forms, Kind: matcher.KindImage,
		})
	})

	ev := &evaluation{Images: len(b), FormsPerImage: make([]int, len(b))}
	byKind := map[string]*kindStats{}
	stats := func(kind string) *kindStats {
		if s := byKind[kind]; s != nil {
			return s
		}
		s := &kindStats{Kind: kind}
		byKind[kind] = s
		ev.Kinds = append(ev.Kinds, s)
		return s
	}
	stats(pdq.VariantStored)
	for i, o := range outs {
		if o.err != nil {
			ev.Failed++
			continue
		}
		forms := append([]pdq.Form{{Name: "", Variant: pdq.VariantStored, Hash: o.res.Hash, Quality: o.res.Quality}}, o.res.Forms...)
		ev.FormsPerImage[i] = len(o.res.Forms)
		matched := false
		for _, f := range forms {
			kind := f.Variant
			if kind == "" {
				kind = "unnamed"
			}
			s := stats(kind)
			s.Forms++
			if f.Hash.IsZero() {
				s.LowQuality++ // the matcher never matches it either
				continue
			}
			best, bi := 257, -1
			for j := range banked {
				if d := pdq.Distance(f.Hash, banked[j].Hash); d < best {
					best, bi = d, j
				}
			}
			usable := f.Quality >= minQuality
			if !usable {
				s.LowQuality++
			}
			switch {
			case bi < 0:
			case best <= threshold && usable:
				s.Matches++
				matched = true
				ev.Matches = append(ev.Matches, match{Query: b[i].id(), Form: f.Name, Kind: kind, Bank: banked[bi].id(), Distance: best, Quality: f.Quality})
			case best <= threshold:
				s.Held++
			case usable:
				s.Closest = append(s.Closest, best)
			}
		}
		if o.verdict.Match {
			ev.Verdicts++
		}
		if o.verdict.Match != matched {
			return ev, fmt.Errorf("%s: matcher.Local says match=%v (%s), the scan says %v: the two disagree", b[i].id(), o.verdict.Match, o.verdict.Reason, matched)
		}
	}
	return ev, nil
}

// percentile of sorted vals (nearest rank), or -1 for none.
func percentile(sorted []int, p float64) int {
	if len(sorted) == 0 {
		return -1
	}
	k := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

func sortedCopy(v []int) []int {
	v = slices.Clone(v)
	sort.Ints(v)
	return v
}

// parallel runs f(0..n-1) on up to workers goroutines.
func parallel(n, workers int, f func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(workers, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}
