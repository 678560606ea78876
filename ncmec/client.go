package ncmec

// The HTTP side: Basic auth, retries, the status call and the entries
// pages, and the checks on a page's <paging><next> link.

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/matcher/ncmecxml"
)

// timeFormat is how from and to are written (hash_api.py
// _DATE_FORMAT_STR, "%Y-%m-%dT%H:%M:%SZ"), always in UTC.
const timeFormat = "2006-01-02T15:04:05Z"

// maxPageBytes bounds one page's body: 1000 entries are about half a
// megabyte, so a larger answer is not a page.
const maxPageBytes = 64 << 20

// AuthError is NCMEC refusing the credentials (401) or the access (403).
// It names the username, never the password.
type AuthError struct {
	// Username is the configured user.
	Username string
	// Status is the HTTP status.
	Status int
}

func (e *AuthError) Error() string {
	if e.Status == http.StatusForbidden {
		return fmt.Sprintf("ncmec: NCMEC refused user %q access (HTTP 403): the account is not allowed this environment or endpoint", e.Username)
	}
	return fmt.Sprintf("ncmec: NCMEC refused the credentials of user %q (HTTP %d): check the username and password", e.Username, e.Status)
}

// LinkError is a <paging><next> link the sync refuses to follow.
type LinkError struct {
	// Link is the link as given.
	Link string
	// Why says what is wrong with it.
	Why string
}

func (e *LinkError) Error() string {
	return fmt.Sprintf("ncmec: refusing the paging link %q: %s", e.Link, e.Why)
}

// client talks to one NCMEC base URL.
type client struct {
	base     *url.URL
	user     string
	pass     string
	hc       *http.Client
	attempts int
	wait     time.Duration
}

func newClient(cfg *Config) (*client, error) {
	base, err := cfg.base()
	if err != nil {
		return nil, err
	}
	hc := &http.Client{Timeout: cfg.Timeout}
	if cfg.HTTPClient != nil {
		c := *cfg.HTTPClient
		hc = &c
	}
	// Credentials go to the API's host only: a redirect elsewhere is
	// refused, not followed without them.
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("too many redirects")
		}
		if req.URL.Scheme != base.Scheme || req.URL.Host != base.Host {
			return &redirectError{fmt.Sprintf("redirect to %s://%s refused: credentials are only sent to %s", req.URL.Scheme, req.URL.Host, base.Host)}
		}
		return nil
	}
	return &client{base: base, user: cfg.Username, pass: cfg.Password, hc: hc, attempts: cfg.Attempts, wait: cfg.RetryWait}, nil
}

// redirectError is a redirect the client refused to follow.
type redirectError struct{ msg string }

func (e *redirectError) Error() string { return e.msg }

// retryable is an error worth another attempt: the service or the
// network failed, not the request.
type retryable struct{ err error }

func (r retryable) Error() string { return r.err.Error() }
func (r retryable) Unwrap() error { return r.err }

// do GETs u and hands a 200's body to read, retrying what a later attempt
// may fix (python-threatexchange retries 429, 500, 502, 503 and 504 with
// backoff; timeouts, connection errors and bodies cut short too).
func (c *client) do(ctx context.Context, u *url.URL, read func(io.Reader) error) error {
	wait := c.wait
	var err error
	for attempt := 1; ; attempt++ {
		err = c.once(ctx, u, read)
		var r retryable
		if err == nil || !errors.As(err, &r) || ctx.Err() != nil {
			break
		}
		if attempt >= c.attempts {
			err = fmt.Errorf("%w (gave up after %d attempts)", r.err, attempt)
			break
		}
		// Full jitter, so that mediaguards restarted together do not
		// retry together.
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
		wait = min(2*wait, 30*time.Second)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

func (c *client) once(ctx context.Context, u *url.URL, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.user, c.pass)
	req.Header.Set("Accept", "application/xml")
	resp, err := c.hc.Do(req)
	if err != nil {
		var re *redirectError
		if errors.As(err, &re) {
			return fmt.Errorf("ncmec: GET %s: %w", redact(u), re)
		}
		// Everything else the client returns is the network's or the
		// server's doing: refused, reset, timed out, cut short.
		return retryable{fmt.Errorf("ncmec: GET %s: %w", redact(u), err)}
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return &AuthError{Username: c.user, Status: resp.StatusCode}
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return retryable{fmt.Errorf("ncmec: GET %s: HTTP %d", redact(u), resp.StatusCode)}
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("ncmec: GET %s: HTTP %d", redact(u), resp.StatusCode)
	}
	body := &limited{r: resp.Body, n: maxPageBytes}
	if err := read(body); err != nil {
		if body.over {
			return fmt.Errorf("ncmec: GET %s: answer larger than %d bytes", redact(u), maxPageBytes)
		}
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) {
			return retryable{fmt.Errorf("ncmec: GET %s: reading the answer: %w", redact(u), err)}
		}
		return fmt.Errorf("ncmec: GET %s: %w", redact(u), err)
	}
	return nil
}

// redact is u for an error message: path and the paging parameters, which
// say which request failed; the URL never carries credentials (they go in
// the Authorization header), but a base URL given with some is refused
// earlier anyway.
func redact(u *url.URL) string {
	v := *u
	v.User = nil
	return v.String()
}

