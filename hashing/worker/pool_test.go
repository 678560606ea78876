package worker

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color/palette"
	"image/draw"
	"image/gif"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/internal/testimg"
)

func gifBytes(t *testing.T, img image.Image) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// A worker's answers are the in-process hashes, bit for bit, and its
// errors are the ones the in-process decoder gives.
func TestHashMatchesInProcess(t *testing.T) {
	p := NewPool(1, Options{})
	defer p.Close()
	photo := testimg.Photo(7, 640, 480)
	jpg := testimg.JPEG(photo, 90)
	cases := []struct {
		name string
		body []byte
		dopt pdq.DecodeOptions
		opt  pdq.Options
		want error
	}{
		{"jpeg", jpg, pdq.DecodeOptions{}, pdq.Options{}, nil},
		{"png dihedral", testimg.PNG(photo), pdq.DecodeOptions{}, pdq.Options{Dihedral: true}, nil},
		{"gif resize512", gifBytes(t, testimg.Photo(8, 700, 300)), pdq.DecodeOptions{}, pdq.Options{Resize512: true}, nil},
		{"tiny", testimg.PNG(testimg.Photo(9, 3, 3)), pdq.DecodeOptions{}, pdq.Options{Dihedral: true}, nil},
		{"not an image", []byte("ciphertext of an encrypted attachment"), pdq.DecodeOptions{}, pdq.Options{}, pdq.ErrNotImage},
		{"empty", nil, pdq.DecodeOptions{}, pdq.Options{}, pdq.ErrNotImage},
		{"over the pixel limit", jpg, pdq.DecodeOptions{MaxPixels: 640*480 - 1}, pdq.Options{}, pdq.ErrTooManyPixels},
		{"truncated", jpg[:len(jpg)/2], pdq.DecodeOptions{}, pdq.Options{}, pdq.ErrCorrupt},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want, _, wantErr := pdq.HashBytes(c.body, c.dopt, c.opt)
			got, err := p.Hash(context.Background(), bytes.NewReader(c.body), c.dopt, c.opt)
			if !errors.Is(err, c.want) || !errors.Is(wantErr, c.want) {
				t.Fatalf("error %v (in-process %v), want %v", err, wantErr, c.want)
			}
			if err != nil {
				if err.Error() != wantErr.Error() && !errors.Is(err, pdq.ErrNotImage) {
					t.Errorf("message %q, in-process %q", err, wantErr)
				}
				return
			}
			if got.Hash != want.Hash || got.Quality != want.Quality || (got.Dihedral == nil) != (want.Dihedral == nil) ||
				(got.Dihedral != nil && *got.Dihedral != *want.Dihedral) {
				t.Fatalf("worker %v q%d, in-process %v q%d", got.Hash, got.Quality, want.Hash, want.Quality)
			}
		})
	}
	if started, discarded := p.Stats(); started != 1 || discarded != 0 {
		t.Errorf("started %d, discarded %d; want one process for every job", started, discarded)
	}
}

// idlePID is the process ID of an idle worker of p.
func idlePID(t *testing.T, p *Pool) int {
	t.Helper()
	select {
	case pr := <-p.idle:
		p.idle <- pr
		return pr.cmd.Process.Pid
	default:
		t.Fatal("no idle worker")
		return 0
	}
}

// Every thread of a worker runs at SCHED_IDLE (field 41 of
// /proc/PID/task/TID/stat is the policy), or where this machine refuses
// SCHED_IDLE, at nice 19 (field 19); the test process keeps its own.
func TestWorkerRunsAtIdlePriority(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SCHED_IDLE is Linux's")
	}
	idleAllowed := probeSchedIdle()
	if !idleAllowed {
		t.Log("SCHED_IDLE is refused here (seccomp or sandbox): checking the nice 19 fallback")
	}
	p := NewPool(1, Options{})
	defer p.Close()
	if _, err := p.Hash(context.Background(), bytes.NewReader(testimg.JPEG(testimg.Photo(1, 800, 600), 85)), pdq.DecodeOptions{}, pdq.Options{}); err != nil {
		t.Fatal(err)
	}
	pid := idlePID(t, p)
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		stat := "/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/stat"
		if policy := statField(t, stat, 41); idleAllowed && policy != schedIdle {
			t.Errorf("worker thread %s has policy %d, want SCHED_IDLE (%d)", task.Name(), policy, schedIdle)
		}
		if nice := statField(t, stat, 19); !idleAllowed && nice != workerNice {
			t.Errorf("worker thread %s runs at nice %d, want %d", task.Name(), nice, workerNice)
		}
	}
	if len(tasks) == 0 {
		t.Fatal("worker has no threads")
	}
	if policy := statField(t, "/proc/self/stat", 41); policy == schedIdle {
		t.Error("the test process itself went idle")
	}
}

