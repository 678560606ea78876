package worker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// ErrUnavailable: no worker process could be started. The caller hashes
// in-process instead, so an image is never left unhashed for it.
var ErrUnavailable = errors.New("worker: no hashing process available")

// Options configure a Pool. The zero value is ready to use.
type Options struct {
	// JobCPU kills a worker that has spent this much CPU time on one
	// image: a decoder spinning on hostile input costs one process, never
	// a thread of the proxy, and the image counts as corrupt. CPU time,
	// not wall time, because a worker runs only on spare CPU: on a busy
	// machine an honest image can take long, and must not pass as
	// unscannable for that. Default 60s.
	JobCPU time.Duration
	// JobWall kills a worker that has not answered within this wall time
	// whatever its CPU use (a worker stuck, not spinning); the caller then
	// hashes in-process (ErrUnavailable). Default 2m.
	JobWall time.Duration
	// StartTimeout bounds a new worker's start, up to its greeting.
	// Default 10s.
	StartTimeout time.Duration
	// RetryAfter is how long after a failed start the pool answers
	// ErrUnavailable at once instead of trying again. Default 30s.
	RetryAfter time.Duration
	// Command makes the command of a new worker (tests). Default: this
	// executable with the worker marker and GOMAXPROCS=1.
	Command func() *exec.Cmd
	// OnExit is told when a worker is discarded (crashed, timed out,
	// answered garbage, or failed to start): why, and the end of its
	// standard error. It runs on the pool's goroutines.
	OnExit func(reason, stderr string)
}

// maxProcs bounds a pool; far more than any core count it is sized by.
const maxProcs = 256

// Pool runs hashing jobs on worker processes, started on first use and
// restarted when one fails. It is safe for concurrent use.
type Pool struct {
	opt  Options
	idle chan *proc
	// room holds a token for every process the pool may still start.
	room chan struct{}
	size atomic.Int32
	// downUntil is when a failed start may be tried again (unix nanos).
	downUntil atomic.Int64
	started   atomic.Int64
	discarded atomic.Int64
	closeOnce sync.Once
	closed    chan struct{}
}

// NewPool returns a pool of at most n worker processes (n ≥ 1).
func NewPool(n int, opt Options) *Pool {
	if opt.JobCPU <= 0 {
		opt.JobCPU = 60 * time.Second
	}
	if opt.JobWall <= 0 {
		opt.JobWall = 2 * time.Minute
	}
	if opt.StartTimeout <= 0 {
		opt.StartTimeout = 10 * time.Second
	}
	if opt.RetryAfter <= 0 {
		opt.RetryAfter = 30 * time.Second
	}
	p := &Pool{opt: opt, idle: make(chan *proc, maxProcs), room: make(chan struct{}, maxProcs), closed: make(chan struct{})}
	p.Grow(n)
	return p
}

// Grow raises the number of processes the pool may run to n.
func (p *Pool) Grow(n int) {
	n = min(max(n, 1), maxProcs)
	for {
		cur := p.size.Load()
		if int(cur) >= n {
			return
		}
		if p.size.CompareAndSwap(cur, cur+1) {
			p.room <- struct{}{}
		}
	}
}

// Stats counts processes started, and those discarded or that failed to
// start, since the pool was made.
func (p *Pool) Stats() (started, discarded int64) { return p.started.Load(), p.discarded.Load() }

// Hash decodes and hashes the image in r (read from its start) on a
// worker. Errors wrap the pdq errors the image caused (ErrNotImage,
// ErrTooManyPixels, ErrCorrupt; two workers dying after receiving the same
// image count as ErrCorrupt), ErrUnavailable (hash it elsewhere), or ctx's
// error when the caller gave up; the job then finishes in the background
// and r is no longer read.
func (p *Pool) Hash(ctx context.Context, r io.ReadSeeker, dopt pdq.DecodeOptions, opt pdq.Options) (pdq.Result, error) {
	if err := ctx.Err(); err != nil {
		return pdq.Result{}, err
	}
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return pdq.Result{}, err
	}
	if size > MaxBody {
		return pdq.Result{}, fmt.Errorf("%w: a %d-byte body is over the protocol's limit", ErrUnavailable, size)
	}
	var lastDeath string
	deathsWithImage := 0
	for attempt := 0; attempt < 2; attempt++ {
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return pdq.Result{}, err
		}
		pr, err := p.acquire(ctx)
		if err != nil {
			return pdq.Result{}, err
		}
		res, died, sent, err := p.run(ctx, pr, r, size, dopt, opt)
		if !died {
			return res, err
		}
		switch pr.killed.Load() {
		case killedCPU:
			// The image's doing: crafted to hold a decoder (or too
			// costly to judge), never skipped where it is carved out.
			return pdq.Result{}, fmt.Errorf("%w: %v", pdq.ErrCrafted, err)
		case killedWall:
			return pdq.Result{}, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		// A worker can die of its own accord (the OOM killer, an
		// operator), idle or busy: one more try on a fresh one, and only
		// deaths after the whole image went across count against it.
		lastDeath = err.Error()
		if sent {
			deathsWithImage++
		}
	}
	if deathsWithImage == 2 {
		return pdq.Result{}, fmt.Errorf("%w: the hashing worker died twice on this image (%s)", pdq.ErrCrafted, lastDeath)
	}
	return pdq.Result{}, fmt.Errorf("%w: workers failed before receiving the image (%s)", ErrUnavailable, lastDeath)
}

