package mediaproxy

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"testing"
	"testing/iotest"
)

// testBudget is a memoryBudget with a fixed allowance.
type testBudget struct{ used, max int64 }

func (b *testBudget) reserve(n int64) bool {
	if b.used+n > b.max {
		return false
	}
	b.used += n
	return true
}

func (b *testBudget) release(n int64) { b.used -= n }

// The spool keeps every byte, in memory while the limit and the budget
// allow and on disk beyond, digests them in the same pass, and gives its
// memory, budget and file back on Close.
func TestSpool(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160,000 bytes
	cases := []struct {
		name     string
		memLimit int64
		declared int64
		budget   int64
		recycle  bool
		onDisk   bool
	}{
		{"declared, fits", 1 << 20, int64(len(body)), 1 << 20, false, false},
		{"declared, fits, recycled", 1 << 20, int64(len(body)), 1 << 20, true, false},
		{"unknown length, fits", 1 << 20, -1, 1 << 20, false, false},
		{"declared larger than memory", 64 << 10, int64(len(body)), 1 << 20, false, true},
		{"unknown length outgrows memory", 64 << 10, -1, 1 << 20, true, true},
		{"no budget left", 1 << 20, int64(len(body)), 1 << 10, true, true},
		{"budget spent while growing", 1 << 20, -1, 100 << 10, false, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			budget := &testBudget{max: c.budget}
			var disk int64
			sp := newSpool(spoolOptions{memoryLimit: c.memLimit, maxSize: 1 << 20, tempDir: dir, declared: c.declared,
				budget: budget, recycle: c.recycle, onDisk: func(d int64) { disk += d }})
			// Small reads, so that the unknown-length cases grow.
			if n, err := sp.ReadFrom(iotest.HalfReader(bytes.NewReader(body))); err != nil || n != int64(len(body)) {
				t.Fatalf("ReadFrom: %d, %v", n, err)
			}
			if sp.OnDisk() != c.onDisk {
				t.Errorf("on disk %v, want %v", sp.OnDisk(), c.onDisk)
			}
			if got, _ := io.ReadAll(sp.Reader()); !bytes.Equal(got, body) {
				t.Errorf("read back %d bytes, not the body", len(got))
			}
			if dg := sp.Digests(); dg.SHA256 != sha256.Sum256(body) || dg.Size != int64(len(body)) {
				t.Errorf("digests %x size %d", dg.SHA256, dg.Size)
			}
			if c.onDisk && disk != int64(len(body)) {
				t.Errorf("disk gauge %d, want %d", disk, len(body))
			}
			if budget.used > c.budget || (c.onDisk && budget.used != 0) {
				t.Errorf("budget used %d of %d", budget.used, c.budget)
			}
			sp.Close()
			sp.Close()
			if ents, _ := os.ReadDir(dir); len(ents) != 0 || disk != 0 || budget.used != 0 {
				t.Errorf("after Close: %d files, disk gauge %d, budget %d", len(ents), disk, budget.used)
			}
		})
	}
}

// A body past maxSize fails with ErrTooLarge and keeps nothing of the
// write that crossed it; a disk that fails gives ErrSpoolDisk.
func TestSpoolLimits(t *testing.T) {
	sp := newSpool(spoolOptions{memoryLimit: 10, maxSize: 100, tempDir: t.TempDir(), declared: -1})
	defer sp.Close()
	if _, err := sp.Write(make([]byte, 60)); err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Write(make([]byte, 41)); !errors.Is(err, ErrTooLarge) || sp.Size() != 60 {
		t.Fatalf("past maxSize: %v, size %d", err, sp.Size())
	}
	if _, err := sp.Write(make([]byte, 1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("after a failed write: %v", err)
	}

	orig := createSpoolFile
	t.Cleanup(func() { createSpoolFile = orig })
	createSpoolFile = func(string) (spoolFile, error) { return nil, os.ErrPermission }
	full := newSpool(spoolOptions{memoryLimit: 10, maxSize: 100, declared: -1})
	defer full.Close()
	if _, err := full.Write(make([]byte, 20)); !errors.Is(err, ErrSpoolDisk) || !errors.Is(err, os.ErrPermission) {
		t.Fatalf("no disk: %v", err)
	}
}
