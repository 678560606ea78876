package backfill

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mediaguard/mediaguard/ledger"
)

// countedStore is the real embedded ledger, counting Gets so a test can
// tell how many files a run looked up.
type countedStore struct {
	ledger.Store
	gets atomic.Int64
}

func (c *countedStore) Get(ctx context.Context, k ledger.Key) (ledger.Record, bool, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, k)
}

// newStore opens a fresh embedded ledger, closed when t ends.
func newStore(t *testing.T) *countedStore {
	t.Helper()
	s, err := ledger.Open(context.Background(), ledger.Spec{Path: filepath.Join(t.TempDir(), "ledger", "media.ledger")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return &countedStore{Store: s}
}

// record reads k without counting it as a run's lookup.
func (c *countedStore) record(k ledger.Key) (ledger.Record, bool) {
	r, ok, err := c.Store.Get(context.Background(), k)
	return r, ok && err == nil
}
