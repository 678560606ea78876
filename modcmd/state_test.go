package modcmd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestState(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bot.json")
	s, err := loadState(p)
	if err != nil || s.NextBatch != "" || len(s.Handled) != 0 {
		t.Fatalf("first start: %+v, %v", s, err)
	}
	for i := range maxHandled + 10 {
		s.Handled = append(s.Handled, fmt.Sprintf("$e%d", i))
	}
	s.NextBatch = "s42"
	if err := s.save(p); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(p)
	if err != nil || got.NextBatch != "s42" || len(got.Handled) != maxHandled || got.Handled[0] != "$e10" || !got.handled("$e2009") || got.handled("$e9") {
		t.Fatalf("reloaded: next %q, %d handled from %q, %v", got.NextBatch, len(got.Handled), got.Handled[0], err)
	}
	for _, bad := range []string{"not json", `{"version":2}`} {
		os.WriteFile(p, []byte(bad), 0o600)
		if _, err := loadState(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%q: error %v does not name the file", bad, err)
		}
	}
}

// TestLease: two bots of one process (a config reload) never hold one
// state file at once.
func TestLease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bot.json")
	release := acquire(context.Background(), p)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if r := acquire(ctx, p); r != nil {
		t.Fatal("a second holder got the lease")
	}
	got := make(chan func())
	go func() { got <- acquire(context.Background(), filepath.Join(filepath.Dir(p), ".", filepath.Base(p))) }()
	go func() { got <- acquire(context.Background(), p) }()
	time.Sleep(20 * time.Millisecond)
	release()
	release() // idempotent
	r := <-got
	select {
	case <-got:
		t.Fatal("both waiters got the lease")
	case <-time.After(50 * time.Millisecond):
	}
	r()
}