// run sends one job to pr and waits for the answer. died says pr failed
// (and was discarded) rather than answering; sent, that it had the whole
// image when it did.
func (p *Pool) run(ctx context.Context, pr *proc, r io.Reader, size int64, dopt pdq.DecodeOptions, opt pdq.Options) (res pdq.Result, died, sent bool, err error) {
	stopWatch := p.watch(pr, cpuLimit(ctx, p.opt.JobCPU))
	// The body is sent on the caller's goroutine: once Hash returns, the
	// caller may reuse r. The worker reads it whole before decoding.
	if err := writeRequest(pr.in, r, size, dopt, opt); err != nil {
		stopWatch()
		return pdq.Result{}, true, false, p.discard(pr, "sending: "+err.Error())
	}
	type answer struct {
		res pdq.Result
		err error
	}
	done := make(chan answer, 1)
	go func() {
		res, err := readResponse(pr.out)
		stopWatch()
		done <- answer{res, err}
	}()
	finish := func(a answer) (pdq.Result, bool, bool, error) {
		var remote remoteError
		answered := a.err == nil || errors.Is(a.err, pdq.ErrNotImage) || errors.As(a.err, &remote)
		if answered && pr.killed.Load() == 0 {
			p.release(pr)
			return a.res, false, true, a.err
		}
		if answered {
			// Killed as it answered: the answer stands, the worker goes.
			p.discard(pr, "killed after answering")
			return a.res, false, true, a.err
		}
		return pdq.Result{}, true, true, p.discard(pr, "answering: "+a.err.Error())
	}
	select {
	case a := <-done:
		return finish(a)
	case <-ctx.Done():
		go func() { finish(<-done) }()
		return pdq.Result{}, false, true, ctx.Err()
	}
}

func (p *Pool) acquire(ctx context.Context) (*proc, error) {
	select {
	case pr := <-p.idle:
		return pr, nil
	default:
	}
	select {
	case pr := <-p.idle:
		return pr, nil
	case <-p.room:
		if time.Now().UnixNano() < p.downUntil.Load() {
			p.room <- struct{}{}
			return nil, fmt.Errorf("%w: the last start failed", ErrUnavailable)
		}
		pr, err := p.start()
		if err != nil {
			p.discarded.Add(1)
			p.downUntil.Store(time.Now().Add(p.opt.RetryAfter).UnixNano())
			p.room <- struct{}{}
			if p.opt.OnExit != nil {
				p.opt.OnExit("start failed: "+err.Error(), "")
			}
			return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
		}
		return pr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.closed:
		return nil, fmt.Errorf("%w: pool closed", ErrUnavailable)
	}
}

func (p *Pool) release(pr *proc) {
	select {
	case <-p.closed:
		pr.in.Close()
		p.room <- struct{}{}
	default:
		p.idle <- pr
	}
}

type cpuBudgetKey struct{}

// WithCPUBudget bounds the CPU time of the jobs hashed under ctx below
// Options.JobCPU: a caller that knows an image's size gives it a budget
// in proportion, so a crafted image costs a bounded share of the hashing
// capacity rather than a minute of it. A job over budget is killed and
// reported as pdq.ErrCorrupt.
func WithCPUBudget(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, cpuBudgetKey{}, d)
}

func cpuLimit(ctx context.Context, def time.Duration) time.Duration {
	if d, ok := ctx.Value(cpuBudgetKey{}).(time.Duration); ok && d > 0 && d < def {
		return d
	}
	return def
}

