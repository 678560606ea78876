//go:build linux || darwin || freebsd || dragonfly

package mediaproxy

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// SpoolSpace measures the spool directory's filesystem: its size agrees
// with df's, the space available is within it, and a vanished spool
// directory is an error, not zeros that would read as a full disk.
func TestSpoolSpace(t *testing.T) {
	e := newEnv(t, nil, func(c *Config) { c.MaxBufferedTotal = 3 << 20 })
	avail, size, err := e.proxy.SpoolSpace()
	if err != nil {
		t.Fatal(err)
	}
	if size == 0 || avail > size {
		t.Fatalf("SpoolSpace: %d available of %d", avail, size)
	}
	if out, err := exec.Command("df", "-P", "-k", e.tmp).Output(); err == nil {
		// POSIX df -P -k: a header, then "fs 1024-blocks used avail cap% mount".
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		f := strings.Fields(lines[len(lines)-1])
		if kb, err := strconv.ParseUint(f[1], 10, 64); err == nil && kb != size/1024 {
			t.Errorf("size %d KiB; df says %d KiB", size/1024, kb)
		}
	} else {
		t.Logf("df not run (%v): size not cross-checked", err)
	}
	if got := e.proxy.BufferLimit(); got != 3<<20 {
		t.Errorf("BufferLimit %d; want max_buffered_total", got)
	}
	if err := os.RemoveAll(e.tmp); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.proxy.SpoolSpace(); err == nil {
		t.Error("no error for a vanished spool directory")
	}
}
