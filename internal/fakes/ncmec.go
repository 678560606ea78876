package fakes

import (
	"bufio"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// NCMEC plays NCMEC's hash-sharing API v2 for the direct importer
// (package ncmec). Each behaviour follows NCMEC's documentation
// (https://report.cybertip.org/hashsharing/v2/documentation.pdf) as
// python-threatexchange's client speaks it
// (https://github.com/facebook/ThreatExchange/blob/main/python-threatexchange/threatexchange/exchanges/clients/ncmec/hash_api.py,
// "hash_api.py" below, and its test data clients/ncmec/tests/data.py):
//
//   - Every call needs HTTP Basic auth (hash_api.py _get_session:
//     session.auth = (username, password)); without the right credentials
//     the answer is 401.
//   - The API lives under a base URL with a path (hash_api.py
//     NCMECEnvironment, e.g. https://report.cybertip.org/hashsharing):
//     the fake serves under BasePath, "/hashsharing".
//   - GET {base}/v2/status answers <status> with <username> and
//     <member id="N">Name</member> (data.py STATUS_XML).
//   - GET {base}/v2/entries?from=..&to=.. answers a <queryResult> in the
//     namespace https://hashsharing.ncmec.org/hashsharing/v2 with
//     <images count maxTimestamp> holding <image> and <deletedImage>, and
//     <videos> holding <video> and <deletedVideo>; each entry has
//     <member id>, <timestamp>, <id>, <classification> (not on
//     tombstones) and <fingerprints> (md5, sha1, pdq, and pdna the
//     importer skips) (data.py ENTRIES_XML). from and to are written
//     "%Y-%m-%dT%H:%M:%SZ" (hash_api.py _DATE_FORMAT_STR); an entry is in
//     the window when its timestamp is within [from, to].
//   - A result longer than a page (1000 entries: hash_api.py
//     ENTRIES_PER_FETCH) ends with <paging><next>: a path relative to the
//     base, /v2/entries?from=..&to=..&start=..&size=..&max=.., with
//     from/to in the millisecond form and the ampersands escaped (data.py
//     NEXT_UNESCAPED and ENTRIES_XML). max is the window's total, which is
//     how hash_api.py's estimate (entries_in_range: max - start + the
//     page's entries) reads it. The last page has no <paging>.
//   - A paging link is valid 12 hours, and only with the from and to it
//     was issued for: anything else is refused with 400.
//   - Entries are not returned in time order (hash_api.py get_entries:
//     "DANGER! The NCMEC API does not return entries in time order!"): the
//     fake serves a window's entries in a scrambled order, a tombstone
//     possibly before the entry it deletes.
//
// Test-only modes (SetFault's failures, SetNextPrefix's hostile links)
// are marked as such. Besides the entries a test adds, Generate makes the
// fake serve up to millions of entries made on the fly, in constant
// memory (the importer's benchmark).
type NCMEC struct {
	*httptest.Server

	// Username and Password are the credentials the fake accepts.
	Username, Password string
	// PageSize is the entries per page (default 1000).
	PageSize int
	// Now is the fake's clock for paging links' expiry (default
	// time.Now).
	Now func() time.Time

	// EntryPages counts the entries pages answered (faults included),
	// Statuses the status calls, Unauthorized the refused calls.
	EntryPages, Statuses, Unauthorized atomic.Int64

	mu         sync.Mutex
	entries    []NCMECEntry
	gen        NCMECGenerated
	fault      *NCMECFault
	nextPrefix string
	cursors    map[ncmecCursor]time.Time
	requests   []string
}

// NCMECBasePath is where the fake serves the API: its base URL is
// URL + NCMECBasePath.
const NCMECBasePath = "/hashsharing"

// NCMECEntry is one entry the fake serves: an image or a video, or a
// tombstone (deletedImage, deletedVideo) with only member, id and
// timestamp.
type NCMECEntry struct {
	// Kind is "image", "video", "deletedImage" or "deletedVideo".
	Kind string
	// Member is the submitting member's id.
	Member int
	// ID is the entry's id.
	ID string
	// Timestamp is when NCMEC last changed the entry.
	Timestamp time.Time
	// Classification is e.g. "A1"; tombstones have none.
	Classification string
	// MD5, SHA1 and PDQ are lowercase hex; empty ones are sent as empty
	// elements, as NCMEC does for fingerprints it lacks.
	MD5, SHA1, PDQ string
}

// NCMECGenerated describes entries made on the fly: N of them, the i-th
// (from 0) stamped From + i*Step, with id "g{i}", member 7, classification
// A1 or B2, and fingerprints derived from i; every VideoEvery-th one (0:
// none) is a video with only an MD5 and a SHA-1, the others images with
// MD5, SHA-1 and PDQ.
type NCMECGenerated struct {
	N          int
	From       time.Time
	Step       time.Duration
	VideoEvery int
}

// NCMECFault is a failure the fake plays (test-only).
type NCMECFault struct {
	// AfterPages lets this many more entries pages through first.
	AfterPages int
	// Status answers this HTTP status with an HTML error page (e.g. 500).
	Status int
	// Cut sends half of the page and then drops the connection.
	Cut bool
	// Garbage answers 200 with this body instead of the page.
	Garbage string
	// Times is how many requests fail before the fake heals (0: all).
	Times int
}

type ncmecCursor struct {
	from, to string
	start    int
}

// NewNCMEC starts a fake NCMEC accepting user and password, serving
// entries. It is closed when tb ends.
func NewNCMEC(tb testing.TB, user, password string, entries ...NCMECEntry) *NCMEC {
	tb.Helper()
	f := NewNCMECHandler(user, password, entries...)
	f.Server = httptest.NewServer(f)
	tb.Cleanup(f.Close)
	return f
}

// NewNCMECHandler is the fake without a server, for a program that
// serves it itself (the benchmark runs it in a process of its own).
func NewNCMECHandler(user, password string, entries ...NCMECEntry) *NCMEC {
	return &NCMEC{Username: user, Password: password, entries: entries, cursors: map[ncmecCursor]time.Time{}}
}

// BaseURL is the base URL to configure the importer with.
func (f *NCMEC) BaseURL() string { return f.URL + NCMECBasePath }

// Add adds entries (a later version of an entry is simply another entry
// with a later timestamp, as NCMEC's feed of changes is).
func (f *NCMEC) Add(e ...NCMECEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.entries = append(f.entries, e...)
}

// Generate makes the fake also serve g's entries.
func (f *NCMEC) Generate(g NCMECGenerated) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen = g
}

