package service

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/mediaguard/mediaguard/mediaproxy"
)

// recentMinutes is the window Recent counts over.
const recentMinutes = 60

// recent counts decisions by outcome over the last hour, a minute at a
// time, for the status command. It is an Observer: it only counts.
type recent struct {
	now func() time.Time

	mu      sync.Mutex
	buckets [recentMinutes]struct {
		minute int64 // Unix minute the counts are of
		counts map[string]int64
	}
}

func newRecent() *recent { return &recent{now: time.Now} }

func (r *recent) Observe(d *mediaproxy.Decision) { r.add(string(d.Outcome)) }

func (r *recent) add(outcome string) {
	m := r.now().Unix() / 60
	r.mu.Lock()
	defer r.mu.Unlock()
	b := &r.buckets[m%recentMinutes]
	if b.minute != m || b.counts == nil {
		b.minute, b.counts = m, map[string]int64{}
	}
	b.counts[outcome]++
}

// Counts returns the decisions of the last hour by outcome.
func (r *recent) Counts() map[string]int64 {
	m := r.now().Unix() / 60
	out := map[string]int64{}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, b := range r.buckets {
		if b.counts != nil && m-b.minute < recentMinutes {
			for k, v := range b.counts {
				out[k] += v
			}
		}
	}
	return out
}

// sortedKeys is m's keys in order, for stable text.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
