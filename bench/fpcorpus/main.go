// Command fpcorpus measures false positives of PDQ matching with search
// variants: every extra hash of a picture (trimmed, peeled,
// quadrants, negative, ... and with deep search the paste windows and
// rotations) is one more chance to match a list by accident.
//
// It builds a clean corpus of pictures nobody would list: those shipped by
// the Debian packages named in packages.txt (desktop backgrounds,
// documentation screenshots and figures, test and clip art; fetched with
// apt-get download into a cache), Go's own test images, and deterministic
// synthetic pictures. It decodes each as the proxy does, de-duplicates
// them so that no two are within the PDQ threshold of each other as
// stored, banks half of them (the stored hash, as lists are built) and
// matches every form and variant of every picture of the other half
// against that bank, through matcher.Local as the proxy does. It prints a
// markdown table per variant kind: how many forms, how many matched, and
// the distance of the closest non-match (min, p1, p5, p50), which is the
// margin an operator has. It exits 1 if anything matched.
//
//	go run -tags nodynamic ./bench/fpcorpus [-search default|deep|off] [-quick] [-max N] [-report-only]
//
// -quick uses Go's test images and synthetic pictures only (no network).
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// config is one run's settings.
type config struct {
	Cache      string
	Packages   []debPackage // none with Quick
	Quick      bool
	Synthetic  int
	SynthSides [2]int
	Seed       uint64
	Max        int // keep at most this many pictures after de-duplication; 0: all
	Search     pdq.Search
	Threshold  int
	MinQuality int
	MaxPixels  int
	Workers    int
	Log        io.Writer
}

// sourceCount is one source's contribution to the corpus.
type sourceCount struct {
	Source             string
	Files, Kept, Bytes int
}

// result is a run's outcome.
type result struct {
	cfg         config
	DebBytes    int64
	Sources     []sourceCount
	Candidates  int // picture files found
	Undecodable []string
	Tiny        int
	Decoded     int
	Kept        []hashed
	Related     int // dropped as one picture with a kept one (related.txt)
	LowQuality  int // kept pictures of stored quality under the minimum
	A, B        []hashed
	Eval        *evaluation
	TCorpus     time.Duration // download, extraction, synthesis
	THash       time.Duration // decoding and stored hashes of every candidate
	TEval       time.Duration // variants of half B and matching
}

func run(cfg config) (*result, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	r := &result{cfg: cfg}
	t0 := time.Now()
	var cands []candidate
	if !cfg.Quick && len(cfg.Packages) > 0 {
		var names []string
		for _, p := range cfg.Packages {
			names = append(names, p.Name)
		}
		debs, n, err := fetchDebs(cfg.Cache, names, cfg.Log)
		if err != nil {
			return nil, err
		}
		r.DebBytes = n
		for i, deb := range debs {
			c, err := debPictures(cfg.Packages[i], deb)
			if err != nil {
				return nil, err
			}
			cands = append(cands, c...)
		}
	}
	goImgs, err := goTestImages()
	if err != nil {
		return nil, err
	}
	cands = append(cands, goImgs...)
	cands = append(cands, synthetic(cfg.Synthetic, cfg.Seed, cfg.SynthSides[0], cfg.SynthSides[1])...)
	r.Candidates = len(cands)
	r.TCorpus = time.Since(t0)
	fmt.Fprintf(cfg.Log, "fpcorpus: %d picture files in %v; hashing them\n", len(cands), r.TCorpus.Round(time.Millisecond))

	t1 := time.Now()
	all, bad, tiny := hashStored(cands, cfg.MaxPixels, cfg.Workers)
	r.Undecodable, r.Tiny, r.Decoded = bad, tiny, len(all)
	for _, u := range bad {
		fmt.Fprintln(cfg.Log, "fpcorpus: undecodable:", u)
	}
	r.Kept, r.Related = dedup(all, cfg.Threshold, parseRelated(relatedTxt))
	if cfg.Max > 0 && len(r.Kept) > cfg.Max {
		r.Kept = r.Kept[:cfg.Max]
	}
	r.THash = time.Since(t1)
	for _, h := range r.Kept {
		if h.Quality < cfg.MinQuality {
			r.LowQuality++
		}
	}
	idx := map[string]int{}
	for _, c := range cands {
		i, ok := idx[c.Source]
		if !ok {
			i = len(r.Sources)
			idx[c.Source] = i
			r.Sources = append(r.Sources, sourceCount{Source: c.Source})
		}
		r.Sources[i].Files++
	}
	for _, h := range r.Kept {
		r.Sources[idx[h.Source]].Kept++
		r.Sources[idx[h.Source]].Bytes += len(h.Data)
	}
	r.A, r.B = split(r.Kept)
	fmt.Fprintf(cfg.Log, "fpcorpus: %d decoded, %d kept after de-duplication in %v; matching %d against a bank of %d at search %v\n",
		r.Decoded, len(r.Kept), r.THash.Round(time.Millisecond), len(r.B), len(r.A), cfg.Search)

	t2 := time.Now()
	r.Eval, err = evaluate(r.A, r.B, cfg.Search, cfg.Threshold, cfg.MinQuality, cfg.MaxPixels, cfg.Workers)
	r.TEval = time.Since(t2)
	return r, err
}

