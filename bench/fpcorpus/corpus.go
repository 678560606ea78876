package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mediaguard/mediaguard/hashing/picture"
)

// packagesTxt lists the Debian packages whose pictures make the corpus.
//
//go:embed packages.txt
var packagesTxt string

// relatedTxt groups corpus files that are one picture although PDQ
// cannot tell (see dedup).
//
//go:embed related.txt
var relatedTxt string

// parseRelated reads related.txt: on each line the SOURCE:PATH of files
// that are one picture; "#" starts a comment. It maps each to its line.
func parseRelated(s string) map[string]int {
	m := map[string]int{}
	for i, line := range strings.Split(s, "\n") {
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		for _, f := range strings.Fields(line) {
			m[f] = i
		}
	}
	return m
}

// candidate is one file of the corpus before decoding.
type candidate struct {
	// Source is the Debian package, "go" or "synthetic".
	Source string
	// Name is the path inside the package (or a synthetic name).
	Name string
	Data []byte
	Sum  [32]byte
}

func newCandidate(source, name string, data []byte) candidate {
	return candidate{Source: source, Name: name, Data: data, Sum: sha256.Sum256(data)}
}

// Limits on the files taken from packages: anything smaller is no picture
// worth hashing (a 1×1 spacer), anything larger is not a Matrix upload.
const (
	minFileSize = 100
	maxFileSize = 50 << 20
)

// debPackage is one line of packages.txt.
type debPackage struct {
	Name string
	// Include, when set, are the only path prefixes inside the package
	// taken (written "+PREFIX" after the name); Exclude are prefixes
	// left out ("!PREFIX"). Both keep out series of one picture under
	// many edits (an image editor's before-and-after examples), which are
	// not distinct pictures: matching one edit to another is no false
	// positive.
	Include, Exclude []string
}

func (p debPackage) excluded(name string) bool {
	for _, e := range p.Exclude {
		if strings.HasPrefix(name, e) {
			return true
		}
	}
	for _, e := range p.Include {
		if strings.HasPrefix(name, e) {
			return false
		}
	}
	return len(p.Include) > 0
}

// parsePackages reads packages.txt: a package name a line, optionally
// followed by "+PREFIX" inclusions and "!PREFIX" exclusions; "#" starts
// a comment.
func parsePackages(s string) ([]debPackage, error) {
	var pkgs []debPackage
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		p := debPackage{Name: f[0]}
		for _, e := range f[1:] {
			switch {
			case len(e) >= 2 && e[0] == '!':
				p.Exclude = append(p.Exclude, e[1:])
			case len(e) >= 2 && e[0] == '+':
				p.Include = append(p.Include, e[1:])
			default:
				return nil, fmt.Errorf("packages.txt: %q: after the package name only +PREFIX and !PREFIX may follow", line)
			}
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, sc.Err()
}

// defaultCache is where the .debs are kept between runs.
func defaultCache() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		if home, err := os.UserHomeDir(); err == nil {
			base = filepath.Join(home, ".cache")
		} else {
			base = os.TempDir()
		}
	}
	return filepath.Join(base, "mediaguard-fpcorpus")
}

// cachedDeb returns the .deb of pkg already in dir, or "". No version is
// pinned: whichever version was fetched first stays until the cache is
// cleared.
func cachedDeb(dir, pkg string) string {
	m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
	slices.Sort(m)
	if len(m) == 0 {
		return ""
	}
	return m[len(m)-1]
}

// fetchDebs makes sure every package's .deb is in dir (apt-get download,
// which needs no root) and returns their paths in the order given.
func fetchDebs(dir string, pkgs []string, log io.Writer) ([]string, int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, 0, err
	}
	var missing []string
	for _, p := range pkgs {
		if cachedDeb(dir, p) == "" {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		fmt.Fprintf(log, "fpcorpus: apt-get download %s (into %s)\n", strings.Join(missing, " "), dir)
		cmd := exec.Command("apt-get", append([]string{"download", "-q"}, missing...)...)
		cmd.Dir = dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			return nil, 0, fmt.Errorf("apt-get download: %v\n%s(run apt-get update first if the package lists are missing)", err, out.String())
		}
	}
	var paths []string
	var total int64
	for _, p := range pkgs {
		f := cachedDeb(dir, p)
		if f == "" {
			return nil, 0, fmt.Errorf("%s: apt-get download left no .deb in %s", p, dir)
		}
		if st, err := os.Stat(f); err == nil {
			total += st.Size()
		}
		paths = append(paths, f)
	}
	return paths, total, nil
}

// debPictures returns the files of a .deb that are pictures by their
// bytes (not their names), read from dpkg-deb's tar stream without
// unpacking anything to disk.
func debPictures(pkg debPackage, deb string) ([]candidate, error) {
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	cands, terr := tarPictures(pkg, out)
	io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("dpkg-deb --fsys-tarfile %s: %v: %s", deb, err, stderr.String())
	}
	return cands, terr
}

func tarPictures(pkg debPackage, r io.Reader) ([]candidate, error) {
	var cands []candidate
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return cands, nil
		}
		if err != nil {
			return cands, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		if h.Typeflag != tar.TypeReg || h.Size < minFileSize || h.Size > maxFileSize || pkg.excluded(name) {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return cands, err
		}
		if picture.Sniff(data[:min(len(data), 4096)]) == "" {
			continue
		}
		cands = append(cands, newCandidate(pkg.Name, name, data))
	}
}

// goTestImages returns the pictures Go ships as test data: the standard
// library's (image/testdata, image/png/testdata/pngsuite, ...) and
// golang.org/x/image's (BMP, TIFF, WebP), which the module already
// depends on, so both are on any machine that builds it.
func goTestImages() ([]candidate, error) {
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOROOT: %v", err)
	}
	roots := [][2]string{{"go", filepath.Join(strings.TrimSpace(string(out)), "src")}}
	if out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "golang.org/x/image").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); d != "" {
			roots = append(roots, [2]string{"golang.org/x/image", d})
		}
	}
	sep := string(filepath.Separator)
	var cands []candidate
	for _, root := range roots {
		err := filepath.WalkDir(root[1], func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil // unreadable corners of a module cache are no corpus
			}
			if d.IsDir() || !strings.Contains(path, sep+"testdata"+sep) {
				return nil
			}
			info, err := d.Info()
			if err != nil || !info.Mode().IsRegular() || info.Size() < minFileSize || info.Size() > maxFileSize {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil || picture.Sniff(data[:min(len(data), 4096)]) == "" {
				return nil
			}
			rel, _ := filepath.Rel(root[1], path)
			cands = append(cands, newCandidate(root[0], filepath.ToSlash(rel), data))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return cands, nil
}
