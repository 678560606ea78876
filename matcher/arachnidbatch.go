package matcher

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// arachnidSend asks the service about keys (encoded PDQ hashes) in one
// request and returns a hit per matched key.
type arachnidSend func(ctx context.Context, keys []string) (map[string]*arachnidHit, error)

// arachnidBatcher merges the lookups of concurrent queries into shared
// requests: the first lookup opens a batch, every lookup arriving within
// window joins it, and the batch is sent when the window closes or when it
// holds max distinct hashes, whichever comes first. Arachnid Shield takes
// a list of hashes per request (ScanMediaFromPdq), so a burst of uploads
// costs one round trip to the service instead of one each; a lone lookup
// pays at most window of extra latency.
//
// A batch's request is bounded by the backend's timeout, not by any one
// caller: a caller that goes away gets its own ctx.Err() at once, and the
// request is cancelled only when every caller waiting for it has gone.
type arachnidBatcher struct {
	window time.Duration
	max    int
	send   arachnidSend

	mu   sync.Mutex
	open *arachnidBatch // collecting, not sent yet; nil when none

	// requests counts the requests sent, lookups the lookups that asked
	// for at least one hash (for tests and benchmarks).
	requests, lookups atomic.Int64
}

// arachnidBatch is one request being collected or in flight.
type arachnidBatch struct {
	keys    []string
	has     map[string]bool
	waiters int
	sent    bool
	timer   *time.Timer
	ctx     context.Context
	cancel  context.CancelFunc

	done chan struct{} // closed when res and err are set
	res  map[string]*arachnidHit
	err  error
}

// lookup returns the hits among keys, sharing a request with the lookups
// of other queries made within the window. keys must be distinct and at
// most b.max.
func (b *arachnidBatcher) lookup(ctx context.Context, keys []string) (map[string]*arachnidHit, error) {
	b.lookups.Add(1)
	b.mu.Lock()
	bt := b.open
	if bt != nil && len(bt.keys)+bt.missing(keys) > b.max {
		// Ours would not fit: send what is there now and start afresh.
		b.flushLocked(bt)
		bt = nil
	}
	if bt == nil {
		bctx, cancel := context.WithCancel(context.Background())
		bt = &arachnidBatch{has: make(map[string]bool), ctx: bctx, cancel: cancel, done: make(chan struct{})}
		b.open = bt
		bt.timer = time.AfterFunc(b.window, func() {
			b.mu.Lock()
			defer b.mu.Unlock()
			if !bt.sent && bt.waiters > 0 {
				b.flushLocked(bt)
			}
		})
	}
	for _, k := range keys {
		if !bt.has[k] {
			bt.has[k] = true
			bt.keys = append(bt.keys, k)
		}
	}
	bt.waiters++
	if len(bt.keys) >= b.max {
		b.flushLocked(bt)
	}
	b.mu.Unlock()

	select {
	case <-bt.done:
		return bt.res, bt.err
	case <-ctx.Done():
		b.leave(bt)
		return nil, ctx.Err()
	}
}

// missing counts the keys not in the batch yet.
func (bt *arachnidBatch) missing(keys []string) int {
	n := 0
	for _, k := range keys {
		if !bt.has[k] {
			n++
		}
	}
	return n
}

// flushLocked sends bt (b.mu held).
func (b *arachnidBatcher) flushLocked(bt *arachnidBatch) {
	if bt.sent {
		return
	}
	bt.sent = true
	bt.timer.Stop()
	if b.open == bt {
		b.open = nil
	}
	b.requests.Add(1)
	go func() {
		res, err := b.send(bt.ctx, bt.keys)
		bt.res, bt.err = res, err
		close(bt.done)
		bt.cancel()
	}()
}

// leave takes a caller that went away off bt: a batch nobody waits for
// any more is not sent, or its request is cancelled.
func (b *arachnidBatcher) leave(bt *arachnidBatch) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bt.waiters--
	if bt.waiters > 0 {
		return
	}
	if !bt.sent {
		bt.timer.Stop()
		if b.open == bt {
			b.open = nil
		}
		bt.cancel()
		return
	}
	bt.cancel()
}