// statField reads field n (1-based, as in proc(5)) of a stat file.
func statField(t *testing.T, path string, n int) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	v, err := strconv.Atoi(fields[n-3])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// A worker killed from outside (the OOM killer, an operator) costs no
// scan: the job is retried on a fresh one.
func TestWorkerKilledIsReplaced(t *testing.T) {
	var exits []string
	p := NewPool(1, Options{OnExit: func(reason, _ string) { exits = append(exits, reason) }})
	defer p.Close()
	img := bytes.NewReader(testimg.PNG(testimg.Photo(2, 320, 240)))
	first, err := p.Hash(context.Background(), img, pdq.DecodeOptions{}, pdq.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(idlePID(t, p), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	again, err := p.Hash(context.Background(), img, pdq.DecodeOptions{}, pdq.Options{})
	if err != nil || again.Hash != first.Hash || again.Quality != first.Quality {
		t.Fatalf("after the kill: %v, %v; want %v", again, err, first)
	}
	if started, discarded := p.Stats(); started != 2 || discarded != 1 {
		t.Errorf("started %d, discarded %d; want 2 and 1", started, discarded)
	}
}

// A job that spends more than JobCPU kills its worker and is reported as a
// corrupt image, without a second try; the next job gets a new worker.
func TestJobCPULimit(t *testing.T) {
	var exits []string
	done := make(chan struct{}, 4)
	p := NewPool(1, Options{JobCPU: time.Millisecond, OnExit: func(reason, _ string) { exits = append(exits, reason); done <- struct{}{} }})
	defer p.Close()
	big := testimg.JPEG(testimg.Photo(3, 2000, 1500), 90)
	for i := range 2 {
		_, err := p.Hash(context.Background(), bytes.NewReader(big), pdq.DecodeOptions{}, pdq.Options{})
		if !errors.Is(err, pdq.ErrCorrupt) || !strings.Contains(err.Error(), "used more than 1ms of CPU") {
			t.Fatalf("job %d: %v; want ErrCorrupt for the CPU limit", i, err)
		}
		<-done
	}
	if started, discarded := p.Stats(); started != 2 || discarded != 2 {
		t.Errorf("started %d, discarded %d; want one worker per timed-out job", started, discarded)
	}
	if !strings.Contains(exits[0], "used more than 1ms of CPU") || !strings.Contains(exits[0], "killed") {
		t.Errorf("exit reason %q", exits[0])
	}
}

// A worker that answers nothing while using no CPU (stuck, not spinning)
// is killed after JobWall, and the caller is told to hash in-process: a
// slow machine never turns an image into "unscannable".
func TestJobWallLimit(t *testing.T) {
	p := NewPool(1, Options{JobWall: 100 * time.Millisecond, Command: func() *exec.Cmd {
		return exec.Command("sh", "-c", "printf '"+greeting+"'; exec sleep 10")
	}})
	defer p.Close()
	img := bytes.NewReader(testimg.PNG(testimg.Photo(6, 32, 32)))
	_, err := p.Hash(context.Background(), img, pdq.DecodeOptions{}, pdq.Options{})
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, pdq.ErrCorrupt) || !strings.Contains(err.Error(), "no answer within 100ms") {
		t.Fatalf("got %v; want ErrUnavailable after the wall-time limit", err)
	}
}

// A worker that cannot start makes Hash answer ErrUnavailable (the caller
// hashes in-process) and the pool does not try again at once.
func TestStartFailures(t *testing.T) {
	for _, c := range []struct {
		name string
		cmd  func() *exec.Cmd
		want string
	}{
		{"no such binary", func() *exec.Cmd { return exec.Command("/nonexistent/mediaguard") }, "no such file"},
		{"not a worker", func() *exec.Cmd { return exec.Command("sh", "-c", "echo hello; cat >/dev/null") }, "unexpected greeting"},
		{"silent", func() *exec.Cmd { return exec.Command("sleep", "10") }, "no greeting within"},
		{"dies at once", func() *exec.Cmd { return exec.Command("sh", "-c", "echo broken >&2; exit 3") }, "stderr: broken"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var starts int
			p := NewPool(2, Options{StartTimeout: 200 * time.Millisecond, Command: func() *exec.Cmd { starts++; return c.cmd() }})
			defer p.Close()
			img := bytes.NewReader(testimg.PNG(testimg.Photo(4, 64, 64)))
			_, err := p.Hash(context.Background(), img, pdq.DecodeOptions{}, pdq.Options{})
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v; want ErrUnavailable mentioning %q", err, c.want)
			}
			start := time.Now()
			_, err = p.Hash(context.Background(), img, pdq.DecodeOptions{}, pdq.Options{})
			if !errors.Is(err, ErrUnavailable) || time.Since(start) > 50*time.Millisecond || starts != 1 {
				t.Fatalf("second try: %v after %v, %d starts; want ErrUnavailable at once", err, time.Since(start), starts)
			}
		})
	}
}

