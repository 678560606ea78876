package backfill

import (
	"context"
	"sync"
	"time"

	"github.com/mediaguard/mediaguard/ledger"
)

// memStore is a ledger.Store in memory, counting Gets, for tests of the
// walk; the real stores have their own tests.
type memStore struct {
	mu   sync.Mutex
	recs map[ledger.Key]ledger.Record
	meta map[string]string
	gets int
}

func newMemStore() *memStore {
	return &memStore{recs: map[ledger.Key]ledger.Record{}, meta: map[string]string{}}
}

func (m *memStore) Get(_ context.Context, k ledger.Key) (ledger.Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gets++
	r, ok := m.recs[k]
	return r, ok, nil
}

func (m *memStore) Put(_ context.Context, r ledger.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.recs[r.Key]; ok && old.FirstSeen.Before(r.FirstSeen) {
		r.FirstSeen = old.FirstSeen
	}
	m.recs[r.Key] = r
	return nil
}

func (m *memStore) SetVerdict(_ context.Context, k ledger.Key, v ledger.Verdict, reason, banks string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[k]
	if ok {
		r.Verdict, r.Reason, r.Banks = v, reason, banks
		m.recs[k] = r
	}
	return ok, nil
}

func (m *memStore) Scan(_ context.Context, _ int, fn func(r *ledger.Record) error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.recs {
		if err := fn(&r); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) Prune(context.Context, time.Time) (int, error) { return 0, nil }

func (m *memStore) Meta(_ context.Context, name string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.meta[name]
	return v, ok, nil
}

func (m *memStore) SetMeta(_ context.Context, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meta[name] = value
	return nil
}

func (m *memStore) TryLock(context.Context, string) (func(), bool, error) {
	return func() {}, true, nil
}

func (m *memStore) Len(context.Context) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.recs), nil
}

func (m *memStore) Close() error { return nil }

func (m *memStore) record(k ledger.Key) (ledger.Record, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[k]
	return r, ok
}