// limited is io.LimitReader that says when it cut.
type limited struct {
	r    io.Reader
	n    int64
	over bool
}

func (l *limited) Read(p []byte) (int, error) {
	if l.n <= 0 {
		l.over = true
		return 0, errors.New("answer too large")
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

// Status is who NCMEC says the credentials belong to.
type Status struct {
	// Username is the account's user name.
	Username string
	// MemberID and MemberName are the member (ESP) the account acts for.
	MemberID   string
	MemberName string
}

// status calls GET {base}/v2/status (hash_api.py status(): <status> with
// <member id="..">Name</member>).
func (c *client) status(ctx context.Context) (Status, error) {
	u := c.endpoint("status")
	var st Status
	err := c.do(ctx, u, func(r io.Reader) error {
		var doc struct {
			XMLName  xml.Name `xml:"status"`
			Username string   `xml:"username"`
			Member   struct {
				ID   string `xml:"id,attr"`
				Name string `xml:",chardata"`
			} `xml:"member"`
		}
		if err := xml.NewDecoder(io.LimitReader(r, 1<<20)).Decode(&doc); err != nil {
			return fmt.Errorf("not an NCMEC status document: %w", err)
		}
		st = Status{Username: strings.TrimSpace(doc.Username), MemberID: strings.TrimSpace(doc.Member.ID), MemberName: strings.TrimSpace(doc.Member.Name)}
		return nil
	})
	return st, err
}

func (c *client) endpoint(name string) *url.URL {
	u := *c.base
	u.Path = c.base.Path + "/v2/" + name
	u.RawPath = ""
	return &u
}

// entriesURL is the first page of the window [from, to].
func (c *client) entriesURL(from, to time.Time) *url.URL {
	u := c.endpoint("entries")
	q := url.Values{}
	q.Set("from", from.UTC().Format(timeFormat))
	q.Set("to", to.UTC().Format(timeFormat))
	u.RawQuery = q.Encode()
	return u
}

// page reads one page of entries, calling fn for each.
func (c *client) page(ctx context.Context, u *url.URL, fn func(*ncmecxml.Entry) error) (ncmecxml.Document, error) {
	var doc ncmecxml.Document
	err := c.do(ctx, u, func(r io.Reader) error {
		var err error
		doc, err = ncmecxml.Read(r, fn)
		return err
	})
	return doc, err
}

// next resolves a page's <paging><next> link. NCMEC gives it as a path
// relative to the base URL ("/v2/entries?from=..&to=..&start=..&size=..
// &max=.."; hash_api.py fetches base + next). A link to any other host,
// scheme or endpoint is refused: the credentials go with every request.
// The link is only valid with the window's own from and to, which it
// must carry unchanged.
func (c *client) next(link string, from, to time.Time) (*url.URL, error) {
	ref, err := url.Parse(strings.TrimSpace(link))
	if err != nil {
		return nil, &LinkError{link, "not a URL"}
	}
	want := c.base.Path + "/v2/entries"
	var u url.URL
	switch {
	case ref.Scheme != "" || ref.Host != "" || ref.User != nil || ref.Opaque != "":
		if ref.Scheme != c.base.Scheme || ref.Host != c.base.Host || ref.User != nil || ref.Opaque != "" {
			return nil, &LinkError{link, "it leaves " + c.base.Scheme + "://" + c.base.Host + ", and the credentials are only sent there"}
		}
		u = *ref
	case strings.HasPrefix(ref.Path, "/"):
		u = *c.base
		u.Path = c.base.Path + ref.Path
		if ref.Path == want {
			u.Path = ref.Path // already absolute on the host
		}
		u.RawPath, u.RawQuery, u.Fragment = "", ref.RawQuery, ""
	default:
		return nil, &LinkError{link, "not a path under the base URL"}
	}
	if u.Path != want {
		return nil, &LinkError{link, "it is not " + want}
	}
	q := u.Query()
	for _, p := range []struct {
		name string
		t    time.Time
	}{{"from", from}, {"to", to}} {
		v := q.Get(p.name)
		if v == "" {
			q.Set(p.name, p.t.UTC().Format(timeFormat))
			continue
		}
		got, err := time.Parse(time.RFC3339Nano, v)
		if err != nil || !got.Equal(p.t) {
			return nil, &LinkError{link, fmt.Sprintf("its %s %q is not the window's %s", p.name, v, p.t.UTC().Format(timeFormat))}
		}
	}
	u.RawQuery = q.Encode()
	return &u, nil
}

// estimate is how many entries a window holds, from its first page: the
// next link's max minus its start plus the page's own entries
// (hash_api.py GetEntriesResponse.entries_in_range).
func estimate(doc ncmecxml.Document, next *url.URL) int {
	if next == nil {
		return doc.Entries
	}
	q := next.Query()
	start, err1 := strconv.Atoi(q.Get("start"))
	mx, err2 := strconv.Atoi(q.Get("max"))
	if err1 != nil || err2 != nil || mx < start {
		return doc.Entries + 1
	}
	return mx - start + doc.Entries
}
