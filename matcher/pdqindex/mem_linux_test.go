package pdqindex

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// pdqSmapsOf returns the smaps fields of the mapping containing addr, or
// nil when no mapping does.
func pdqSmapsOf(t *testing.T, addr uintptr) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Skipf("SKIPPED: no /proc/self/smaps (%v)", err)
	}
	defer f.Close()
	var fields map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(line, "%x-%x", &lo, &hi); n == 2 && strings.Contains(line, " ") {
			if fields != nil {
				return fields
			}
			if lo <= addr && addr < hi {
				fields = map[string]string{}
			}
			continue
		}
		if fields != nil {
			if k, v, ok := strings.Cut(line, ":"); ok {
				fields[k] = strings.TrimSpace(v)
			}
		}
	}
	return fields
}

func TestArenaHugePages(t *testing.T) {
	thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(thp), "[never]") {
		t.Skipf("SKIPPED: transparent huge pages are off here (%q, %v); the index uses small pages", thp, err)
	}
	ix := Build(pdqRandomHashes(300_000, 17))
	if ix.arena == nil || ix.arena.mapped == nil {
		t.Fatalf("a 300k index's tables are on the heap, want a mapping")
	}
	addr := uintptr(unsafe.Pointer(&ix.tables[len(ix.tables)-1].entries[0]))
	fields := pdqSmapsOf(t, addr)
	if fields == nil {
		t.Fatalf("no mapping holds the tables")
	}
	t.Logf("tables' mapping: Rss %s, AnonHugePages %s, VmFlags %s", fields["Rss"], fields["AnonHugePages"], fields["VmFlags"])
	// The advice is what the index controls; whether the kernel finds
	// free huge pages depends on the machine, so that is only logged.
	if _, ok := fields["VmFlags"]; !ok {
		t.Skipf("SKIPPED: this kernel's smaps has no VmFlags; cannot see the huge-page advice")
	}
	if !slices.Contains(strings.Fields(fields["VmFlags"]), "hg") {
		t.Fatalf("the tables' mapping is not advised for huge pages: VmFlags %q", fields["VmFlags"])
	}
	if fields["AnonHugePages"] == "0 kB" {
		t.Logf("NOTE: the kernel gave the mapping no huge pages (fragmented memory?); the index works, slower")
	}
	runtime.KeepAlive(ix)

	// Dropped, the index gives its mapping back.
	ix = nil
	deadline := time.Now().Add(5 * time.Second)
	for pdqSmapsOf(t, addr) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("the tables' mapping outlived the index")
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIndexOutlivesSearch drops an index during its own linear scan and
// Hash while the collector runs: its mapping must stay until they return.
func TestIndexOutlivesSearch(t *testing.T) {
	hs := pdqRandomHashes(300_000, 3)
	if ix := Build(slices.Clone(hs)); ix.arena == nil || ix.arena.mapped == nil || !ix.plan(256).linear {
		t.Fatalf("want a mapped 300k index with a linear plan at 256")
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				runtime.GC()
			}
		}
	}()
	for i := range 8 {
		if hits := Build(slices.Clone(hs)).Search(nil, hs[0], 256); len(hits) != len(hs) {
			t.Fatalf("round %d: %d hits, want %d", i, len(hits), len(hs))
		}
		if h := Build(slices.Clone(hs)).Hash(int32(len(hs) - 1)); h != hs[len(hs)-1] {
			t.Fatalf("round %d: Hash differs", i)
		}
	}
}