func (f *NCMECFault) clone() *NCMECFault { c := *f; return &c }

// SetFault makes entries requests fail as fa says (test-only); nil heals.
func (f *NCMEC) SetFault(fa *NCMECFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fa != nil {
		fa = fa.clone()
	}
	f.fault = fa
}

// SetNextPrefix makes paging links absolute, prefix + path (test-only: a
// prefix naming another host plays a hostile or compromised answer
// steering the client, and its credentials, elsewhere).
func (f *NCMEC) SetNextPrefix(prefix string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextPrefix = prefix
}

// Requests returns the request URIs of the entries calls so far.
func (f *NCMEC) Requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.requests...)
}

// ServeHTTP answers one request as described on NCMEC.
func (f *NCMEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	user, pass, ok := r.BasicAuth()
	if !ok || subtle.ConstantTimeCompare([]byte(user), []byte(f.Username)) != 1 || subtle.ConstantTimeCompare([]byte(pass), []byte(f.Password)) != 1 {
		f.Unauthorized.Add(1)
		w.Header().Set("WWW-Authenticate", `Basic realm="hashsharing"`)
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == NCMECBasePath+"/v2/status":
		f.Statuses.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8" standalone="yes" ?>
<status xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
    <ipAddress>127.0.0.1</ipAddress>
    <username>%s</username>
    <member id="1">Sir Testington</member>
</status>
`, xmlText(f.Username))
	case r.Method == http.MethodGet && r.URL.Path == NCMECBasePath+"/v2/entries":
		f.serveEntries(w, r)
	default:
		http.NotFound(w, r)
	}
}

// ncmecTime reads from/to: NCMEC's "%Y-%m-%dT%H:%M:%SZ", or the
// millisecond form its paging links carry.
func ncmecTime(s string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02T15:04:05Z", "2006-01-02T15:04:05.000Z"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

func (f *NCMEC) serveEntries(w http.ResponseWriter, r *http.Request) {
	f.EntryPages.Add(1)
	q := r.URL.Query()
	from, ok1 := ncmecTime(q.Get("from"))
	to, ok2 := ncmecTime(q.Get("to"))
	if !ok1 || !ok2 {
		http.Error(w, "from and to are required, as yyyy-MM-ddTHH:mm:ssZ", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, r.URL.RequestURI())
	now := time.Now
	if f.Now != nil {
		now = f.Now
	}
	size := f.PageSize
	if size <= 0 {
		size = 1000
	}
	start := 1
	if s := q.Get("start"); s != "" {
		// A paging link: valid 12 h, and only with its own from and to.
		n, err := strconv.Atoi(s)
		issued, ok := f.cursors[ncmecCursor{from.Format(time.RFC3339), to.Format(time.RFC3339), n}]
		if err != nil || !ok || now().Sub(issued) > 12*time.Hour {
			f.mu.Unlock()
			http.Error(w, "invalid or expired paging parameters", http.StatusBadRequest)
			return
		}
		start = n
	}
	fault := f.fault
	if fault != nil {
		if fault.AfterPages > 0 {
			fault.AfterPages--
			fault = nil
		} else if fault.Times > 0 {
			if fault.Times--; fault.Times == 0 {
				f.fault = nil
			}
		}
	}
	var matched []NCMECEntry
	for _, e := range f.entries {
		if !e.Timestamp.Before(from) && !e.Timestamp.After(to) {
			matched = append(matched, e)
		}
	}
	gen := f.gen
	nextPrefix := f.nextPrefix
	// The generated entries in the window: indexes [ga, gb).
	ga, gb := 0, 0
	if gen.N > 0 && gen.Step > 0 {
		ga = max(0, int((from.Sub(gen.From)+gen.Step-1)/gen.Step))
		gb = min(gen.N, int(to.Sub(gen.From)/gen.Step)+1)
		if to.Before(gen.From) || ga >= gb {
			ga, gb = 0, 0
		}
	}
	total := len(matched) + gb - ga
	end := min(total, start-1+size)
	var next string
	if end < total {
		f.cursors[ncmecCursor{from.Format(time.RFC3339), to.Format(time.RFC3339), end + 1}] = now()
		v := url.Values{}
		v.Set("from", from.UTC().Format("2006-01-02T15:04:05.000Z"))
		v.Set("to", to.UTC().Format("2006-01-02T15:04:05.000Z"))
		v.Set("start", strconv.Itoa(end+1))
		v.Set("size", strconv.Itoa(size))
		v.Set("max", strconv.Itoa(total))
		next = nextPrefix + "/v2/entries?" + v.Encode()
	}
	f.mu.Unlock()

	if fault != nil && !fault.Cut {
		if fault.Garbage != "" {
			w.Header().Set("Content-Type", "text/html")
			io.WriteString(w, fault.Garbage)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(fault.Status)
		fmt.Fprintf(w, "<html><body><h1>%d %s</h1></body></html>", fault.Status, http.StatusText(fault.Status))
		return
	}
	// The page's entries, scrambled: position p of the window is item
	// (p*stride + total/3) mod total, stride coprime to total, so pages
	// hold entries from all over the window and none in time order.
	stride := scrambleStride(total)
	item := func(p int) NCMECEntry {
		i := (p*stride + total/3) % total
		if i < len(matched) {
			return matched[i]
		}
		return gen.entry(ga + i - len(matched))
	}
	w.Header().Set("Content-Type", "application/xml")
	var out io.Writer = w
	if fault != nil && fault.Cut {
		// Test-only: half a page, then the connection drops.
		if hj, ok := w.(http.Hijacker); ok {
			conn, bw, err := hj.Hijack()
			if err == nil {
				defer conn.Close()
				fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: 100000000\r\n\r\n")
				out = &cutWriter{w: bw, left: 2000}
				defer bw.Flush()
			}
		}
	}
	page := make([]NCMECEntry, 0, max(0, end-start+1))
	for p := start - 1; p < end; p++ {
		page = append(page, item(p))
	}
	bw := bufio.NewWriterSize(out, 64<<10)
	defer bw.Flush()
	bw.WriteString(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>` + "\n" + `<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">` + "\n")
	for _, videos := range []bool{false, true} {
		n, maxTS := 0, time.Time{}
		for _, e := range page {
			if strings.HasSuffix(strings.ToLower(e.Kind), "video") == videos {
				n++
				if e.Timestamp.After(maxTS) {
					maxTS = e.Timestamp
				}
			}
		}
		if n == 0 {
			continue
		}
		group := "images"
		if videos {
			group = "videos"
		}
		fmt.Fprintf(bw, "  <%s count=\"%d\" maxTimestamp=\"%s\">\n", group, n, maxTS.UTC().Format("2006-01-02T15:04:05Z"))
		for _, e := range page {
			if strings.HasSuffix(strings.ToLower(e.Kind), "video") == videos {
				writeNCMECEntry(bw, e)
			}
		}
		fmt.Fprintf(bw, "  </%s>\n", group)
	}
	if next != "" {
		bw.WriteString("  <paging>\n    <next>" + xmlText(next) + "</next>\n  </paging>\n")
	}
	bw.WriteString("</queryResult>\n")
}