// watch kills pr when its job uses more than jobCPU of CPU time or JobWall
// of wall time; the returned func stops watching.
func (p *Pool) watch(pr *proc, jobCPU time.Duration) (stop func()) {
	done := make(chan struct{})
	exited := make(chan struct{})
	var once sync.Once
	go func() {
		defer close(exited)
		start := time.Now()
		cpu0, cpuOK := cpuTime(pr.cmd.Process.Pid)
		t := time.NewTicker(min(max(jobCPU/8, time.Millisecond), time.Second))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-t.C:
				var used time.Duration
				if cpuOK {
					cpu, _ := cpuTime(pr.cmd.Process.Pid)
					used = cpu - cpu0
				}
				switch {
				case cpuOK && used > jobCPU:
					pr.kill(killedCPU, fmt.Sprintf("used more than %v of CPU on one image", jobCPU))
					return
				case now.Sub(start) > p.opt.JobWall && cpuOK && used > p.opt.JobCPU/10:
					// Slow because the image is costly, not only because
					// the machine is busy: hashing it in the proxy
					// instead would undo the isolation.
					pr.kill(killedCPU, fmt.Sprintf("no answer within %v after %v of CPU on one image", p.opt.JobWall, used.Round(time.Millisecond)))
					return
				case now.Sub(start) > p.opt.JobWall:
					pr.kill(killedWall, fmt.Sprintf("no answer within %v", p.opt.JobWall))
					return
				}
			}
		}
	}()
	// stop waits for the watch to end, so no kill lands after it.
	return func() {
		once.Do(func() { close(done) })
		<-exited
	}
}

// discard ends pr and frees its place; the error says what happened.
func (p *Pool) discard(pr *proc, what string) error {
	p.discarded.Add(1)
	reason := what
	if k := pr.killedBy.Load(); k != nil {
		reason = *k
	}
	pr.in.Close()
	pr.cmd.Process.Kill()
	go func() {
		state := pr.cmd.Wait()
		if p.opt.OnExit != nil {
			msg := reason
			if state != nil {
				msg += " (" + state.Error() + ")"
			}
			p.opt.OnExit(msg, pr.stderr.String())
		}
	}()
	p.room <- struct{}{}
	return errors.New("hashing worker failed: " + reason)
}

// Close stops idle workers; busy ones stop when their job ends. Hash
// answers ErrUnavailable afterwards.
func (p *Pool) Close() {
	p.closeOnce.Do(func() {
		close(p.closed)
		for {
			select {
			case pr := <-p.idle:
				pr.in.Close()
				go pr.cmd.Wait()
			default:
				return
			}
		}
	})
}

// proc is one worker process.
type proc struct {
	cmd      *exec.Cmd
	in       io.WriteCloser
	out      *bufio.Reader
	stderr   *tail
	killed   atomic.Int32 // killedCPU or killedWall, once killed by the watch
	killedBy atomic.Pointer[string]
}

const (
	killedCPU = 1 + iota
	killedWall
)

func (pr *proc) kill(how int32, why string) {
	if pr.killed.CompareAndSwap(0, how) {
		pr.killedBy.Store(&why)
	}
	pr.cmd.Process.Kill()
}

func (p *Pool) start() (*proc, error) {
	var cmd *exec.Cmd
	if p.opt.Command != nil {
		cmd = p.opt.Command()
	} else {
		exe, err := executable()
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(exe)
		// What ps shows; the marker in the environment is what counts.
		cmd.Args = []string{"mediaguard-hash-worker"}
		cmd.Env = workerEnv()
	}
	configure(cmd)
	pr := &proc{cmd: cmd, stderr: &tail{max: 2048}}
	cmd.Stderr = pr.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	pr.in, pr.out = in, bufio.NewReaderSize(out, 4<<10)
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	greeted := make(chan error, 1)
	go func() {
		line, err := pr.out.ReadString('\n')
		if err == nil && line != hello {
			err = fmt.Errorf("unexpected greeting %.40q", line)
		}
		greeted <- err
	}()
	t := time.NewTimer(p.opt.StartTimeout)
	defer t.Stop()
	select {
	case err = <-greeted:
	case <-t.C:
		err = fmt.Errorf("no greeting within %v", p.opt.StartTimeout)
	}
	if err != nil {
		in.Close()
		cmd.Process.Kill()
		cmd.Wait()
		if s := pr.stderr.String(); s != "" {
			err = fmt.Errorf("%w; stderr: %s", err, s)
		}
		return nil, err
	}
	p.started.Add(1)
	return pr, nil
}

// workerMemLimit is a worker's soft memory limit: an image of about 4
// megapixels, decoded and with PDQ's scratch, fits; a larger one takes
// what it needs while it is hashed and is collected promptly after.
const workerMemLimit = "64MiB"

// workerEnv is a worker's whole environment: it needs no secrets, and one
// thread is all a worker uses.
func workerEnv() []string {
	// GOMEMLIMIT keeps a worker's heap near one image's worth instead of
	// the collector's default of twice the last one: workers sit beside
	// the proxy, whose memory is the operator's budget.
	env := []string{envMarker + "=" + version, "GOMAXPROCS=1", "GOMEMLIMIT=" + workerMemLimit}
	// The race detector's and coverage's settings, when tests run.
	for _, k := range []string{"GORACE", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// tail keeps the last max bytes written to it.
type tail struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, b...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
