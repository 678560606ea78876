package matcher

import (
	"context"
	"slices"
)

// Watcher is implemented by remotes that check something in the background
// of their own (HMA checks its configured banks exist). The Guard runs Watch
// from NewGuard until Close, so a config reload stops the old checks.
type Watcher interface {
	Watch(ctx context.Context)
}

// BankChecker is implemented by remotes that know which of their configured
// banks the backend does not have (HMA answers "no match" for those, never
// an error).
type BankChecker interface {
	MissingBanks() []string
}

// startWatchers runs each remote's Watch on the Guard's background context.
func (g *Guard) startWatchers() {
	for _, r := range g.remotes {
		w, ok := r.m.(Watcher)
		if !ok {
			continue
		}
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			w.Watch(g.bg)
		}()
	}
}

// MissingBanks returns, for each remote that checks its banks and found
// some missing, the configured banks its backend does not have: lookups in
// them match nothing. Empty when every configured bank exists (or has not
// been checked yet).
func (g *Guard) MissingBanks() map[string][]string {
	out := make(map[string][]string)
	for _, r := range g.remotes {
		if bc, ok := r.m.(BankChecker); ok {
			if m := bc.MissingBanks(); len(m) > 0 {
				out[r.name] = slices.Clone(m)
			}
		}
	}
	return out
}
