package matcher

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
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

func TestPDQArenaHugePages(t *testing.T) {
	thp, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil || strings.Contains(string(thp), "[never]") {
		t.Skipf("SKIPPED: transparent huge pages are off here (%q, %v); the index uses small pages", thp, err)
	}
	ix := NewPDQIndex(pdqRandomHashes(300_000, 17))
	if ix.arena == nil || ix.arena.mapped == nil {
		t.Fatalf("a 300k index's tables are on the heap, want a mapping")
	}
	addr := uintptr(unsafe.Pointer(&ix.tables[len(ix.tables)-1].entries[0]))
	fields := pdqSmapsOf(t, addr)
	if fields == nil {
		t.Fatalf("no mapping holds the tables")
	}
	t.Logf("tables' mapping: Rss %s, AnonHugePages %s", fields["Rss"], fields["AnonHugePages"])
	if fields["AnonHugePages"] == "0 kB" || fields["AnonHugePages"] == "" {
		t.Fatalf("the tables are not on huge pages: AnonHugePages %q", fields["AnonHugePages"])
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
