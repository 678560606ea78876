package doctor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/matcher"
)

// prober is what the remote backends' clients offer the Guard's recovery
// probes: one cheap lookup that proves lookups work.
type prober interface {
	Probe(ctx context.Context) error
}

// checkHMA asks an HMA instance what the Guard asks it while its breaker
// is open (HMA.Probe: /readyz, then one lookup, through the token-checking
// proxy if any), timing it against the backend's own timeout; then, when
// lookups are restricted to banks, whether HMA has them (HMA.CheckBanks,
// GET /c/banks), since a lookup in a bank HMA lacks matches nothing
// without any error.
func checkHMA(ctx context.Context, h matcher.HMAConfig) []Result {
	name := "hma " + hostOf(h.URL)
	h.Logger = nil // findings go to the checklist
	c, err := matcher.NewHMA(h)
	if err != nil {
		return []Result{{Name: name, Status: Fail, Detail: err.Error()}}
	}
	r := probeResult(ctx, name, c, h.Timeout)
	if r.Status != Fail && len(h.Banks) == 0 {
		r.Detail += "; lookups in all its banks"
	}
	if r.Status == Fail || len(h.Banks) == 0 {
		return []Result{r}
	}
	b := Result{Name: name + " banks"}
	var st matcher.HMABankStatus
	b.Took = timed(func() { st, err = c.CheckBanks(ctx) })
	present := without(h.Banks, st.Missing)
	switch {
	case err != nil:
		b.Status = Warn
		b.Detail = fmt.Sprintf("cannot list HMA's banks (%v; an HMA without the curator role has no /c/banks): a misspelt or deleted bank would match nothing, unnoticed", err)
	case len(st.Missing) > 0:
		b.Status = Fail
		b.Detail = fmt.Sprintf("missing in HMA: %s (lookups in them match nothing)", strings.Join(st.Missing, ", "))
		if len(present) > 0 {
			b.Detail += "; present: " + strings.Join(present, ", ")
		}
	case len(st.NotMatching) > 0:
		b.Status = Warn
		b.Detail = fmt.Sprintf("matching is turned off in HMA for %s (matching_enabled_ratio 0): lookups in them match nothing", strings.Join(st.NotMatching, ", "))
	default:
		b.Detail = "present: " + strings.Join(present, ", ")
	}
	return []Result{r, b}
}

// checkService asks a JSON lookup service what the Guard's recovery probe
// asks (one lookup of a digest no media has), timed.
func checkService(ctx context.Context, s matcher.ServiceConfig) []Result {
	name := "service " + s.Name
	if s.Name == "" {
		name = "service " + hostOf(s.URL)
	}
	c, err := matcher.NewService(s)
	if err != nil {
		return []Result{{Name: name, Status: Fail, Detail: err.Error()}}
	}
	return []Result{probeResult(ctx, name, c, s.Timeout)}
}

// probeResult runs one probe and judges its latency against the backend's
// timeout: an answer taking more than half of it is a lookup that times
// out under load.
func probeResult(ctx context.Context, name string, p prober, timeout time.Duration) Result {
	if timeout <= 0 {
		timeout = matcher.DefaultRemoteTimeout
	}
	var err error
	r := Result{Name: name}
	r.Took = timed(func() { err = p.Probe(ctx) })
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, "does not answer lookups: "+err.Error()
	case r.Took > timeout/2:
		r.Status = Warn
		r.Detail = fmt.Sprintf("answers lookups, slowly: %s of its %s timeout", r.Took.Round(time.Millisecond), timeout)
	default:
		r.Detail = fmt.Sprintf("answers lookups (timeout %s)", timeout)
	}
	return r
}

// without is list minus the names in drop, in list's order.
func without(list, drop []string) []string {
	var out []string
	for _, s := range list {
		keep := true
		for _, d := range drop {
			keep = keep && s != d
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

// checkArachnid asks Arachnid Shield what the Guard's recovery probe asks
// (Arachnid.Probe: one lookup of the all-zero PDQ hash, which no image
// has), timed: it proves the credentials are accepted and the answer is
// the protocol's. Nothing but that hash is sent.
func checkArachnid(ctx context.Context, a matcher.ArachnidConfig) []Result {
	c, err := matcher.NewArachnid(a)
	name := "arachnid"
	if err != nil {
		return []Result{{Name: name, Status: Fail, Detail: err.Error()}}
	}
	return []Result{probeResult(ctx, name+" "+c.Name(), c, a.Timeout)}
}
