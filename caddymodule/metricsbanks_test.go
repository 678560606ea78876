package caddymodule

import (
	"fmt"
	"strings"
	"testing"
)

// Bank labels: configured names always, others while they look like bank
// names and until maxUnconfiguredBanks of them were seen; the rest are
// "other", so a remote cannot grow the series without bound.
func TestBankLabelBounded(t *testing.T) {
	allowBankLabels("CONFIGURED_BANK")
	for _, tc := range []struct{ in, want string }{
		{"CONFIGURED_BANK", "CONFIGURED_BANK"},
		{"", otherBank},
		{"has space", otherBank},
		{"quote\"", otherBank},
		{strings.Repeat("A", 65), otherBank},
		{"hma-bank.v2:x", "hma-bank.v2:x"},
	} {
		if got := bankLabel(tc.in); got != tc.want {
			t.Errorf("bankLabel(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
	for i := range 2 * maxUnconfiguredBanks {
		bankLabel(fmt.Sprintf("REMOTE_%d", i))
	}
	if got := bankLabel("ONE_TOO_MANY"); got != otherBank {
		t.Errorf("past the bound: %q", got)
	}
	if got := bankLabel("hma-bank.v2:x"); got != "hma-bank.v2:x" {
		t.Errorf("a name seen before the bound lost its label: %q", got)
	}
	allowBankLabels("CONFIGURED_LATER")
	if got := bankLabel("CONFIGURED_LATER"); got != "CONFIGURED_LATER" {
		t.Errorf("a configured name past the bound: %q", got)
	}
}
