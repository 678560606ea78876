package learn

import (
	"strconv"
	"testing"

	"github.com/mediaguard/mediaguard/internal/testimg"
)

// BenchmarkQuarantineToBank is what a poll adds to the time from a
// quarantine to its copies being refused: one round that finds one newly
// quarantined photo (1024×768 JPEG) in the feed, fetches it from the
// homeserver (the fake, over loopback HTTP), hashes it with the proxy's
// scan (inline, pdq_search default), writes the bank (atomically, with
// fsyncs) and reloads the matcher. The whole delay is at most learn_every
// plus this. The bank grows by one media per iteration.
//
//	go test -tags nodynamic -run '^$' -bench QuarantineToBank -benchtime 50x ./learn/
func BenchmarkQuarantineToBank(b *testing.B) {
	e := newEnv(b)
	s := e.settings()
	u, err := newUser(s)
	if err != nil {
		b.Fatal(err)
	}
	defer u.cancel()
	e.poller.mu.Lock()
	e.poller.cur = u // what reload reaches, as Use sets it (no loop runs)
	e.poller.mu.Unlock()
	photos := make([][]byte, b.N)
	for i := range photos {
		photos[i] = testimg.JPEG(testimg.Photo(1000+i, 1024, 768), 85)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := "photo" + strconv.Itoa(i)
		e.fake.Put(id, photos[i], "image/jpeg")
		e.quarantine(id)
		b.StartTimer()
		e.poller.round(u)
	}
	b.StopTimer()
	if st := e.poller.Stats(); st.Learned != int64(b.N) || st.FetchRetries != 0 {
		b.Fatalf("stats %+v after %d rounds", st, b.N)
	}
	if e.local.Stats().PDQ < b.N {
		b.Fatalf("the matcher holds %d pdq entries after %d media", e.local.Stats().PDQ, b.N)
	}
}

// BenchmarkQuarantineToBankSameBytes is the same round for a copy of
// bytes already learned (Synapse quarantines, and records in the feed,
// every copy of quarantined bytes): its SHA-256, from the media info,
// is learned already, so it is neither fetched nor hashed; what is left
// is the admin API's answers, the bank write and the matcher's reload.
// Each quarantine records every copy so far again, as Synapse does: the
// earlier ones are duplicates, skipped.
func BenchmarkQuarantineToBankSameBytes(b *testing.B) {
	e := newEnv(b)
	u, err := newUser(e.settings())
	if err != nil {
		b.Fatal(err)
	}
	defer u.cancel()
	e.poller.mu.Lock()
	e.poller.cur = u
	e.poller.mu.Unlock()
	photo := testimg.JPEG(testimg.Photo(999, 1024, 768), 85)
	e.fake.Put("first", photo, "image/jpeg")
	e.quarantine("first")
	e.poller.round(u)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		id := "copy" + strconv.Itoa(i)
		e.fake.Put(id, photo, "image/jpeg")
		e.fake.QuarantineAs("@moderator:hs.example", "hs.example", id)
		b.StartTimer()
		e.poller.round(u)
	}
	b.StopTimer()
	if st := e.poller.Stats(); st.Reused != int64(b.N) || e.scans.Load() != 1 {
		b.Fatalf("stats %+v, %d scans", st, e.scans.Load())
	}
}
