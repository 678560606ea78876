package caddymodule

import (
	"sync"
)

// maxUnconfiguredBanks bounds the bank label values that come from remote
// answers (HMA's or a lookup service's bank names) rather than from this
// config: a remote that makes up names must not grow the series without
// bound.
const maxUnconfiguredBanks = 64

// otherBank is the bank label past that bound, and of names unfit for one.
const otherBank = "other"

// bankLabels holds the bank names the bank label may carry: every name
// configured here (local banks, HMA banks) and the first
// maxUnconfiguredBanks others seen. It outlives config reloads, as the
// series do.
var bankLabels = struct {
	sync.Mutex
	configured, seen map[string]bool
}{configured: map[string]bool{}, seen: map[string]bool{}}

// allowBankLabels adds configured bank names.
func allowBankLabels(names ...string) {
	bankLabels.Lock()
	defer bankLabels.Unlock()
	for _, n := range names {
		bankLabels.configured[n] = true
	}
}

// bankLabel is the bank label for a verdict's bank.
func bankLabel(name string) string {
	bankLabels.Lock()
	defer bankLabels.Unlock()
	switch {
	case bankLabels.configured[name], bankLabels.seen[name]:
		return name
	case !fitBankLabel(name) || len(bankLabels.seen) >= maxUnconfiguredBanks:
		return otherBank
	}
	bankLabels.seen[name] = true
	return name
}

// fitBankLabel accepts names shaped like bank names (HMA's and ours are
// [A-Z_][A-Z0-9_]*; other services may use lower case, digits, '-', '.',
// ':'), at most 64 bytes.
func fitBankLabel(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}
