package service

import (
	"fmt"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// OptionError is an option given a value outside its closed set. The
// adapter phrases it for its config format; Error is the JSON phrasing.
type OptionError struct {
	// Option is the option's name in the config, e.g. on_matcher_error.
	Option string
	// Want lists the values taken, e.g. "open or closed".
	Want string
	// Got is the value given.
	Got string
}

func (e *OptionError) Error() string {
	return fmt.Sprintf("%s must be %s, not %q", e.Option, e.Want, e.Got)
}

// The parsers below are the one reading of each option with a closed set
// of values, for the JSON config and the Caddyfile alike. An empty value
// is the option's default.

// ParseFailPolicy reads on_matcher_error: open (the default) or closed.
func ParseFailPolicy(s string) (matcher.FailPolicy, error) {
	if s == "" {
		return matcher.FailOpen, nil
	}
	p, err := matcher.ParseFailPolicy(s)
	if err != nil {
		return 0, &OptionError{"on_matcher_error", "open or closed", s}
	}
	return p, nil
}

// ParseUndecodable reads on_undecodable_image: block (the default) or
// allow.
func ParseUndecodable(s string) (string, error) {
	switch s {
	case "":
		return mediaproxy.UndecodableBlock, nil
	case mediaproxy.UndecodableBlock, mediaproxy.UndecodableAllow:
		return s, nil
	}
	return "", &OptionError{"on_undecodable_image", "block or allow", s}
}

// ParseHashing reads hashing: process (the default) or inline.
func ParseHashing(s string) (string, error) {
	switch s {
	case "":
		return mediaproxy.HashingProcess, nil
	case mediaproxy.HashingProcess, mediaproxy.HashingInline:
		return s, nil
	}
	return "", &OptionError{"hashing", "process or inline", s}
}

// ParsePDQSearch reads pdq_search: default (when empty: a config written
// before variants existed gets them, not pdq's zero value), deep or off.
func ParsePDQSearch(s string) (pdq.Search, error) {
	search, err := pdq.ParseSearch(s)
	if err != nil {
		return 0, &OptionError{"pdq_search", "default, deep or off", s}
	}
	return search, nil
}
