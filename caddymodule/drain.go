package caddymodule

import "sync"

// drain closes what a config's app opened only once nothing can use it
// any more: the app has been released (Cleanup) and the last request
// that entered has left.
//
// Caddy stops a config's apps one after another in no set order (it
// ranges over a map: unsyncedStop in caddy.go,
// https://github.com/caddyserver/caddy/blob/master/caddy.go), so the
// mediaguard app may be stopped while the HTTP app is still serving, or
// draining, requests that use it; and on a reload the old servers finish
// their requests after every old app's Stop has returned. Closing the
// service in Stop cut those requests off (connections closed with no
// answer) and lost their audit records ("audit: log closed").
//
// Cleanup runs after every app of the config has been stopped, so by
// then the HTTP app has closed its listeners (an exit also waits for its
// requests, a reload does not): no new request can enter, and the ones
// in flight finish on an open service.
type drain struct {
	mu       sync.Mutex
	inFlight int
	released bool
	closed   bool
	close    func()
}

// enter counts a request in; leave must follow.
func (d *drain) enter() {
	d.mu.Lock()
	d.inFlight++
	d.mu.Unlock()
}

// leave counts a request out, closing if it was the last after release.
func (d *drain) leave() {
	d.mu.Lock()
	d.inFlight--
	fire := d.released && d.inFlight == 0 && !d.closed
	d.closed = d.closed || fire
	d.mu.Unlock()
	if fire {
		d.close()
	}
}

// release closes now if no request is in flight, else when the last one
// leaves. Calling it again does nothing.
func (d *drain) release() {
	d.mu.Lock()
	d.released = true
	fire := d.inFlight == 0 && !d.closed
	d.closed = d.closed || fire
	d.mu.Unlock()
	if fire {
		d.close()
	}
}
