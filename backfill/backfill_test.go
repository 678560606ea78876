package backfill

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/bypass"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

const (
	serverName = "hs.example"
	remoteName = "other.example"
)

// storeFile is one file of a generated media store and what a backfill
// must make of it.
type storeFile struct {
	rel  string
	body []byte
	// key is the media it must be recorded as (zero: not recorded).
	key     ledger.Key
	verdict ledger.Verdict
}

func form(t *testing.T, forms []bypass.Form, name string) bypass.Form {
	t.Helper()
	for _, f := range forms {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("no bypass form %q", name)
	return bypass.Form{}
}

// synapseStore writes a media store in Synapse's layout with the listed
// picture hidden in it four ways (as stored, rotated behind EXIF
// orientation, inside a PDF, as a GIF's second frame from a remote
// server), clean pictures, a text file, an encrypted-looking file,
// thumbnails and a stray file; it returns the files and the bank line
// that lists the picture.
func synapseStore(t *testing.T, root string) ([]storeFile, string) {
	t.Helper()
	listed := testimg.Photo(80, 240, 180)
	res, _, err := pdq.HashBytes(testimg.PNG(listed), pdq.DecodeOptions{}, pdq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	make := func(f bypass.Form) []byte { return f.Make(listed) }
	random := make2(64<<10, 7)
	local := func(id string) ledger.Key { return ledger.Key{Server: serverName, ID: id} }
	files := []storeFile{
		{"local_content/Li/st/edAsStoredxxxxxxxxxx", testimg.JPEG(listed, 90), local("ListedAsStoredxxxxxxxxxx"), ledger.Blocked},
		{"local_content/Ro/ta/tedBehindExifxxxxxxx", make(form(t, bypass.Images, "pixels rotated behind EXIF orientation 6")), local("RotatedBehindExifxxxxxxx"), ledger.Blocked},
		{"local_content/In/aP/dfxxxxxxxxxxxxxxxxxx", make(form(t, bypass.Containers, "pdf embedding the jpeg")), local("InaPdfxxxxxxxxxxxxxxxxxx"), ledger.Blocked},
		{"remote_content/" + remoteName + "/Gi/fF/rame2xxxxxxxxxxxxxxx", make(form(t, bypass.Images, "gif frame 2 behind a decoy")), ledger.Key{Server: remoteName, ID: "fs:GifFrame2xxxxxxxxxxxxxxx"}, ledger.Blocked},
		{"local_content/Cl/ea/nJpegxxxxxxxxxxxxxxx", testimg.JPEG(testimg.Photo(81, 240, 180), 90), local("CleanJpegxxxxxxxxxxxxxxx"), ledger.Clean},
		{"remote_content/" + remoteName + "/Cl/ea/nPngxxxxxxxxxxxxxxxx", testimg.PNG(testimg.Photo(82, 160, 120)), ledger.Key{Server: remoteName, ID: "fs:CleanPngxxxxxxxxxxxxxxxx"}, ledger.Clean},
		{"local_content/Te/xt/Filexxxxxxxxxxxxxxxx", bytes.Repeat([]byte("minutes of the meeting\n"), 200), local("TextFilexxxxxxxxxxxxxxxx"), ledger.Unscannable},
		{"local_content/En/cr/yptedxxxxxxxxxxxxxxx", random, local("Encryptedxxxxxxxxxxxxxxx"), ledger.Unscannable},
		// Renditions and strays: counted, never judged.
		{"local_thumbnails/Li/st/edAsStoredxxxxxxxxxx/32-24-image-jpeg-scale", testimg.JPEG(testimg.Resize(listed, 32, 24), 80), ledger.Key{}, 0},
		{"remote_thumbnail/" + remoteName + "/Gi/fF/rame2xxxxxxxxxxxxxxx/32-24-image-png-crop", testimg.PNG(testimg.Resize(listed, 32, 24)), ledger.Key{}, 0},
		{"README", []byte("not media\n"), ledger.Key{}, 0},
	}
	for _, f := range files {
		p := filepath.Join(root, filepath.FromSlash(f.rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return files, "pdq " + res.Hash.String()
}

func make2(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// newProxy is the proxy as the Caddy config builds it by default
// (pdq_search default, worker processes) over a bank holding lines.
func newProxy(t *testing.T, lines ...string) (*mediaproxy.Proxy, *matcher.Local) {
	t.Helper()
	bank := filepath.Join(t.TempDir(), "listed.txt")
	if err := os.WriteFile(bank, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	local, err := matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "LISTED", Path: bank}}, ReloadInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { local.Close() })
	p, err := mediaproxy.New(mediaproxy.Config{Matcher: local, TempDir: t.TempDir(), PDQSearch: pdq.SearchDefault, MaxConcurrentHashing: 2})
	if err != nil {
		t.Fatal(err)
	}
	return p, local
}

// countingScanner counts files hashed and can end the run at the nth.
type countingScanner struct {
	Scanner
	calls    atomic.Int64
	cancelAt int64
	cancel   context.CancelFunc
}

func (c *countingScanner) ScanFile(ctx context.Context, f *os.File, size int64, ct string) (mediaproxy.FileScan, error) {
	if n := c.calls.Add(1); n == c.cancelAt {
		c.cancel()
	}
	return c.Scanner.ScanFile(ctx, f, size, ct)
}

type fakeActor struct {
	mu    sync.Mutex
	calls []ledger.Key
}

func (a *fakeActor) RetroBlock(_ context.Context, r ledger.Record, v matcher.Verdict) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, r.Key)
	return nil
}

func baseConfig(root string, p *mediaproxy.Proxy, m matcher.Matcher, st ledger.Store, out *bytes.Buffer) Config {
	return Config{MediaStore: root, ServerName: serverName, Scanner: p, Matcher: m, Ledger: st, Out: out, Jobs: 2}
}

func TestBackfillFindsEveryForm(t *testing.T) {
	root := t.TempDir()
	files, line := synapseStore(t, root)
	p, local := newProxy(t, line)
	st := newStore(t)
	var out bytes.Buffer
	sum, err := Run(context.Background(), baseConfig(root, p, local, st, &out))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("output:\n%s", out.String())
	blocked := 0
	for _, f := range files {
		if f.verdict == 0 {
			continue
		}
		r, ok := st.record(f.key)
		if !ok {
			t.Errorf("%s: no record for %s", f.rel, f.key)
			continue
		}
		if r.Verdict != f.verdict || r.Size != int64(len(f.body)) {
			t.Errorf("%s: %v (%s), %d bytes; want %v, %d bytes", f.rel, r.Verdict, r.Reason, r.Size, f.verdict, len(f.body))
		}
		if f.verdict == ledger.Blocked {
			blocked++
			if !strings.Contains(out.String(), f.rel) {
				t.Errorf("the match in %s is not printed", f.rel)
			}
		}
	}
	if n, _ := st.Len(context.Background()); n != 8 {
		t.Errorf("%d records, want 8", n)
	}
	want := Summary{Files: 8, Thumbnails: 2, Other: 1, Hashed: 8, Blocked: blocked, Clean: 2, Unscannable: 2, ByContent: 2}
	got := sum
	got.Elapsed, got.Bytes = 0, 0
	if got != want {
		t.Errorf("summary %+v\nwant    %+v", got, want)
	}
	for _, s := range []string{"MATCH   mxc://" + serverName + "/ListedAsStoredxxxxxxxxxx", "bank=LISTED", "variant=displayed", "variant=embedded", "variant=frame", "media ID unknown"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("output lacks %q", s)
		}
	}
	if v, _, _ := st.Meta(context.Background(), resumeMeta(root)); v != "" {
		t.Errorf("a finished run left the resume point %q", v)
	}
}

// The dry run acts on nothing; --act then acts once per match (judged
// again from the ledger, not hashed again), and never again for the
// same match: not on a rerun, not with --rehash.
func TestBackfillActsOncePerMatch(t *testing.T) {
	root := t.TempDir()
	_, line := synapseStore(t, root)
	p, local := newProxy(t, line)
	st := newStore(t)
	var out bytes.Buffer
	cfg := baseConfig(root, p, local, st, &out)
	sum, err := Run(context.Background(), cfg)
	if err != nil || sum.Blocked != 4 || sum.Acted != 0 {
		t.Fatalf("dry run: %v, %d blocked, %d acted", err, sum.Blocked, sum.Acted)
	}
	act := &fakeActor{}
	cfg.Actor = act
	for i, c := range []struct {
		rehash       bool
		acts, hashed int
	}{{false, 4, 0}, {false, 4, 0}, {true, 4, 8}} {
		cfg.Rehash = c.rehash
		sum, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if len(act.calls) != c.acts || sum.Hashed != c.hashed {
			t.Errorf("run %d (rehash %v): %d acts in all, %d hashed; want %d, %d", i, c.rehash, len(act.calls), sum.Hashed, c.acts, c.hashed)
		}
	}
	seen := map[ledger.Key]bool{}
	for _, k := range act.calls {
		if seen[k] {
			t.Errorf("acted twice on %s", k)
		}
		seen[k] = true
	}
}

// An interrupted run keeps its place; the rerun hashes only the rest.
func TestBackfillResumes(t *testing.T) {
	root := t.TempDir()
	_, line := synapseStore(t, root)
	p, local := newProxy(t, line)
	st := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc := &countingScanner{Scanner: p, cancelAt: 4, cancel: cancel}
	var out bytes.Buffer
	cfg := baseConfig(root, p, local, st, &out)
	cfg.Scanner, cfg.Jobs, cfg.CheckpointEvery = sc, 1, 1
	sum, err := Run(ctx, cfg)
	if err == nil || !sum.Interrupted {
		t.Fatalf("the cancelled run ended with %v, interrupted %v", err, sum.Interrupted)
	}
	if sum.Hashed != 3 {
		t.Fatalf("hashed %d before the cancel, want 3 (the 4th was cut off)", sum.Hashed)
	}
	mark, _, _ := st.Meta(context.Background(), resumeMeta(root))
	if mark == "" {
		t.Fatal("no resume point saved")
	}
	sc2 := &countingScanner{Scanner: p}
	cfg.Scanner = sc2
	gets := st.gets.Load()
	sum, err = Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sc2.calls.Load() != 5 || sum.Resumed != 3 || sum.ResumedAfter != mark || sum.Hashed != 5 {
		t.Errorf("rerun hashed %d, resumed past %d after %q (saved %q); want 5 hashed, 3 passed over", sc2.calls.Load(), sum.Resumed, sum.ResumedAfter, mark)
	}
	if st.gets.Load()-gets != 5 {
		t.Errorf("rerun looked up %d files, want only the 5 after the resume point", st.gets.Load()-gets)
	}
	if n, _ := st.Len(context.Background()); n != 8 {
		t.Errorf("%d records after the rerun, want 8", n)
	}
	// --restart walks everything, and the ledger spares the hashing.
	cfg.Restart = true
	sc3 := &countingScanner{Scanner: p}
	cfg.Scanner = sc3
	if sum, err := Run(context.Background(), cfg); err != nil || sc3.calls.Load() != 0 || sum.Known != 8 {
		t.Errorf("--restart: %v, hashed %d, known %d", err, sc3.calls.Load(), sum.Known)
	}
}

func TestProgress(t *testing.T) {
	root := t.TempDir()
	_, line := synapseStore(t, root)
	p, local := newProxy(t, line)
	for _, term := range []bool{false, true} {
		var out, prog bytes.Buffer
		cfg := baseConfig(root, p, local, newStore(t), &out)
		cfg.Progress, cfg.Terminal, cfg.ProgressInterval = &prog, term, 1
		if _, err := Run(context.Background(), cfg); err != nil {
			t.Fatal(err)
		}
		s := prog.String()
		if !strings.Contains(s, "8/8 files (100.0%)") || !strings.Contains(s, "files/s") || !strings.Contains(s, "ETA 0s") {
			t.Errorf("terminal=%v: progress %q", term, s)
		}
		if term != strings.Contains(s, "\r\033[K") {
			t.Errorf("terminal=%v: redrawn in place %v", term, !term)
		}
	}
}

func TestLocalMediaNeedsServerName(t *testing.T) {
	root := t.TempDir()
	synapseStore(t, root)
	p, local := newProxy(t)
	var out bytes.Buffer
	cfg := baseConfig(root, p, local, newStore(t), &out)
	cfg.ServerName = ""
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--server-name") {
		t.Errorf("got %v", err)
	}
}

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		rel        string
		kind       kind
		server, id string
	}{
		{"local_content/ab/cd/efghijklmnopqrstuvwx", kindLocal, "", "abcdefghijklmnopqrstuvwx"},
		{"remote_content/matrix.org/ab/cd/efgh", kindRemote, "matrix.org", "abcdefgh"},
		{"local_thumbnails/ab/cd/efgh/32-32-image-jpeg-scale", kindThumbnail, "", ""},
		{"remote_thumbnail/matrix.org/ab/cd/efgh/32-32-image-png", kindThumbnail, "", ""},
		{"url_cache/2024-01-01/abcdef", kindURLCache, "", ""},
		{"url_cache_thumbnails/2024-01-01/abcdef/32-32", kindURLCache, "", ""},
		{"local_content/abc/cd/ef", kindOther, "", ""},
		{"local_content/ab/cd", kindOther, "", ""},
		{"remote_content/ab/cd/ef", kindOther, "", ""},
		{"README", kindOther, "", ""},
	} {
		s := classify(c.rel)
		if s.kind != c.kind || s.server != c.server || s.id != c.id {
			t.Errorf("%s: %+v", c.rel, s)
		}
	}
}

func TestWalkLessIsWalkOrder(t *testing.T) {
	// WalkDir's order: a directory's entries by name, depth first.
	ordered := []string{"a/b", "a/c/d", "a/c/e", "a.b", "a0/x", "b"}
	for i := range ordered {
		for j := range ordered {
			if got := walkLess(ordered[i], ordered[j]); got != (i < j) {
				t.Errorf("walkLess(%q, %q) = %v", ordered[i], ordered[j], got)
			}
		}
	}
}
