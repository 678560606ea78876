package caddymodule

import (
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// A block is counted under the kind of what matched (the label is
// actions.VariantLabel, tested with the audit record and notice there).
func TestBlockCarriesVariant(t *testing.T) {
	o := &observer{app: &App{}}
	d := &mediaproxy.Decision{
		Request: httptest.NewRequest("POST", "/_matrix/media/v3/upload", nil), Upload: true, Outcome: mediaproxy.Blocked,
		Verdict: matcher.Verdict{Match: true, Bank: "B", HashType: matcher.PDQ, MatchedHash: "ab", Distance: 3,
			Form: "frame 2 quadrant 4", Variant: pdq.VariantQuadrant},
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(blocks); err != nil {
		t.Fatal(err)
	}
	before := blocksWithVariant(t, reg, "quadrant")
	o.Observe(d)
	if got := blocksWithVariant(t, reg, "quadrant"); got != before+1 {
		t.Fatalf("blocks_total{variant=quadrant} went from %v to %v", before, got)
	}
}

// blocksWithVariant is the upload pdq blocks_total series of variant v.
func blocksWithVariant(t *testing.T, reg *prometheus.Registry, v string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "caddy_mediaguard_blocks_total" {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			want := map[string]string{"direction": "upload", "hash_type": "pdq", "variant": v}
			for _, l := range m.GetLabel() {
				if want[l.GetName()] != l.GetValue() {
					continue next
				}
				delete(want, l.GetName())
			}
			if len(want) == 0 {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// A clean upload counts as clean only once the homeserver accepted it:
// one it refused or never answered was not stored.
func TestUnstoredUploadNotCountedClean(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := reg.Register(scanned); err != nil {
		t.Fatal(err)
	}
	value := func(verdict string) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["direction"] == "upload" && labels["verdict"] == verdict {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	o := &observer{app: &App{}}
	for _, tc := range []struct {
		status int
		want   string
	}{{200, "clean"}, {201, "clean"}, {500, "not_stored"}, {413, "not_stored"}, {0, "not_stored"}} {
		clean, unstored := value("clean"), value("not_stored")
		o.Observe(&mediaproxy.Decision{Request: httptest.NewRequest("POST", "/_matrix/media/v3/upload", nil),
			Upload: true, Outcome: mediaproxy.Clean, UpstreamStatus: tc.status})
		dc, du := value("clean")-clean, value("not_stored")-unstored
		if (tc.want == "clean") != (dc == 1 && du == 0) || (tc.want == "not_stored") != (du == 1 && dc == 0) {
			t.Errorf("status %d: clean +%v, not_stored +%v; want %s", tc.status, dc, du, tc.want)
		}
	}
	// Other verdicts keep their own label whatever the homeserver said.
	before := value("unscannable")
	o.Observe(&mediaproxy.Decision{Request: httptest.NewRequest("POST", "/_matrix/media/v3/upload", nil),
		Upload: true, Outcome: mediaproxy.Unscannable, UpstreamStatus: 500})
	if value("unscannable") != before+1 {
		t.Error("an unscannable upload was not counted as such")
	}
}
