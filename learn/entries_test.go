package learn

import (
	"slices"
	"testing"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// Which hashes of a scan are banked: the exact digests always; the PDQ
// hash of the picture and of each whole-picture form, of sufficient
// quality, once each; not the parts (quadrant, window), not the
// negative, not what belongs to a file found inside.
func TestEntriesOf(t *testing.T) {
	h := func(w uint64) pdq.Hash { return pdq.Hash{w, w, w, w} }
	form := func(variant string, w uint64, quality int) pdq.Form {
		return pdq.Form{Name: variant, Variant: variant, Hash: h(w), Quality: quality}
	}
	for _, tc := range []struct {
		name  string
		query matcher.Query
		want  []uint64 // the PDQ hashes banked, by their word
	}{
		{"not a picture", matcher.Query{}, nil},
		{"the picture", matcher.Query{Has: matcher.HasPDQ, PDQ: h(1), PDQQuality: 90}, []uint64{1}},
		{"a low-quality picture", matcher.Query{Has: matcher.HasPDQ, PDQ: h(1), PDQQuality: 49}, nil},
		{"a blank picture", matcher.Query{Has: matcher.HasPDQ, PDQ: h(0), PDQQuality: 100}, nil},
		{"whole-picture forms", matcher.Query{Has: matcher.HasPDQ, PDQ: h(1), PDQQuality: 90, Forms: []pdq.Form{
			form(pdq.VariantFrame, 2, 80), form(pdq.VariantDisplayed, 3, 80), form(pdq.VariantComposited, 4, 80),
			form(pdq.VariantColourManaged, 5, 80), form(pdq.VariantTrimmed, 6, 80), form(pdq.VariantPeeled, 7, 80),
			form(pdq.VariantDegapped, 8, 80), form(pdq.VariantStretched, 9, 80), form(pdq.VariantRotated, 10, 80),
			form(pdq.VariantFrame, 2, 80), // repeated: once
		}}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{"parts and the negative left out", matcher.Query{Has: matcher.HasPDQ, PDQ: h(1), PDQQuality: 90, Forms: []pdq.Form{
			form(pdq.VariantQuadrant, 2, 80), form(pdq.VariantWindow, 3, 80), form(pdq.VariantNegative, 4, 80),
			form(pdq.VariantFrame, 5, 10),
		}}, []uint64{1}},
		{"nothing of an embedded file", matcher.Query{Forms: []pdq.Form{
			form(pdq.VariantFrame, 2, 80), form(pdq.VariantEmbedded, 3, 80), form(pdq.VariantDisplayed, 4, 80),
		}}, []uint64{2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := hashing.Digests{MD5: [16]byte{1}, SHA1: [20]byte{2}, SHA256: [32]byte{3}}
			es := entriesOf(mediaproxy.FileScan{Query: tc.query, Digests: d}, matcher.DefaultMinPDQQuality)
			if len(es) < 3 || es[0] != (matcher.OwnedEntry{Type: matcher.SHA256, Hash: d.SHA256Hex()}) ||
				es[1] != (matcher.OwnedEntry{Type: matcher.MD5, Hash: d.MD5Hex()}) || es[2] != (matcher.OwnedEntry{Type: matcher.SHA1, Hash: d.SHA1Hex()}) {
				t.Fatalf("exact digests: %v", es)
			}
			var got []uint64
			for _, e := range es[3:] {
				for w := range uint64(16) {
					if e.Hash == h(w).String() {
						got = append(got, w)
					}
				}
			}
			if !slices.Equal(got, tc.want) || len(es)-3 != len(tc.want) {
				t.Fatalf("pdq banked %v (%d entries), want %v", got, len(es)-3, tc.want)
			}
		})
	}
}
