package caddymodule

import (
	"encoding/json"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// The variant label takes pdq's closed set only: an unset kind is the
// media as stored, and anything else is "other", whatever reached the
// verdict.
func TestVariantLabel(t *testing.T) {
	for in, want := range map[string]string{
		"":                       "stored",
		pdq.VariantStored:        "stored",
		pdq.VariantQuadrant:      "quadrant",
		pdq.VariantColourManaged: "colour-managed",
		pdq.VariantEmbedded:      "embedded",
		pdq.VariantRotated:       "rotated",
		"frame 3":                "other",
		"quadrant\n":             "other",
		"@mallory:example.org":   "other",
	} {
		if got := variantLabel(in); got != want {
			t.Errorf("variantLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

// A block is counted under the kind of what matched, and its audit
// record and notice (live and redelivered from the record) carry it.
func TestBlockCarriesVariant(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	log, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	o := &observer{app: &App{audit: log}, log: zap.NewNop()}
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
	var recs []audit.Record
	audit.Read(path, time.Time{}, func(r audit.Record) error { recs = append(recs, r); return nil })
	if len(recs) != 1 {
		t.Fatalf("%d records", len(recs))
	}
	var v auditVerdict
	if err := json.Unmarshal(recs[0].Verdict, &v); err != nil || v.Variant != pdq.VariantQuadrant || v.Form != "frame 2 quadrant 4" {
		t.Fatalf("audit verdict %s: %v", recs[0].Verdict, err)
	}
	if n := detectionFromRecord(recs[0]); n.Variant != pdq.VariantQuadrant || n.Form != "frame 2 quadrant 4" {
		t.Fatalf("redelivered notice %+v", n)
	}
	if n := detection(recs[0].ID, d, "upload"); n.Variant != pdq.VariantQuadrant {
		t.Fatalf("notice %+v", n)
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
