package worker

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// envMarker in a process's environment makes it a worker; the value is the
// protocol version, so a worker of another build never takes requests.
const (
	envMarker = "MEDIAGUARD_HASH_WORKER"
	version   = "2"
	// hello is what a worker writes once it is ready.
	hello = "mediaguard-hash-worker " + version + "\n"
)

// schedIdle is Linux's SCHED_IDLE policy, which a worker runs under: it
// gets only CPU time nothing else wants, so proxying and the homeserver on
// the same machine never wait for decoding. Measured under the load test,
// nice 19 let decoding delay known downloads about as much as decoding in
// the proxy's own process did; SCHED_IDLE did not. On a saturated machine
// hashing, and so new media, waits for spare time: it is never skipped,
// and a job starved for JobWall falls back to in-process hashing. Where
// SCHED_IDLE is refused, workerNice.
const (
	schedIdle  = 5
	workerNice = 19
)

func init() {
	if os.Getenv(envMarker) == version {
		os.Exit(serveMain())
	}
}

func serveMain() int {
	lowerPriority()
	if err := serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mediaguard hash worker:", err)
		return 1
	}
	return 0
}

// keepBuffer is the largest body buffer kept between requests; larger
// ones go back to the collector.
const keepBuffer = 16 << 20

// serve answers requests from r on w until r ends.
func serve(r io.Reader, w io.Writer) error {
	br := bufio.NewReaderSize(r, 64<<10)
	bw := bufio.NewWriterSize(w, 4<<10)
	if _, err := bw.WriteString(hello); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	var buf []byte
	for {
		q, err := readRequest(br)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if int64(cap(buf)) < q.size {
			buf = make([]byte, q.size)
		}
		body := buf[:q.size]
		if _, err := io.ReadFull(br, body); err != nil {
			return fmt.Errorf("reading a %d-byte body: %w", q.size, err)
		}
		var res pdq.Result
		var herr error
		if q.dopt.Viewed {
			res, _, herr = HashViewedBytes(body, q.dopt, q.opt)
		} else {
			res, _, herr = pdq.HashBytes(body, q.dopt, q.opt)
		}
		if err := writeResponse(bw, res, herr); err != nil {
			return err
		}
		if cap(buf) > keepBuffer {
			buf = nil
		}
	}
}
