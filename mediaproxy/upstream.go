package mediaproxy

import (
	"context"
	"errors"
	"io"
	"net/http"
)

// upstream is the homeserver's answer to a download, read like a client
// reads a response: the head first, then the body. The rest of the handler
// chain (reverse_proxy) runs in its own goroutine and writes into a pipe,
// so that every decision about the answer is made in serveDownload, in
// order, rather than inside the callbacks of another package's writer.
type upstream struct {
	heads  chan head
	body   *io.PipeReader
	cancel context.CancelFunc
	done   chan struct{}
	// panicked is a panic of the chain other than reverse_proxy's abort,
	// raised again in the handler's goroutine by close.
	panicked any
}

// head is the status line and header of the answer, or err when the chain
// returned (or aborted) before writing one.
type head struct {
	status int
	header http.Header
	err    error
}

// errUpstreamAborted stands for reverse_proxy's abort panic: the
// homeserver's answer broke off before it was complete.
var errUpstreamAborted = errors.New("the homeserver's answer broke off before it was complete")

// errDownloadDone closes the pipe when the handler stops reading: the
// chain's next write fails and it gives up.
var errDownloadDone = errors.New("mediaproxy: the download was answered without the rest of the body")

// fetch starts next on r. Call close when done with the answer.
func fetch(r *http.Request, next Next) *upstream {
	ctx, cancel := context.WithCancel(r.Context())
	pr, pw := io.Pipe()
	u := &upstream{heads: make(chan head, 1), body: pr, cancel: cancel, done: make(chan struct{})}
	w := &pipeWriter{header: make(http.Header), body: pw, heads: u.heads}
	go u.run(w, r.WithContext(ctx), next)
	return u
}

func (u *upstream) run(w *pipeWriter, r *http.Request, next Next) {
	var err error
	defer close(u.done)
	defer func() {
		if v := recover(); v != nil {
			// reverse_proxy aborts with this panic when the homeserver
			// or the reader of the pipe goes away mid-body.
			if v != http.ErrAbortHandler {
				u.panicked = v
			}
			err = errUpstreamAborted
		}
		w.end(err)
	}()
	err = next(w, r)
}

// head waits for the status line and header.
func (u *upstream) head() head { return <-u.heads }

// close stops the chain if it is still writing and waits for it to
// return, so that nothing outlives the request.
func (u *upstream) close() {
	u.body.CloseWithError(errDownloadDone)
	u.cancel()
	<-u.done
	if u.panicked != nil {
		panic(u.panicked)
	}
}

// pipeWriter is the ResponseWriter the chain writes the answer to.
type pipeWriter struct {
	header http.Header
	body   *io.PipeWriter
	heads  chan<- head
	sent   bool
}

func (w *pipeWriter) Header() http.Header { return w.header }

// WriteHeader hands the head over; informational answers are dropped, as
// nothing may reach the client before the verdict.
func (w *pipeWriter) WriteHeader(code int) {
	if w.sent || code < 200 {
		return
	}
	w.sent = true
	w.heads <- head{status: code, header: w.header.Clone()}
}

// Write blocks until the handler has read b.
func (w *pipeWriter) Write(b []byte) (int, error) {
	if !w.sent {
		w.WriteHeader(http.StatusOK)
	}
	return w.body.Write(b)
}

// FlushError is a no-op: the handler decides when bytes reach the client.
func (w *pipeWriter) FlushError() error { return nil }

// end completes the answer once the chain returned: a chain that wrote
// nothing answered an empty 200, as net/http would have it; one that
// failed ends the body with its error instead of EOF.
func (w *pipeWriter) end(err error) {
	if !w.sent {
		w.sent = true
		if err != nil {
			w.heads <- head{err: err}
		} else {
			w.heads <- head{status: http.StatusOK, header: w.header.Clone()}
		}
	}
	w.body.CloseWithError(err)
}
