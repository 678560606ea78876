package matcher

import (
	"context"
	"errors"
	"reflect"
	"testing"
)

// TestRemoteBanks: an HMA restricted to banks lists them, Arachnid its
// fixed three; an HMA that is not (any of its banks may answer) is left
// out.
func TestRemoteBanks(t *testing.T) {
	a, err := NewHMA(HMAConfig{URL: "http://127.0.0.1:1", Banks: []string{"NCMEC", "LOCAL_CSAM"}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewHMA(HMAConfig{URL: "http://127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	ar, err := NewArachnid(ArachnidConfig{URL: "http://127.0.0.1:3", Username: "u", Password: "p"})
	if err != nil {
		t.Fatal(err)
	}
	g, err := NewGuard(GuardConfig{Remotes: []Remote{{Name: "hma:a", Matcher: a}, {Name: "hma:b", Matcher: b}, {Name: "arachnid:x", Matcher: ar}}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	// Arachnid answers in its three banks only, so HMA clients can
	// enable them.
	want := map[string][]string{"hma:a": {"NCMEC", "LOCAL_CSAM"}, "arachnid:x": {"ARACHNID_CSAM", "ARACHNID_HARMFUL", "ARACHNID_OTHER"}}
	if got := g.RemoteBanks(); !reflect.DeepEqual(got, want) {
		t.Errorf("RemoteBanks = %v, want %v", got, want)
	}
}

// TestMatchRemotes: the remotes are asked even when a local bank holds
// the media, through the same cache and fail policy; without remotes it
// is no match.
func TestMatchRemotes(t *testing.T) {
	local := newFakeBackend(answer(Verdict{Match: true, Bank: "LOCAL", Source: "local:LOCAL", Evidence: []Evidence{{Bank: "LOCAL", Source: "local:LOCAL"}}}, nil))
	remote := newFakeBackend(answer(Verdict{Match: true, Bank: "NCMEC", Source: "hma:NCMEC", Evidence: []Evidence{{Bank: "NCMEC", Source: "hma:NCMEC"}}}, nil))
	g, err := NewGuard(GuardConfig{Local: local, Remotes: []Remote{{Name: "hma:x", Matcher: remote}}, FailPolicy: FailClosed})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	q := Query{Has: HasMD5}
	if v, err := g.Match(context.Background(), q); err != nil || v.Bank != "LOCAL" || remote.calls.Load() != 0 {
		t.Fatalf("Match: %+v %v, remote calls %d", v, err, remote.calls.Load())
	}
	for range 2 {
		v, err := g.MatchRemotes(context.Background(), q)
		if err != nil || !v.Match || v.Bank != "NCMEC" || len(v.Evidence) != 1 {
			t.Fatalf("MatchRemotes: %+v %v", v, err)
		}
	}
	if remote.calls.Load() != 1 || local.calls.Load() != 1 {
		t.Errorf("remote asked %d times (cache), local %d", remote.calls.Load(), local.calls.Load())
	}
	remote.set(answer(Verdict{}, ErrUnavailable))
	if _, err := g.MatchRemotes(context.Background(), Query{Has: HasSHA1}); !errors.Is(err, ErrUnavailable) {
		t.Errorf("fail-closed remote down: %v", err)
	}
	none, _ := NewGuard(GuardConfig{Local: local})
	defer none.Close()
	if v, err := none.MatchRemotes(context.Background(), q); err != nil || v.Match {
		t.Errorf("no remotes: %+v %v", v, err)
	}
}