// report writes the run as markdown, for BENCHMARKS.md.
func (r *result) report(w io.Writer) {
	cfg := r.cfg
	ev := r.Eval
	fmt.Fprintf(w, "machine: %d cores, %s, %d workers; search %v, threshold %d, minimum quality %d, decoded at most %d pixels\n\n",
		runtime.NumCPU(), runtime.Version(), cfg.Workers, cfg.Search, cfg.Threshold, cfg.MinQuality, cfg.MaxPixels)
	if cfg.Quick {
		fmt.Fprintf(w, "corpus (quick: no packages): ")
	} else {
		fmt.Fprintf(w, "corpus: %d Debian packages (%.1f MB of .deb), ", len(cfg.Packages), float64(r.DebBytes)/1e6)
	}
	fmt.Fprintf(w, "%d picture files, %d undecodable, %d under %d px, %d decoded, %d kept after de-duplication (and %d more dropped as one picture with a kept one, related.txt; %d kept of stored quality < %d); bank %d, queries %d\n\n",
		r.Candidates, len(r.Undecodable), r.Tiny, minSide, r.Decoded, len(r.Kept), r.Related, r.LowQuality, cfg.MinQuality, len(r.A), len(r.B))
	fmt.Fprintf(w, "| source | files | kept |\n|---|---:|---:|\n")
	for _, s := range r.Sources {
		fmt.Fprintf(w, "| %s | %d | %d |\n", s.Source, s.Files, s.Kept)
	}
	fmt.Fprintln(w)
	forms := 0
	for _, k := range ev.Kinds {
		forms += k.Forms
	}
	fmt.Fprintf(w, "time: corpus %v, decode + stored hash of all %v, variants + matching of %d queries %v (%.1f pictures/s, %d forms); total %v\n\n",
		r.TCorpus.Round(100*time.Millisecond), r.THash.Round(100*time.Millisecond), ev.Images, r.TEval.Round(100*time.Millisecond),
		float64(ev.Images)/r.TEval.Seconds(), forms, (r.TCorpus + r.THash + r.TEval).Round(100*time.Millisecond))
	fmt.Fprintf(w, "| variant | forms | quality < %d | matches | within %d, held by quality | closest non-match: min | p1 | p5 | p50 |\n", cfg.MinQuality, cfg.Threshold)
	fmt.Fprintf(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	all := &kindStats{Kind: "**all**"}
	for _, k := range append(slices.Clone(ev.Kinds), all) {
		if k != all {
			all.Forms += k.Forms
			all.LowQuality += k.LowQuality
			all.Matches += k.Matches
			all.Held += k.Held
			all.Closest = append(all.Closest, k.Closest...)
		}
		c := sortedCopy(k.Closest)
		pc := func(p float64) string {
			if len(c) == 0 {
				return "–"
			}
			return fmt.Sprint(percentile(c, p))
		}
		fmt.Fprintf(w, "| %s | %d | %d | %d | %d | %s | %s | %s | %s |\n", k.Kind, k.Forms, k.LowQuality, k.Matches, k.Held, pc(0), pc(1), pc(5), pc(50))
	}
	fmt.Fprintln(w)
	if ev.Failed > 0 {
		fmt.Fprintf(w, "%d queries failed to hash the second time\n", ev.Failed)
	}
	if len(ev.Matches) == 0 {
		fmt.Fprintf(w, "false positives: none (%d queries, %d forms, the matcher agreeing)\n", ev.Images, forms)
		return
	}
	fmt.Fprintf(w, "false positives: %d forms of %d queries (matcher.Local verdicts: %d)\n\n", len(ev.Matches), ev.Images, ev.Verdicts)
	for _, m := range ev.Matches {
		fmt.Fprintf(w, "- %s, form %q (%s, quality %d) is %d from banked %s\n", m.Query, m.Form, m.Kind, m.Quality, m.Distance, m.Bank)
	}
}

func main() {
	cfg := config{Log: os.Stderr, Seed: 13, SynthSides: [2]int{256, 768}}
	flag.StringVar(&cfg.Cache, "cache", defaultCache(), "directory for the downloaded .deb files (kept between runs)")
	flag.BoolVar(&cfg.Quick, "quick", false, "Go's test images and synthetic pictures only: no packages, no network")
	flag.IntVar(&cfg.Synthetic, "synthetic", 0, "synthetic pictures (0: 400, or 140 with -quick)")
	flag.IntVar(&cfg.Max, "max", 0, "keep at most N pictures after de-duplication (0: all)")
	search := flag.String("search", "default", "search variants: off, default or deep")
	flag.IntVar(&cfg.Threshold, "threshold", matcher.DefaultPDQThreshold, "largest PDQ distance that matches")
	flag.IntVar(&cfg.MinQuality, "min-quality", matcher.DefaultMinPDQQuality, "PDQ quality under which a form is not matched")
	flag.IntVar(&cfg.MaxPixels, "max-pixels", mediaproxy.DefaultMaxPixels, "decode larger pictures at a reduced scale where the format allows (the proxy's default)")
	flag.IntVar(&cfg.Workers, "workers", runtime.GOMAXPROCS(0), "pictures hashed at once")
	reportOnly := flag.Bool("report-only", false, "exit 0 even if something matched")
	pkgs := flag.String("packages", "", "comma-separated packages of packages.txt to use (default all)")
	flag.Parse()
	var err error
	if cfg.Search, err = pdq.ParseSearch(*search); err != nil {
		fatal(err)
	}
	if !cfg.Quick {
		if cfg.Packages, err = parsePackages(packagesTxt); err != nil {
			fatal(err)
		}
		if *pkgs != "" {
			keep := strings.Split(*pkgs, ",")
			cfg.Packages = slices.DeleteFunc(cfg.Packages, func(p debPackage) bool { return !slices.Contains(keep, p.Name) })
		}
	}
	if cfg.Synthetic == 0 {
		cfg.Synthetic = 400
		if cfg.Quick {
			cfg.Synthetic = 140
		}
	}
	r, err := run(cfg)
	if err != nil {
		fatal(err)
	}
	r.report(os.Stdout)
	if len(r.Eval.Matches) > 0 && !*reportOnly {
		os.Exit(1)
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "fpcorpus:", err)
	os.Exit(2)
}
