package sched

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

// threadNice reads the calling thread's nice value (field 19 of
// /proc/thread-self/stat, after the parenthesised command name).
func threadNice(t *testing.T) int {
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		t.Skipf("no /proc/thread-self: %v", err)
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	n, _ := strconv.Atoi(fields[16])
	return n
}

type niceProbe struct {
	io.ReadSeeker
	t    *testing.T
	seen []int
}

func (p *niceProbe) Read(b []byte) (int, error) {
	p.seen = append(p.seen, threadNice(p.t))
	return p.ReadSeeker.Read(b)
}

// Decoding runs on a thread at nice 10, and the caller's thread keeps its
// own priority.
func TestHashingRunsNiced(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	before := threadNice(t)
	r := NewRunner(nil)
	r.Grow(1, false)
	probe := &niceProbe{ReadSeeker: bytes.NewReader(testimg.PNG(testimg.Photo(3, 64, 64))), t: t}
	if _, err := r.Hasher(false).Hash(context.Background(), probe, pdq.DecodeOptions{Viewed: true}, pdq.Options{}); err != nil {
		t.Fatal(err)
	}
	if len(probe.seen) == 0 || probe.seen[0] != max(before, Nice) {
		t.Fatalf("decoder read at nice %v; want %d", probe.seen, Nice)
	}
	if after := threadNice(t); after != before {
		t.Fatalf("the caller's thread went from nice %d to %d", before, after)
	}
}
