package lookupapi

import (
	"context"
	"time"

	"github.com/mediaguard/mediaguard/matcher"

	"github.com/mediaguard/mediaguard/hashing/external"
)

// Health states.
const (
	HealthOK       = "ok"
	HealthDegraded = "degraded"
)

// HealthDoc is the health document NewHealth builds.
type HealthDoc struct {
	// Status is HealthDegraded when a bank file's latest change failed to
	// load (the previous version is still in use), a remote backend's
	// breaker is not closed or a remote lacks a configured bank; HealthOK
	// otherwise.
	Status string `json:"status"`
	// Banks describes each configured local bank.
	Banks []BankHealth `json:"banks"`
	// Entries sums the entries of the enabled banks.
	Entries matcher.Counts `json:"entries"`
	// Breakers maps each remote backend to its breaker state: "closed",
	// "half-open" or "open".
	Breakers map[string]string `json:"breakers,omitempty"`
	// MissingBanks maps each remote backend that lacks some of its
	// configured banks (HMA's banks A B) to their names: lookups in them
	// match nothing, and HMA itself never says so.
	MissingBanks map[string][]string `json:"missing_banks,omitempty"`
	// Decoders says which external decoder programs the hashing workers
	// can run: "ffmpeg" (video frames; without it videos are judged by
	// their exact hashes only) and "djxl" (JPEG XL).
	Decoders map[string]bool `json:"decoders"`
}

// BankHealth is one local bank in the health document. It leaves out the
// file path and load error text that matcher.BankStatus carries: without an
// API key the document is public, and those belong in the operator's log.
type BankHealth struct {
	// Name is the bank's configured name.
	Name string `json:"name"`
	// Enabled is false for banks configured as disabled.
	Enabled bool `json:"enabled"`
	// Counts are the entries of the version in use.
	Counts matcher.Counts `json:"counts"`
	// LoadedAt is when the version in use was loaded.
	LoadedAt time.Time `json:"loaded_at,omitzero"`
	// ReloadFailed says the file changed and the change could not be
	// loaded.
	ReloadFailed bool `json:"reload_failed,omitempty"`
	// Problems is how many entries the version in use rejected.
	Problems int `json:"problems"`
}

// NewHealth returns a Config.Health that reports local's banks and guard's
// breakers; either may be nil.
func NewHealth(local *matcher.Local, guard *matcher.Guard) func(context.Context) any {
	return func(context.Context) any {
		doc := HealthDoc{Status: HealthOK, Banks: []BankHealth{}, Decoders: map[string]bool{
			"ffmpeg": external.Available("ffmpeg"), "djxl": external.Available("djxl"),
		}}
		if local != nil {
			for _, s := range local.Status() {
				doc.Banks = append(doc.Banks, BankHealth{
					Name: s.Name, Enabled: s.Enabled, Counts: s.Counts, LoadedAt: s.LoadedAt,
					ReloadFailed: s.LastError != "", Problems: s.Problems,
				})
				if s.LastError != "" {
					doc.Status = HealthDegraded
				}
			}
			doc.Entries = local.Stats()
		}
		if guard != nil {
			doc.Breakers = guard.BreakerStates()
			for _, st := range doc.Breakers {
				if st != "closed" {
					doc.Status = HealthDegraded
				}
			}
			if m := guard.MissingBanks(); len(m) > 0 {
				doc.MissingBanks = m
				doc.Status = HealthDegraded
			}
		}
		return doc
	}
}
