package caddymodule

import (
	"fmt"
	"strings"
)

// replacer is the part of *caddy.Replacer that secrets need.
type replacer interface{ ReplaceAll(string, string) string }

// secret resolves a configured secret. One that is configured (usually as
// an {env.X} placeholder) but resolves empty stops the start with an error
// naming it: an unset variable must not quietly turn a lookup API's key or
// a bot's token off.
func secret(repl replacer, option, raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	v := repl.ReplaceAll(raw, "")
	if strings.TrimSpace(v) == "" {
		return "", fmt.Errorf("%s %s resolves to an empty value: set it (e.g. the environment variable) or remove the option", option, raw)
	}
	return v, nil
}