func writeNCMECEntry(w *bufio.Writer, e NCMECEntry) {
	w.WriteString("    <" + e.Kind + ">\n      <member id=\"" + strconv.Itoa(e.Member) + "\">Example Member</member>\n      <timestamp>" +
		e.Timestamp.UTC().Format("2006-01-02T15:04:05Z") + "</timestamp>\n      <id>" + xmlText(e.ID) + "</id>\n")
	if !strings.HasPrefix(e.Kind, "deleted") {
		if e.Classification != "" {
			w.WriteString("      <classification>" + xmlText(e.Classification) + "</classification>\n")
		}
		w.WriteString("      <fingerprints>\n        <md5>" + e.MD5 + "</md5>\n        <sha1>" + e.SHA1 + "</sha1>\n")
		if e.Kind == "image" {
			w.WriteString("        <pdna>AAAA,BBBB</pdna>\n")
			if e.PDQ != "" {
				w.WriteString("        <pdq>" + e.PDQ + "</pdq>\n")
			}
		}
		w.WriteString("      </fingerprints>\n")
	}
	w.WriteString("    </" + e.Kind + ">\n")
}

// entry is the i-th generated entry.
func (g NCMECGenerated) entry(i int) NCMECEntry {
	e := NCMECEntry{Kind: "image", Member: 7, ID: "g" + strconv.Itoa(i), Timestamp: g.From.Add(time.Duration(i) * g.Step), Classification: "A1"}
	if i%2 == 1 {
		e.Classification = "B2"
	}
	x := uint64(i) + 1
	var b [64]byte
	for k := 0; k < len(b); k += 8 {
		binary.BigEndian.PutUint64(b[k:], splitmix(&x))
	}
	b[63] |= 1 // never the all-zero PDQ
	e.MD5 = hex.EncodeToString(b[0:16])
	e.SHA1 = hex.EncodeToString(b[16:36])
	if g.VideoEvery > 0 && i%g.VideoEvery == 0 {
		e.Kind = "video"
		return e
	}
	e.PDQ = hex.EncodeToString(b[32:64])
	return e
}

// GeneratedEntry is the i-th entry g makes, for a test to check against.
func (g NCMECGenerated) GeneratedEntry(i int) NCMECEntry { return g.entry(i) }

func splitmix(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// scrambleStride is a stride coprime to n, near n/φ.
func scrambleStride(n int) int {
	if n <= 2 {
		return 1
	}
	s := int(float64(n)*0.618) | 1
	for gcd(s, n) != 1 {
		s += 2
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func xmlText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// cutWriter writes left bytes, then fails: the connection drops mid-page.
type cutWriter struct {
	w    io.Writer
	left int
}

func (c *cutWriter) Write(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.ErrClosedPipe
	}
	if len(p) > c.left {
		p = p[:c.left]
	}
	n, err := c.w.Write(p)
	c.left -= n
	if err == nil && c.left <= 0 {
		err = io.ErrClosedPipe
	}
	return n, err
}
