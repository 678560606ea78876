package doctor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/matcher"
)

// checkBanks loads the local banks with matcher.NewLocal, as a start
// loads them: one line per configured bank with its entry counts and load
// time. Bad entries are skipped at a start too, so they are a warning
// naming the first; a bank that does not load stops the start, so it
// fails. Each bank is loaded on its own, to tell which one fails and what
// each costs; the set is first validated as a whole (names, duplicates,
// threshold) by the same NewLocal with every bank disabled, which loads
// nothing.
func checkBanks(_ context.Context, cfg Config) []Result {
	if len(cfg.Local.Banks) == 0 {
		if len(cfg.HMA) == 0 && len(cfg.Services) == 0 && cfg.Arachnid == nil {
			return []Result{{Name: "banks", Status: Warn, Detail: "no banks, HMA or lookup services configured: every upload is allowed"}}
		}
		return nil
	}
	lc := cfg.Local
	lc.Logger = nil // the checklist reports what the load logs
	lc.ReloadInterval = -1
	var out []Result
	set := lc
	set.Banks = nil
	for _, b := range lc.Banks {
		b.Disabled = true
		set.Banks = append(set.Banks, b)
	}
	if l, err := matcher.NewLocal(set); err != nil {
		out = append(out, Result{Name: "banks", Status: Fail, Detail: err.Error()})
	} else {
		l.Close()
	}
	for _, b := range lc.Banks {
		name := "bank " + b.Name
		if b.Mode == "" {
			b.Mode = cfg.Mode
		}
		if b.Disabled {
			out = append(out, Result{Name: name, Status: Warn, Detail: "disabled: not loaded, never consulted (" + b.Path + ")"})
			continue
		}
		if ncmecPending(cfg, b.Path) {
			out = append(out, Result{Name: name, Status: Warn, Detail: "not synced from NCMEC yet: " + b.Path + " is created at the first start"})
			continue
		}
		if _, err := os.Stat(b.Path); b.Name == cfg.LearnQuarantines && errors.Is(err, os.ErrNotExist) {
			out = append(out, Result{Name: name, Status: Warn, Detail: "does not exist yet: learn_quarantines creates it at the first start (" + b.Path + ")"})
			continue
		}
		if _, err := os.Stat(b.Path); slices.Contains(cfg.Decisions, b.Name) && errors.Is(err, os.ErrNotExist) {
			out = append(out, Result{Name: name, Status: Warn, Detail: "does not exist yet: moderators' decisions create it at the first start (" + b.Path + ")"})
			continue
		}
		one := lc
		one.Banks = []matcher.BankConfig{b}
		var l *matcher.Local
		var err error
		took := timed(func() { l, err = matcher.NewLocal(one) })
		if err != nil {
			out = append(out, Result{Name: name, Status: Fail, Detail: err.Error(), Took: took})
			continue
		}
		out = append(out, bankResult(l, name, took))
		l.Close()
	}
	return out
}

// bankResult describes the one bank l holds.
func bankResult(l *matcher.Local, name string, took time.Duration) Result {
	b := l.Status()[0]
	r := Result{Name: name, Took: took}
	switch {
	case b.Problems > 0:
		first := ""
		if ps := l.Problems(b.Name); len(ps) > 0 {
			first = ", the first: " + ps[0].String()
		}
		r.Status = Warn
		r.Detail = fmt.Sprintf("%s from %s; %d entr%s skipped%s", describeCounts(b.Counts), b.Path, b.Problems, pluralY(b.Problems), first)
	case b.Counts.Total() == 0:
		r.Status, r.Detail = Warn, "empty: matches nothing ("+b.Path+")"
	default:
		r.Detail = describeCounts(b.Counts) + " from " + b.Path
	}
	if b.Category != "" {
		r.Detail += ", category " + b.Category
	}
	if b.Mode == matcher.ModeReport {
		// Said every time: a list forgotten in report mode blocks nothing.
		r.Detail += "; REPORT ONLY: its matches pass and are posted as \"would have blocked\""
	}
	return r
}

// describeCounts is "3 entries (sha256 1, pdq 2)".
func describeCounts(c matcher.Counts) string {
	var parts []string
	for _, kv := range []struct {
		name string
		n    int
	}{{"md5", c.MD5}, {"sha1", c.SHA1}, {"sha256", c.SHA256}, {"pdq", c.PDQ}, {"video_md5", c.VideoMD5}} {
		if kv.n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", kv.name, kv.n))
		}
	}
	s := fmt.Sprintf("%d entr%s", c.Total(), pluralY(c.Total()))
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

func pluralY(n int) string {
	if n == 1 {
		return "y"
	}
	return "ies"
}
