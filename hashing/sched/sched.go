// Package sched schedules the heavy part of judging media: decoding and
// PDQ-hashing pictures. A Runner runs each picture in a worker process
// (hashing/worker) or, where none can run, on an OS thread lowered to
// nice 10, so hashing yields the CPU to proxying; Lanes bound how many
// pictures one proxy hashes at once, keeping one lane for small pictures
// so a flood of huge ones cannot starve ordinary photos.
//
// It holds no package-level state. A Runner's threads and processes live
// as long as the process (see Runner), so whoever builds proxies keeps one
// Runner and hands it to each: the Caddy adapter keeps it across config
// reloads. sched imports hashing's own packages only, never the proxy or
// Caddy.
package sched

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/worker"
)

// Nice is the nice value in-process hashing threads run at.
const Nice = 10

// Runner decodes and hashes pictures off the request path's priority.
//
// Its in-process threads never exit: a goroutine that exits locked makes
// the runtime terminate its thread, and a thread's death sends
// PR_SET_PDEATHSIG to any child process it once started (Go issue 27505),
// which killed test homeservers. Nor can a thread be handed back, as an
// unprivileged process cannot raise its priority again. So a Runner only
// grows, to the largest size asked of it.
type Runner struct {
	log atomic.Pointer[zap.Logger]

	mu      sync.Mutex
	threads int
	jobs    chan func()
	// pool is the worker processes; nil until a proxy asks for them.
	pool *worker.Pool
}

// NewRunner returns a Runner with no threads or processes yet; Grow
// starts them. log (nil: none) hears why a worker process ended.
func NewRunner(log *zap.Logger) *Runner {
	r := &Runner{jobs: make(chan func())}
	r.SetLogger(log)
	return r
}

// SetLogger changes where the Runner says why a worker process ended:
// the latest configuration's log, for a Runner that outlives reloads.
func (r *Runner) SetLogger(log *zap.Logger) {
	if log == nil {
		log = zap.NewNop()
	}
	r.log.Store(log)
}

// Grow makes sure n pictures can be hashed at once: n niced threads, and
// with processes, n worker processes too.
func (r *Runner) Grow(n int, processes bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ; r.threads < n; r.threads++ {
		go func(jobs <-chan func()) {
			runtime.LockOSThread()
			lowerThreadPriority()
			for job := range jobs {
				job()
			}
		}(r.jobs)
	}
	if !processes {
		return
	}
	if r.pool == nil {
		r.pool = worker.NewPool(n, worker.Options{OnExit: func(reason, stderr string) {
			r.log.Load().Warn("hashing worker process ended; the next image gets a new one (or is hashed in-process while none can start)",
				zap.String("reason", reason), zap.String("stderr", stderr))
		}})
	}
	r.pool.Grow(n)
}

// Hash decodes and hashes r as a viewer sees it: on a worker process when
// processes were asked for and one can run, otherwise on a niced thread.
func (r *Runner) Hash(ctx context.Context, rs io.ReadSeeker, dopt pdq.DecodeOptions, opt pdq.Options, processes bool) (pdq.Result, error) {
	r.mu.Lock()
	pool := r.pool
	r.mu.Unlock()
	if processes && pool != nil {
		res, err := pool.Hash(ctx, rs, dopt, opt)
		if !errors.Is(err, worker.ErrUnavailable) {
			return res, err
		}
		// The pool logged why; the image is still hashed.
	}
	return r.Inline(rs, dopt, opt)
}

// Inline hashes on a niced thread of this process. PDQ gets one worker
// goroutine so none of its passes run on ordinary, full-priority threads.
// A panic in a decoder is a corrupt picture, not a crash.
func (r *Runner) Inline(rs io.ReadSeeker, dopt pdq.DecodeOptions, opt pdq.Options) (res pdq.Result, err error) {
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return pdq.Result{}, err
	}
	r.run(func() {
		defer func() {
			if v := recover(); v != nil {
				err = fmt.Errorf("%w: hashing panicked: %v", pdq.ErrCorrupt, v)
			}
		}()
		opt.Workers = 1
		res, _, err = worker.HashViewed(rs, dopt, opt)
	})
	return res, err
}

// run runs f on a niced thread and waits for it.
func (r *Runner) run(f func()) {
	r.mu.Lock()
	if r.threads == 0 {
		r.mu.Unlock()
		r.Grow(1, false)
	} else {
		r.mu.Unlock()
	}
	done := make(chan struct{})
	r.jobs <- func() { defer close(done); f() }
	<-done
}

// Stats counts worker processes started and discarded (crashed, timed
// out, or failed to start).
func (r *Runner) Stats() (started, discarded int64) {
	r.mu.Lock()
	pool := r.pool
	r.mu.Unlock()
	if pool == nil {
		return 0, 0
	}
	return pool.Stats()
}

// Hasher hashes one picture; what a proxy holds.
type Hasher interface {
	Hash(ctx context.Context, r io.ReadSeeker, dopt pdq.DecodeOptions, opt pdq.Options) (pdq.Result, error)
}

// Hasher returns r as a Hasher that uses worker processes (processes) or
// only niced threads.
func (r *Runner) Hasher(processes bool) Hasher { return runnerHasher{r, processes} }

type runnerHasher struct {
	r         *Runner
	processes bool
}

func (h runnerHasher) Hash(ctx context.Context, rs io.ReadSeeker, dopt pdq.DecodeOptions, opt pdq.Options) (pdq.Result, error) {
	return h.r.Hash(ctx, rs, dopt, opt, h.processes)
}

// NewRunnerFor returns a Runner that hashes on pool, its own worker
// processes (a different worker command; tests' broken or silent
// workers). The caller closes pool.
func NewRunnerFor(pool *worker.Pool, log *zap.Logger) *Runner {
	r := NewRunner(log)
	r.pool = pool
	return r
}
