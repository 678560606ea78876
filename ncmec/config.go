// Package ncmec pulls NCMEC's hash-sharing API (v2) directly into a local
// bank file, incrementally: no HMA in between, and nothing dropped that a
// bank can hold. Image MD5 and SHA-1 are kept beside PDQ and video MD5
// (HMA's NCMEC importer keeps only PDQ, video MD5 and PhotoDNA:
// python-threatexchange's exchanges/impl/ncmec_api.py _get_conversion),
// and every entry is labelled with NCMEC's id and classification, so a
// match names the entry.
//
// The protocol is NCMEC's, as documented at
// https://report.cybertip.org/hashsharing/v2/documentation.pdf and spoken
// by python-threatexchange's client
// (https://github.com/facebook/ThreatExchange/blob/main/python-threatexchange/threatexchange/exchanges/clients/ncmec/hash_api.py):
// HTTP Basic auth, GET {base}/v2/status, GET
// {base}/v2/entries?from=..&to=.. and the <paging><next> links that
// continue a result. NCMEC does not return entries in time order, so the
// checkpoint (the end of the last window fetched whole) only advances once
// a whole [from, to] window has been read (hash_api.py get_entries:
// "DANGER! The NCMEC API does not return entries in time order!").
//
// The bank is written in mediaguard's text bank format, which
// matcher.LoadBank reads (see bankfile.go for why), atomically: a sync
// that fails, crashes or is cancelled part way never replaces the last
// good bank or moves the checkpoint.
//
// It must not import Caddy: the adapter (caddymodule) runs a Runner per
// bank path and shares it across config reloads.
package ncmec

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Environments maps the environment names this package takes to NCMEC's
// base URLs (python-threatexchange hash_api.py NCMECEnvironment: Industry
// and NGO, and the test environment of industry members).
var Environments = map[string]string{
	"industry": "https://report.cybertip.org/hashsharing",
	"npo":      "https://hashsharing.ncmec.org/npo",
	"test":     "https://exttest.cybertip.org/hashsharing",
}

// Defaults.
const (
	// DefaultEvery is how often a Runner syncs.
	DefaultEvery = 15 * time.Minute
	// DefaultTimeout bounds one HTTP request (python-threatexchange's
	// client uses 60 s).
	DefaultTimeout = 60 * time.Second
	// DefaultMaxWindowEntries is how many entries one window may hold
	// before it is split: python-threatexchange's NCMEC exchange fetches
	// at most 400000 at once (ncmec_api.py MAX_FETCH_SIZE). It bounds the
	// sync's memory, which holds one window's changes.
	DefaultMaxWindowEntries = 400000
	// DefaultAttempts is how often one request is tried before the sync
	// gives up (python-threatexchange retries a GET 4 times after the
	// first).
	DefaultAttempts = 5
)

// Config configures a sync of one bank.
type Config struct {
	// Name is the bank's name, as the matcher knows it.
	Name string
	// Path is the bank file. The checkpoint is kept beside it in
	// Path+".sync", and Path+".lock" serialises syncs.
	Path string
	// Environment is "industry", "npo" or "test" (see Environments);
	// BaseURL overrides it.
	Environment string
	// BaseURL is the API's base URL, without /v2 (e.g.
	// https://report.cybertip.org/hashsharing).
	BaseURL string
	// Username and Password are the HTTP Basic credentials NCMEC issued.
	// The password never appears in an error or a log line.
	Username, Password string
	// Every is how often a Runner syncs (default 15 min).
	Every time.Duration
	// Start is where the first sync begins (default: the Unix epoch, all
	// of NCMEC's entries).
	Start time.Time
	// Timeout bounds each HTTP request (default 60 s).
	Timeout time.Duration
	// MaxWindowEntries bounds one window's entries (default 400000): a
	// window whose first page estimates more is shrunk and fetched again.
	MaxWindowEntries int
	// Attempts is how often a request is tried on a 5xx, a 429, a timeout
	// or a connection error (default 5); RetryWait is the first wait
	// between attempts, doubled each time up to 30 s (default 1 s).
	Attempts  int
	RetryWait time.Duration
	// HTTPClient makes the requests (default: one with Timeout). Its
	// redirects are restricted to the API's host.
	HTTPClient *http.Client
	// OnWritten is called after each new bank file is in place (the
	// adapter reloads the matcher's banks there, so a new entry matches at
	// once rather than at the next poll).
	OnWritten func()
	// Logger receives progress and failures; nil logs nothing.
	Logger *zap.Logger
	// Now is the clock (tests); nil is time.Now.
	Now func() time.Time

	// onCommit is told of each commit, before OnWritten (a Runner's
	// stats follow the bank file, not the end of the sync).
	onCommit func(Result)
}

// base resolves the base URL.
func (c *Config) base() (*url.URL, error) {
	raw := c.BaseURL
	if raw == "" {
		if c.Environment == "" {
			return nil, errors.New("ncmec: an environment (industry, npo or test) or a base_url is required")
		}
		var ok bool
		if raw, ok = Environments[c.Environment]; !ok {
			return nil, fmt.Errorf("ncmec: environment must be industry, npo or test, not %q", c.Environment)
		}
	}
	u, err := url.Parse(strings.TrimRight(raw, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("ncmec: base URL %q must be an http(s) URL without credentials, query or fragment", raw)
	}
	return u, nil
}

// ResolvedBase is the base URL the config syncs from, "" when it has
// none.
func (c *Config) ResolvedBase() string {
	u, err := c.base()
	if err != nil {
		return ""
	}
	return u.String()
}

// Validate checks the config without contacting NCMEC.
func (c *Config) Validate() error {
	if c.Name == "" || c.Path == "" {
		return errors.New("ncmec: a bank name and path are required")
	}
	if _, err := c.base(); err != nil {
		return err
	}
	if c.Username == "" || c.Password == "" {
		// python-threatexchange refuses the same (is_valid_user_pass).
		return errors.New("ncmec: a username and a password are required")
	}
	if strings.Contains(c.Username, ":") {
		// RFC 7617: a user-id containing a colon cannot be sent.
		return fmt.Errorf("ncmec: username %q contains a colon, which HTTP Basic auth cannot carry", c.Username)
	}
	if c.Every < 0 || c.Timeout < 0 || c.MaxWindowEntries < 0 || c.Attempts < 0 || c.RetryWait < 0 {
		return errors.New("ncmec: durations and counts must not be negative")
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.Every == 0 {
		c.Every = DefaultEvery
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxWindowEntries == 0 {
		c.MaxWindowEntries = DefaultMaxWindowEntries
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAttempts
	}
	if c.RetryWait == 0 {
		c.RetryWait = time.Second
	}
	if c.Logger == nil {
		c.Logger = zap.NewNop()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Start.IsZero() {
		c.Start = time.Unix(0, 0) // hash_api.py's default start_timestamp
	}
	return c
}

// CheckpointPath is where the checkpoint of the bank at path is kept.
func CheckpointPath(path string) string { return path + ".sync" }

// lockPath is the file whose lock serialises the syncs of a bank.
func lockPath(path string) string { return path + ".lock" }
