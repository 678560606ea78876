package matcher

import (
	"context"
	"slices"
)

// BankLister is implemented by remotes restricted to named banks (HMA's
// `banks A B`): what they may answer with is known without asking them.
type BankLister interface {
	ConfiguredBanks() []string
}

// ConfiguredBanks returns the banks lookups are restricted to (nil for
// all of HMA's banks).
func (h *HMA) ConfiguredBanks() []string { return slices.Clone(h.bankList) }

// ConfiguredBanks returns the banks Arachnid Shield's classifications map
// to: it answers with no others, so HMA clients can enable them (the
// HMA-compatible surface's /c/banks lists them).
func (a *Arachnid) ConfiguredBanks() []string {
	return []string{ArachnidBankCSAM, ArachnidBankHarmful, ArachnidBankOther}
}

// RemoteBanks returns, for each remote restricted to named banks, those
// names, in the order configured. A remote that may answer with any bank
// (HMA without `banks`, a lookup service) is absent.
func (g *Guard) RemoteBanks() map[string][]string {
	out := make(map[string][]string)
	for _, r := range g.remotes {
		if bl, ok := r.m.(BankLister); ok {
			if b := bl.ConfiguredBanks(); len(b) > 0 {
				out[r.name] = b
			}
		}
	}
	return out
}

// MatchRemotes is Match without the local banks: only the remotes,
// through the same cache, shared calls, breakers and fail policy. Match
// stops at a local match, which is all the proxy needs; an answer that
// names every bank holding the media (the HMA-compatible surface's
// /m/lookup, whose clients pick banks of their own) asks the remotes too.
// Without remotes it answers no match.
func (g *Guard) MatchRemotes(ctx context.Context, q Query) (Verdict, error) {
	if len(g.remotes) == 0 {
		return Verdict{}, nil
	}
	if err := ctx.Err(); err != nil {
		return Verdict{}, err
	}
	rr, err := g.remote(ctx, &q)
	if err != nil {
		return Verdict{}, err
	}
	return g.decide(Verdict{}, rr)
}
