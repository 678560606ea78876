// Command ncmecsync times a first sync of a large NCMEC bank: the fake
// NCMEC hash-sharing API (internal/fakes.NCMEC) serves N entries made on
// the fly from a process of its own, and this process syncs them with
// package ncmec into a fresh bank file, exactly as a Runner would, then
// reports the wall time and its own peak resident memory (VmHWM), which
// the fake's memory does not inflate. The bank is then loaded as the
// matcher loads it, timed separately.
//
// An incremental sync of -then entries NCMEC adds afterwards follows.
//
//	go run ./bench/ncmecsync -n 1000000
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/internal/fakes"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/ncmec"
)

const user, password = "bench", "bench-password"

func main() {
	n := flag.Int("n", 1_000_000, "entries the fake serves for the first sync")
	then := flag.Int("then", 1000, "entries NCMEC adds afterwards, for an incremental sync")
	videoEvery := flag.Int("video-every", 10, "every k-th entry is a video (md5 and sha1 only); the others are images with md5, sha1 and pdq")
	span := flag.Duration("span", 365*24*time.Hour, "the entries' timestamps spread over this span, ending now")
	maxWindow := flag.Int("max-window", ncmec.DefaultMaxWindowEntries, "ncmec MaxWindowEntries")
	dir := flag.String("dir", "", "directory for the bank (default: a temporary one, removed)")
	verbose := flag.Bool("v", false, "log the sync's progress")
	cpuprofile := flag.String("cpuprofile", "", "write the sync's CPU profile here")
	serve := flag.Bool("serve", false, "internal: be the fake (prints its base URL, serves until stdin closes)")
	flag.Parse()
	from := time.Now().Add(-*span).Truncate(time.Second)
	// The entries past n are stamped after now: a sync sees them only
	// with its clock moved on (the incremental sync below).
	step := *span / time.Duration(max(*n, 1))
	gen := fakes.NCMECGenerated{N: *n + *then, From: from, Step: step, VideoEvery: *videoEvery}
	if *serve {
		serveFake(gen)
		return
	}

	// The fake in a process of its own, so that its memory and garbage
	// are not this process's.
	child := exec.Command(os.Args[0], append([]string{"-serve"}, os.Args[1:]...)...)
	child.Stderr = os.Stderr
	stdin, _ := child.StdinPipe()
	stdout, _ := child.StdoutPipe()
	if err := child.Start(); err != nil {
		log.Fatal(err)
	}
	base, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		log.Fatalf("the fake did not start: %v", err)
	}
	base = strings.TrimSpace(base)
	defer func() { stdin.Close(); child.Wait() }()

	if *dir == "" {
		d, err := os.MkdirTemp("", "ncmecsync")
		if err != nil {
			log.Fatal(err)
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	path := filepath.Join(*dir, "ncmec.bank")
	logger := zap.NewNop()
	if *verbose {
		logger, _ = zap.NewDevelopment()
	}
	cfg := ncmec.Config{Name: "NCMEC", Path: path, BaseURL: base, Username: user, Password: password,
		Start: from.Add(-time.Hour), MaxWindowEntries: *maxWindow, Logger: logger}
	if err := ncmec.EnsureBank(cfg); err != nil {
		log.Fatal(err)
	}
	runtime.GC()
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			log.Fatal(err)
		}
		pprof.StartCPUProfile(f)
	}
	start := time.Now()
	res, err := ncmec.Sync(context.Background(), cfg)
	took := time.Since(start)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		log.Fatalf("sync: %v", err)
	}
	hwm := procStatus("VmHWM")
	fi, _ := os.Stat(path)
	fmt.Printf("first sync of %d entries (%d images with md5+sha1+pdq, %d videos with md5) from the fake NCMEC, %s, GOMAXPROCS %d\n",
		*n, res.Counts.PDQ, res.Counts.VideoMD5, runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Printf("  wall time          %.1f s (%.0f entries/s)\n", took.Seconds(), float64(res.Read)/took.Seconds())
	fmt.Printf("  windows / commits / pages  %d / %d / %d (max %d entries per window)\n", res.Windows, res.Commits, res.Pages, *maxWindow)
	fmt.Printf("  entries in bank    %d (md5 %d, sha1 %d, pdq %d, video_md5 %d)\n", res.Entries, res.Counts.MD5, res.Counts.SHA1, res.Counts.PDQ, res.Counts.VideoMD5)
	fmt.Printf("  bank file          %.0f MB\n", float64(fi.Size())/1e6)
	fmt.Printf("  peak RSS (VmHWM)   %s (this process: the sync; the fake runs in another)\n", hwm)
	if res.Entries != *n {
		log.Fatalf("the bank holds %d entries, not %d", res.Entries, *n)
	}
	if *then > 0 {
		later := time.Duration(*then)*step + 10*time.Second
		cfg.Now = func() time.Time { return time.Now().Add(later) }
		start = time.Now()
		inc, err := ncmec.Sync(context.Background(), cfg)
		if err != nil {
			log.Fatalf("incremental sync: %v", err)
		}
		fmt.Printf("  incremental sync   %.1f s for %d new entries (%d windows, %d pages; bank now %d entries)\n",
			time.Since(start).Seconds(), inc.Changes, inc.Windows, inc.Pages, inc.Entries)
		if inc.Entries != *n+*then {
			log.Fatalf("the bank holds %d entries, not %d", inc.Entries, *n+*then)
		}
	}
	start = time.Now()
	b, err := matcher.LoadBank("NCMEC", path)
	if err != nil {
		log.Fatal(err)
	}
	c := b.Counts()
	fmt.Printf("  matcher load       %.1f s (%d hashes, %d problems; peak RSS now %s)\n", time.Since(start).Seconds(), c.Total(), b.ProblemCount(), procStatus("VmHWM"))
}

// serveFake serves the fake NCMEC on a loopback port until stdin closes.
func serveFake(gen fakes.NCMECGenerated) {
	f := fakes.NewNCMECHandler(user, password)
	f.Generate(gen)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go http.Serve(l, f)
	fmt.Printf("http://%s%s\n", l.Addr(), fakes.NCMECBasePath)
	buf := make([]byte, 1)
	os.Stdin.Read(buf)
}

// procStatus is a line of /proc/self/status, e.g. VmHWM ("123456 kB").
func procStatus(field string) string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown (no /proc)"
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int
			fmt.Sscan(strings.TrimSpace(v), &kb)
			return fmt.Sprintf("%.0f MB", float64(kb)/1024)
		}
	}
	return "unknown"
}
