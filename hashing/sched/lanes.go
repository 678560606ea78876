package sched

import (
	"context"
	"sync/atomic"
)

// Lanes bound how many pictures are decoded and hashed at once. Decoding
// and PDQ are the only heavy work on the request path: a decoded 12 MP
// photo and PDQ's buffers take tens of megabytes, and every core they
// occupy is taken from proxying. Bounding them bounds memory under any
// load and leaves a core for the downloads that need no hashing.
//
// There are n lanes for any picture and one more that only small ones may
// take: a flood of huge pictures (bombs) can hold every general lane,
// never that one, so ordinary photos keep being judged within about the
// time one of them takes.
type Lanes struct {
	all     chan struct{} // n+1 tokens
	big     chan struct{} // n tokens: big pictures take one of these too
	waiting atomic.Int64
}

// NewLanes returns n general lanes and one for small pictures.
func NewLanes(n int) *Lanes {
	return &Lanes{all: make(chan struct{}, n+1), big: make(chan struct{}, n)}
}

// Acquire waits for a lane, big for a picture over the small-lane size;
// false when ctx ended first.
func (l *Lanes) Acquire(ctx context.Context, big bool) bool {
	if big {
		select {
		case l.big <- struct{}{}:
		default:
			l.waiting.Add(1)
			defer l.waiting.Add(-1)
			select {
			case l.big <- struct{}{}:
			case <-ctx.Done():
				return false
			}
		}
	}
	select {
	case l.all <- struct{}{}:
		return true
	default:
	}
	l.waiting.Add(1)
	defer l.waiting.Add(-1)
	select {
	case l.all <- struct{}{}:
		return true
	case <-ctx.Done():
		if big {
			<-l.big
		}
		return false
	}
}

// Release gives back a lane taken with the same big.
func (l *Lanes) Release(big bool) {
	<-l.all
	if big {
		<-l.big
	}
}

// Waiting is the number of pictures waiting for a lane (metrics).
func (l *Lanes) Waiting() int64 { return l.waiting.Load() }

// Busy is the number of lanes held now (metrics).
func (l *Lanes) Busy() int { return len(l.all) }

// Size is the number of lanes: n general ones and the small pictures'
// one (metrics).
func (l *Lanes) Size() int { return cap(l.all) }
