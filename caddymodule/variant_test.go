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
