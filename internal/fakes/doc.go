// Package fakes holds the httptest servers mediaguard's tests use in place
// of the services it talks to: HMA (ThreatExchange's
// hasher-matcher-actioner), Arachnid Shield (its PDQ lookup), Synapse
// (its media repository, its admin API and whoami) and NCMEC's hash-sharing API. Each fake answers as the real service does, for the part
// mediaguard uses; each fact it relies on is written next to the code that
// plays it, with the public source it comes from. Behaviours a real service
// only shows when it is broken (canned answers, delays, failing the next
// calls, going down) are options a test turns on.
//
// It is for tests and test tools only; nothing in the shipped module
// imports it.
package fakes

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// down closes *srv's listener, so connections are refused, and returns
// the function that serves h again on the same address, storing the new
// server in *srv: a service that goes away and comes back.
func down(tb testing.TB, srv **httptest.Server, h http.Handler) (up func()) {
	addr := (*srv).Listener.Addr().String()
	(*srv).Close()
	return func() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			tb.Fatalf("re-listening on %s: %v", addr, err)
		}
		s := httptest.NewUnstartedServer(h)
		s.Listener.Close()
		s.Listener = l
		s.Start()
		*srv = s
		tb.Cleanup(s.Close)
	}
}
