package matcher

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// The review band's edges: the threshold still matches, one past it is a
// review, one past review_threshold is nothing; a low-quality hash within
// the threshold is a review; an enforcing match always wins.
func TestLocalReviewBand(t *testing.T) {
	dir := t.TempDir()
	base := mustPDQ(t, tPDQ)
	other := flipRange(base, 128, 100) // far from base and its flips
	bank := filepath.Join(dir, "bank.txt")
	writeFile(t, bank, strings.Join([]string{
		"md5 " + tMD5 + " listed",
		"pdq " + base.String() + " near",
		"pdq " + other.String() + " other",
	}, "\n"))
	trial := filepath.Join(dir, "trial.txt")
	writeFile(t, trial, "pdq "+flipRange(base, 200, 40).String()+" trial\n")
	l := newTestLocal(t, LocalConfig{
		Banks:           []BankConfig{{Name: "LISTED", Path: bank}, {Name: "TRIAL", Path: trial, Mode: ModeReport}},
		PDQThreshold:    31,
		ReviewThreshold: 45,
	})
	pq := func(d, quality int) Query { return Query{Has: HasPDQ, PDQ: flip(base, d), PDQQuality: quality} }
	tests := []struct {
		name                  string
		q                     Query
		match, review, wouldB bool
		distance, quality     int
		form                  string
	}{
		{"at the threshold", pq(31, 100), true, false, false, 31, 0, ""},
		{"one past the threshold", pq(32, 100), false, true, false, 32, 100, ""},
		{"at review_threshold", pq(45, 100), false, true, false, 45, 100, ""},
		{"one past review_threshold", pq(46, 100), false, false, false, 0, 0, ""},
		{"low quality within the threshold", pq(10, 30), false, true, false, 10, 30, ""},
		{"low quality at the threshold", pq(31, 49), false, true, false, 31, 49, ""},
		{"low quality in the band", pq(40, 30), false, false, false, 0, 0, ""},
		{"form in the band", Query{Forms: formsOf(flip(base, 35))}, false, true, false, 35, 100, "frame 2"},
		{"exact match wins over the band", Query{Has: HasMD5 | HasPDQ, MD5: digest16(t, tMD5), PDQ: flip(base, 40), PDQQuality: 100}, true, false, false, 0, 0, ""},
		{"pdq match of one entry wins over the band of another", Query{Has: HasPDQ, PDQ: flipRange(other, 0, 20), PDQQuality: 100,
			Forms: formsOf(flip(base, 33))}, true, false, false, 20, 0, ""},
		{"report-only match wins over the band", Query{Has: HasPDQ, PDQ: flipRange(base, 200, 38), PDQQuality: 100}, false, false, true, 2, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := match(t, l, tc.q)
			if v.Match != tc.match || v.Review != tc.review || v.WouldBlock != tc.wouldB {
				t.Fatalf("match %v review %v would_block %v, want %v %v %v (%s)", v.Match, v.Review, v.WouldBlock, tc.match, tc.review, tc.wouldB, v.Reason)
			}
			if !tc.match && !tc.review && !tc.wouldB {
				if len(v.Evidence) != 0 {
					t.Errorf("evidence %+v for nothing", v.Evidence)
				}
				return
			}
			if v.Distance != tc.distance || v.Quality != tc.quality || v.Form != tc.form {
				t.Errorf("distance %d quality %d form %q, want %d %d %q", v.Distance, v.Quality, v.Form, tc.distance, tc.quality, tc.form)
			}
			if tc.review {
				if !strings.HasPrefix(v.Reason, "review: ") || v.Bank != "LISTED" || v.Evidence[0].Label != "near" {
					t.Errorf("review verdict %+v", v)
				}
				for _, e := range v.Evidence {
					if !e.Review || e.ReportOnly {
						t.Errorf("review evidence %+v not marked", e)
					}
				}
			}
			for _, e := range v.Evidence {
				if e.Review && (tc.match || tc.wouldB) {
					t.Errorf("review evidence %+v beside a match", e)
				}
			}
		})
	}
}

// Without review_threshold there is no band; the threshold must stay
// below it.
func TestLocalReviewConfig(t *testing.T) {
	dir := t.TempDir()
	bank := filepath.Join(dir, "bank.txt")
	base := mustPDQ(t, tPDQ)
	writeFile(t, bank, "pdq "+base.String()+"\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "B", Path: bank}}})
	if v := match(t, l, Query{Has: HasPDQ, PDQ: flip(base, 35), PDQQuality: 100}); v.Review || len(v.Evidence) > 0 {
		t.Errorf("no band configured, yet %+v", v)
	}
	if v := match(t, l, Query{Has: HasPDQ, PDQ: base, PDQQuality: 10}); v.Review {
		t.Errorf("no band configured, yet low quality gives %+v", v)
	}
	for _, rt := range []int{-1, 20, 31, 64} {
		t.Run(fmt.Sprint(rt), func(t *testing.T) {
			if _, err := NewLocal(LocalConfig{Banks: []BankConfig{{Name: "B", Path: bank}}, PDQThreshold: 31, ReviewThreshold: rt}); err == nil {
				t.Errorf("review threshold %d accepted", rt)
			}
		})
	}
	l63 := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "B", Path: bank}}, ReviewThreshold: 63})
	if l63.ReviewThreshold() != 63 {
		t.Errorf("ReviewThreshold() = %d", l63.ReviewThreshold())
	}
}

// A remote's match wins over local review evidence in the Guard.
func TestGuardRemoteMatchWinsOverReview(t *testing.T) {
	dir := t.TempDir()
	bank := filepath.Join(dir, "bank.txt")
	base := mustPDQ(t, tPDQ)
	writeFile(t, bank, "pdq "+base.String()+"\n")
	l := newTestLocal(t, LocalConfig{Banks: []BankConfig{{Name: "B", Path: bank}}, ReviewThreshold: 45})
	q := Query{Has: HasPDQ, PDQ: flip(base, 40), PDQQuality: 100}
	for _, remote := range []struct {
		v                     Verdict
		match, review, wouldB bool
	}{
		{Verdict{}, false, true, false},
		{remoteMatch("hma:x"), true, false, false},
	} {
		g, err := NewGuard(GuardConfig{Local: l, Remotes: []Remote{{Name: "hma:x", Matcher: newFakeBackend(answer(remote.v, nil))}}})
		if err != nil {
			t.Fatal(err)
		}
		v, err := g.Match(context.Background(), q)
		g.Close()
		if err != nil {
			t.Fatal(err)
		}
		if v.Match != remote.match || v.Review != remote.review || v.WouldBlock != remote.wouldB {
			t.Errorf("remote %v: match %v review %v would_block %v", remote.v.Match, v.Match, v.Review, v.WouldBlock)
		}
	}
}
