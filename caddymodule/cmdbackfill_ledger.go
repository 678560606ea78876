package caddymodule

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/mediaguard/mediaguard/ledger"
)

// openLedgerSpec opens the ledger store a spec names.
func openLedgerSpec(ctx context.Context, spec string) (ledger.Store, error) {
	return nil, errors.New("this build has no ledger stores yet")
}

// ledgerSpecOf is apps.mediaguard.ledger of an adapted configuration, ""
// when it names none.
func ledgerSpecOf(raw []byte) string {
	var parsed struct {
		Apps struct {
			Mediaguard struct {
				Ledger string `json:"ledger"`
			} `json:"mediaguard"`
		} `json:"apps"`
	}
	json.Unmarshal(raw, &parsed)
	return parsed.Apps.Mediaguard.Ledger
}
