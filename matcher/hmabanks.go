package matcher

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"
)

// How often Watch checks the configured banks against HMA. A lookup naming a
// bank HMA does not have answers 200 {}, exactly like "no match" (HMA 1.1.7
// does; its GET /m/lookup only filters its matches by the banks named:
// src/OpenMediaMatch/blueprints/matching.py in
// https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner),
// so only this check can tell a misspelt or deleted bank from a clean
// upload. While a bank is missing or HMA cannot be asked the check is
// repeated soon, so a fix (or HMA coming up) is seen within a minute;
// otherwise every few minutes, to notice a bank deleted later.
const (
	hmaBankRecheckOK      = 5 * time.Minute
	hmaBankRecheckFailing = 30 * time.Second
)

// maxLoggedBanks bounds the HMA bank names put into one log line.
const maxLoggedBanks = 20

// HMABankStatus is what the last check of the configured banks against
// HMA's GET /c/banks found.
type HMABankStatus struct {
	// Configured are the banks lookups are restricted to; empty means all
	// of HMA's banks, and nothing is checked.
	Configured []string
	// Missing are configured banks HMA did not list at the last check that
	// answered: lookups in them match nothing.
	Missing []string
	// NotMatching are configured banks HMA has with matching turned off
	// (matching_enabled_ratio 0) at the last check that answered: lookups
	// leave them out, as silently as a missing bank.
	NotMatching []string
	// Checked is when a check last answered; zero until one has.
	Checked time.Time
	// Err is why the latest check failed ("" when it answered). Missing
	// then still holds what the last answer said.
	Err string
}

// hmaBanks holds the bank check's state; Configured is filled in by
// BankStatus from the HMA's own (immutable) list.
type hmaBanks struct {
	mu     sync.Mutex
	status HMABankStatus

	recheckOK, recheckFailing time.Duration
}

// BankStatus returns what the last check of the configured banks found.
func (h *HMA) BankStatus() HMABankStatus {
	h.bankState.mu.Lock()
	defer h.bankState.mu.Unlock()
	s := h.bankState.status
	s.Configured = slices.Clone(h.bankList)
	s.Missing = slices.Clone(s.Missing)
	s.NotMatching = slices.Clone(s.NotMatching)
	return s
}

// MissingBanks returns the configured banks HMA did not have at the last
// check that answered (nil when all were there, or none is configured).
func (h *HMA) MissingBanks() []string {
	h.bankState.mu.Lock()
	defer h.bankState.mu.Unlock()
	return slices.Clone(h.bankState.status.Missing)
}

// Watch checks the configured banks at once and then periodically until ctx
// ends. The Guard runs it for every remote that has it, from NewGuard to
// Close. It returns at once when no bank is configured.
func (h *HMA) Watch(ctx context.Context) {
	if len(h.bankList) == 0 {
		return
	}
	for {
		wait := h.bankState.recheckOK
		if s, err := h.CheckBanks(ctx); err != nil || len(s.Missing) > 0 {
			wait = h.bankState.recheckFailing
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// CheckBanks asks HMA for its banks (GET /c/banks), records which configured
// banks it lacks and logs a change: a missing bank as an error, since every
// lookup in it silently matches nothing. A failure to ask is logged once
// until a check answers again, and leaves the last answer's Missing as it
// was. HMA instances without the curator role have no /c/banks: that is a
// failure to check, reported as such, never "all present".
func (h *HMA) CheckBanks(ctx context.Context) (HMABankStatus, error) {
	b := &h.bankState
	if len(h.bankList) == 0 {
		return h.BankStatus(), nil
	}
	have, err := h.listBanks(ctx)
	if ctx.Err() != nil {
		// Shutting down (or the caller gave up): not HMA's failure.
		return h.BankStatus(), ctx.Err()
	}

	b.mu.Lock()
	prev := b.status
	if err != nil {
		b.status.Err = err.Error()
		b.mu.Unlock()
		if prev.Err == "" {
			h.log.Warn("cannot check the configured banks against HMA; lookups go on, a misspelt or deleted bank would match nothing",
				zap.String("backend", h.name), zap.Strings("banks", h.bankList), zap.Error(err))
		}
		return h.BankStatus(), err
	}
	var missing, off []string
	for _, name := range h.bankList {
		ratio, ok := have[name]
		switch {
		case !ok:
			missing = append(missing, name)
		case ratio == 0:
			off = append(off, name)
		}
	}
	b.status.Missing = missing
	b.status.Checked = time.Now()
	b.status.Err = ""
	prevOff := prev.NotMatching
	b.status.NotMatching = off
	first := prev.Checked.IsZero()
	b.mu.Unlock()

	switch {
	case len(missing) > 0 && (first || !slices.Equal(missing, prev.Missing)):
		h.log.Error("configured banks do not exist in HMA: lookups in them match nothing",
			zap.String("backend", h.name), zap.Strings("missing", missing), zap.Strings("hma_banks", someBanks(have)))
	case len(missing) == 0 && len(prev.Missing) > 0:
		h.log.Info("all configured banks now exist in HMA", zap.String("backend", h.name), zap.Strings("banks", h.bankList))
	case len(missing) == 0 && (first || prev.Err != ""):
		h.log.Info("configured banks exist in HMA", zap.String("backend", h.name), zap.Strings("banks", h.bankList))
	}
	if len(off) > 0 && !slices.Equal(off, prevOff) {
		// GET /m/lookup leaves such banks out (HMA 1.1.7 seen to,
		// and its matching blueprint filters on the ratio:
		// github.com/facebook/ThreatExchange, hasher-matcher-actioner
		// src/OpenMediaMatch/blueprints/matching.py): as silent as a
		// missing one.
		h.log.Warn("configured banks have matching turned off in HMA (matching_enabled_ratio 0): lookups in them match nothing",
			zap.String("backend", h.name), zap.Strings("banks", off))
	}
	return h.BankStatus(), nil
}

// listBanks performs GET /c/banks and returns each bank's
// matching_enabled_ratio by name. HMA answers a JSON list of
// {"matching_enabled_ratio":1.0,"name":"TEST_BANK"} (HMA 1.1.7 seen to;
// the curation blueprint, src/OpenMediaMatch/blueprints/curation.py in
// github.com/facebook/ThreatExchange's hasher-matcher-actioner).
func (h *HMA) listBanks(ctx context.Context) (map[string]float64, error) {
	status, body, err := h.get(ctx, h.base+"/c/banks")
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, h.statusError(status, body)
	}
	var list []struct {
		Name  string   `json:"name"`
		Ratio *float64 `json:"matching_enabled_ratio"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("%w: hma %s: /c/banks: want a list of banks: %v", ErrBadResponse, h.name, err)
	}
	have := make(map[string]float64, len(list))
	for _, b := range list {
		if b.Name == "" {
			return nil, fmt.Errorf("%w: hma %s: /c/banks: a bank without a name", ErrBadResponse, h.name)
		}
		ratio := 1.0 // older HMA may not say; the bank exists either way
		if b.Ratio != nil {
			ratio = *b.Ratio
		}
		have[b.Name] = ratio
	}
	return have, nil
}

// someBanks lists up to maxLoggedBanks of HMA's bank names, sorted, so a
// log line shows what a misspelt name was probably meant to be.
func someBanks(have map[string]float64) []string {
	names := make([]string, 0, len(have))
	for n := range have {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) > maxLoggedBanks {
		names = append(names[:maxLoggedBanks], fmt.Sprintf("… %d more", len(have)-maxLoggedBanks))
	}
	return names
}
