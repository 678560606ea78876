package backfill

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
)

// console serialises what a run prints: lines on out, and progress on
// prog, either one line redrawn in place (a terminal) or plain lines.
type console struct {
	mu   sync.Mutex
	out  io.Writer
	prog io.Writer
	term bool
	// shown is the progress line on screen, cleared around other output.
	shown string
}

// println prints a line of output, lifting the progress line around it.
func (c *console) println(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shown != "" {
		fmt.Fprint(c.prog, "\r\033[K")
	}
	fmt.Fprintln(c.out, s)
	if c.shown != "" {
		fmt.Fprint(c.prog, c.shown)
	}
}

// progress shows a progress line.
func (c *console) progress(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.term {
		fmt.Fprint(c.prog, "\r\033[K"+s)
		c.shown = s
		return
	}
	fmt.Fprintln(c.prog, s)
}

// finish leaves the last progress line on screen and moves past it.
func (c *console) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.shown != "" {
		fmt.Fprintln(c.prog)
		c.shown = ""
	}
}

// redrawEvery is how often a terminal's progress line is redrawn.
const redrawEvery = 250 * time.Millisecond

// startProgress reports progress until the returned function is called
// (which may be called more than once). The last report is always
// shown.
func (r *run) startProgress() (stop func()) {
	if r.cfg.Progress == nil {
		return func() {}
	}
	every := r.cfg.ProgressInterval
	if r.cfg.Terminal {
		every = redrawEvery
	}
	start := time.Now()
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.con.progress(r.progressLine(time.Since(start)))
			case <-quit:
				r.con.progress(r.progressLine(time.Since(start)))
				r.con.finish()
				return
			}
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit); <-done }) }
}

// progressLine is "1234/10000 files (12.3%) [bar] 45.2 files/s 3.1 MB/s
// ETA 3m12s". Rates count this run's files only (not those resumed past),
// and the ETA assumes the rest go as fast.
func (r *run) progressLine(elapsed time.Duration) string {
	r.mu.Lock()
	total, done, processed, bytes := r.sum.Files, r.done, r.processed, r.bytes
	r.mu.Unlock()
	secs := max(elapsed.Seconds(), 1e-3)
	rate := float64(processed) / secs
	pct := 100.0
	if total > 0 {
		pct = 100 * float64(done) / float64(total)
	}
	eta := "-"
	if left := total - done; left <= 0 {
		eta = "0s"
	} else if rate > 0 {
		eta = time.Duration(float64(left) / rate * float64(time.Second)).Round(time.Second).String()
	}
	line := fmt.Sprintf("%d/%d files (%.1f%%) %.1f files/s %s/s ETA %s", done, total, pct, rate, humanize.Bytes(uint64(float64(bytes)/secs)), eta)
	if r.cfg.Terminal {
		return bar(pct, 20) + " " + line
	}
	return "backfill: " + line
}

// bar is a text progress bar of width cells.
func bar(pct float64, width int) string {
	n := min(width, max(0, int(pct/100*float64(width))))
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}