// A caller that gives up gets its context's error at once; the worker
// finishes the job and serves the next one.
func TestCallerGivesUp(t *testing.T) {
	p := NewPool(1, Options{})
	defer p.Close()
	big := testimg.JPEG(testimg.Photo(5, 2000, 1500), 90)
	if _, err := p.Hash(context.Background(), bytes.NewReader(big[:100]), pdq.DecodeOptions{}, pdq.Options{}); !errors.Is(err, pdq.ErrCorrupt) {
		t.Fatal(err) // starts the worker
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	if _, err := p.Hash(ctx, bytes.NewReader(big), pdq.DecodeOptions{}, pdq.Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v; want the deadline", err)
	}
	want, _, _ := pdq.HashBytes(big, pdq.DecodeOptions{}, pdq.Options{})
	got, err := p.Hash(context.Background(), bytes.NewReader(big), pdq.DecodeOptions{}, pdq.Options{})
	if err != nil || got.Hash != want.Hash {
		t.Fatalf("next job: %v, %v", got, err)
	}
	if started, discarded := p.Stats(); started != 1 || discarded != 0 {
		t.Errorf("started %d, discarded %d; want the same worker throughout", started, discarded)
	}
}

// Workers that die before the image is across (idle deaths, the OOM
// killer between jobs) say nothing about the image: Hash answers
// ErrUnavailable, so the caller hashes it elsewhere, never ErrCorrupt.
func TestDeathsBeforeSendingSpareTheImage(t *testing.T) {
	p := NewPool(1, Options{Command: func() *exec.Cmd {
		return exec.Command("sh", "-c", "printf '"+greeting+"'; exit 0")
	}})
	defer p.Close()
	// Larger than a pipe's buffer, so sending meets the closed pipe.
	body := bytes.Repeat([]byte{0xff, 0xd8, 0xff}, 200<<10)
	_, err := p.Hash(context.Background(), bytes.NewReader(body), pdq.DecodeOptions{}, pdq.Options{})
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, pdq.ErrCorrupt) {
		t.Fatalf("got %v; want ErrUnavailable", err)
	}
	if started, discarded := p.Stats(); started != 2 || discarded != 2 {
		t.Errorf("started %d, discarded %d; want two tries", started, discarded)
	}
}

// Hashing as viewed in a worker gives exactly what it gives in-process,
// forms included: an animation's frames and an image with transparency,
// and the variants of each search level with their kinds.
func TestViewedFormsCrossThePipe(t *testing.T) {
	p := NewPool(1, Options{})
	defer p.Close()
	a, b := testimg.Photo(11, 96, 96), testimg.Photo(12, 96, 96)
	anim := &gif.GIF{Image: []*image.Paletted{toPaletted(a), toPaletted(b)}, Delay: []int{10, 10}}
	var gb bytes.Buffer
	if err := gif.EncodeAll(&gb, anim); err != nil {
		t.Fatal(err)
	}
	alpha := image.NewNRGBA(a.Bounds())
	for i := range alpha.Pix {
		alpha.Pix[i] = a.Pix[i]
		if i%4 == 3 {
			alpha.Pix[i] = byte(i / 4 % 256)
		}
	}
	for name, body := range map[string][]byte{"animated gif": gb.Bytes(), "alpha png": testimg.PNG(alpha)} {
		for _, search := range []pdq.Search{pdq.SearchOff, pdq.SearchDefault, pdq.SearchDeep} {
			dopt := pdq.DecodeOptions{Viewed: true}
			want, _, err := HashViewed(bytes.NewReader(body), dopt, pdq.Options{Workers: 1, Search: search})
			if err != nil {
				t.Fatal(name, err)
			}
			if len(want.Forms) == 0 {
				t.Fatalf("%s: no forms", name)
			}
			got, err := p.Hash(context.Background(), bytes.NewReader(body), dopt, pdq.Options{Search: search})
			if err != nil {
				t.Fatal(name, err)
			}
			if got.Hash != want.Hash || !slices.Equal(got.Forms, want.Forms) {
				t.Fatalf("%s, search %v: worker %+v, in-process %+v", name, search, got, want)
			}
		}
	}
}

func toPaletted(img image.Image) *image.Paletted {
	b := img.Bounds()
	pm := image.NewPaletted(b, palette.Plan9)
	draw.Draw(pm, b, img, b.Min, draw.Src)
	return pm
}

// A per-job budget below JobCPU cuts that job off, and only that job.
func TestCPUBudget(t *testing.T) {
	p := NewPool(1, Options{})
	defer p.Close()
	big := testimg.JPEG(testimg.Photo(3, 2000, 1500), 90)
	_, err := p.Hash(WithCPUBudget(context.Background(), time.Millisecond), bytes.NewReader(big), pdq.DecodeOptions{}, pdq.Options{})
	if !errors.Is(err, pdq.ErrCorrupt) || !strings.Contains(err.Error(), "used more than 1ms of CPU") {
		t.Fatalf("%v; want ErrCorrupt for the budget", err)
	}
	if _, err := p.Hash(context.Background(), bytes.NewReader(big), pdq.DecodeOptions{}, pdq.Options{}); err != nil {
		t.Fatalf("the next job, without a budget: %v", err)
	}
}

// greeting is hello as a printf format, for fake workers.
var greeting = strings.TrimSuffix(hello, "\n") + `\n`
