package mediaproxy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/hashing/sched"
	"github.com/mediaguard/mediaguard/matcher"
)

// Defaults, chosen for a homeserver with Synapse's default 50M upload limit
// and plenty of concurrent uploads: memory per request stays small and big
// bodies go to disk.
const (
	DefaultMaxUploadSize     = 100 << 20
	DefaultMemoryBuffer      = 4 << 20
	DefaultMaxDownloadBuffer = 16 << 20
	DefaultMaxBufferedTotal  = 32 << 20
	// DefaultMaxPixels bounds full-resolution decoding: a 7000×7000 PNG
	// bomb then costs a quarter of the PDQ work and none of its 196 MB.
	DefaultMaxPixels = 16_000_000
	// DefaultUploadIdleTimeout is nginx's client_body_timeout: an upload
	// that sends nothing for this long is dead or a slow-loris.
	DefaultUploadIdleTimeout = 60 * time.Second
	// streamTail is how much of a streamed download is held back until the
	// hash is known, so a late match leaves the client with a truncated,
	// unusable file rather than a complete one.
	streamTail = 64 << 10
)

// Next is the rest of the handler chain (reverse_proxy in Caddy).
type Next func(http.ResponseWriter, *http.Request) error

// Config configures a Proxy. Zero values take the defaults above.
type Config struct {
	// Matcher decides (normally a *matcher.Guard). Required.
	Matcher matcher.Matcher
	// MaxUploadSize is the hard cap on an upload body (413 above it).
	MaxUploadSize int64
	// MemoryBuffer is how much of an upload is held in memory before the
	// rest spills to a temp file.
	MemoryBuffer int64
	// TempDir is the parent of the private spill directory (see
	// PrivateSpoolDir); "" means os.TempDir(). Files are created 0600 and
	// always removed.
	TempDir string
	// OnSpool is told of bytes added to (positive) and removed from
	// (negative) the spool directory, for a disk-usage gauge.
	OnSpool func(delta int64)
	// MaxDownloadBuffer is how much of an unknown download is buffered in
	// memory; larger ones, up to MaxUploadSize, are spooled to disk and
	// judged whole too. Only bodies larger than both stream while hashing
	// and are aborted on a late match.
	MaxDownloadBuffer int64
	// MaxBufferedTotal bounds the bytes all concurrent uploads and
	// downloads hold in memory while being judged (default 32 MiB).
	// Beyond it bodies are spooled to disk and judged from there, PDQ
	// included (a federation body's media part is copied to a second
	// spool file). Many parallel or deliberately slow clients cannot
	// exhaust memory.
	MaxBufferedTotal int64
	// MaxConcurrentHashing bounds how many bodies are decoded and
	// PDQ-hashed at once; the rest wait their turn (exact digests are
	// computed as bytes arrive and are not limited). Default: one less
	// than GOMAXPROCS, at least 1, so a core stays free for proxying.
	MaxConcurrentHashing int
	// Hashing is where images are decoded and PDQ-hashed: HashingProcess
	// (the default) in worker processes at idle priority, or
	// HashingInline on niced threads of this process. Where no worker can
	// be started, images are hashed inline.
	Hashing string
	// Runner runs the hashing (hashing/sched). Its threads and worker
	// processes live as long as the process, so a caller that builds more
	// than one Proxy (a server reloading its configuration) passes the
	// same Runner to each; nil gives this Proxy a Runner of its own.
	Runner *sched.Runner
	// UploadIdleTimeout abandons an upload whose client sends no byte for
	// this long (408); default DefaultUploadIdleTimeout, negative for
	// none. A trickle keeps it alive, but each trickling upload holds
	// memory only within MaxBufferedTotal.
	UploadIdleTimeout time.Duration
	// MaxPixels is the most pixels an image is decoded at in full; a
	// larger one (a 48 MP phone photo, a decompression bomb) is decoded
	// at a reduced scale that fits, which PDQ, a 64×64 low-pass, barely
	// notices. Default DefaultMaxPixels.
	MaxPixels int
	// OnUndecodableImage is the policy for bodies that are images by
	// their bytes but that no decoder here can read: UndecodableBlock
	// (the default) refuses them like a match, UndecodableAllow lets them
	// through recorded as unscannable. A viewer may still be shown such a
	// file, so "could not decode" must not mean "clean".
	OnUndecodableImage string
	// ReviewAction is what happens to media the matcher gives a review
	// verdict (a borderline PDQ match, see matcher.LocalConfig.
	// ReviewThreshold): ReviewAllow (the default) lets it through as
	// outcome Review, ReviewHold refuses it (403 upload, 404 download) as
	// outcome Held until a moderator confirms or dismisses it.
	ReviewAction string
	// Dihedral computes the 8 dihedral PDQ variants for the matcher.
	Dihedral bool
	// PDQSearch selects the variants of every picture hashed beside the
	// forms a viewer is shown (trimmed, quadrants, negative, ...; see
	// pdq.Search), for uploads, downloads and pictures embedded in other
	// files alike. The zero value, pdq.SearchOff, hashes none.
	PDQSearch pdq.Search
	// PDQExact hashes JPEGs from their decoded pixels, the reference
	// convention bit for bit, instead of from their DCT blocks (see
	// pdq.DecodeOptions.Exact): 1.5 to 9 times the CPU per JPEG, for
	// hashes a few bits closer to lists made with other tools.
	PDQExact bool
	// ServerName is the homeserver's name, used to key federation
	// requests (which carry only the media ID). Learned from the first
	// upload response when empty.
	ServerName string
	// Memory remembers verdicts by media ID. Default: 100k entries, clean
	// verdicts until the local banks change.
	Memory *Memory
	// Ledger, when set, is asked about the original of a media Memory
	// does not know (after a restart, on another instance, after a bank
	// change), so known media is decided without buffering or hashing.
	Ledger Ledger
	// Observer is told of every decision (metrics, events, audit).
	Observer Observer
	// OnResponse, when set, is told of the answer to every media request
	// (every method on a media path) once it is served: its direction
	// ("upload", "download", or "invalid" for a disguised media path), the
	// status written, whoever wrote it (0 when nothing was), and the error
	// returned, from which the server writes a status of its own
	// (metrics).
	OnResponse func(direction string, status int, err error)
	// UserOf resolves the requester's Matrix user ID (whoami with the
	// request's own token). It runs concurrently with hashing; its answer
	// never changes a verdict, and a block waits for it at most
	// userGrace. Nil records every user as unknown.
	UserOf func(ctx context.Context, r *http.Request) string
	// Logger receives structured logs; never media bytes or tokens.
	Logger *zap.Logger
}

// ReviewAction policies.
const (
	ReviewAllow = "allow"
	ReviewHold  = "hold"
)

// OnUndecodableImage policies.
const (
	UndecodableBlock = "block"
	UndecodableAllow = "allow"
)

// Outcome is how a request was decided.
type Outcome string

// Outcomes. They are the values of the mediaguard_verdict variable and the
// verdict metric label.
const (
	Clean       Outcome = "clean"
	Blocked     Outcome = "blocked"
	LateBlocked Outcome = "late_blocked"
	// Unscannable: no list could match these bytes (encrypted attachment,
	// undecodable image); exact hashes were still checked.
	Unscannable Outcome = "unscannable"
	// Unscanned: a backend was down and the policy is fail-open.
	Unscanned Outcome = "unscanned"
	// Refused: a backend was down and the policy is fail-closed.
	Refused Outcome = "refused"
	// Undecodable: an image by its bytes that could not be decoded,
	// refused under the default OnUndecodableImage policy.
	Undecodable Outcome = "undecodable"
	// WouldBlock: only lists in report mode matched; the media passed
	// and the match is reported ("would have blocked").
	WouldBlock Outcome = "would_block"
	// Review: a borderline match (the review band) that passed, posted
	// to moderators as a review request.
	Review Outcome = "review"
	// Held: a borderline match refused under review_action hold until a
	// moderator decides.
	Held Outcome = "held"
	// KnownBlocked and KnownClean were decided from memory.
	KnownBlocked Outcome = "known_blocked"
	KnownClean   Outcome = "known_clean"
)

// Decision is what an Observer hears about one media request.
type Decision struct {
	Request  *http.Request
	Endpoint Endpoint
	// Upload is true for uploads, false for downloads.
	Upload bool
	// MediaKey names the media when known (zero for an upload the
	// homeserver has not named); its Server is empty for this
	// homeserver's media while its name is not yet known.
	MediaKey MediaKey
	Outcome  Outcome
	Verdict  matcher.Verdict
	Digests  hashing.Digests
	// PDQ is set when the bytes were an image.
	PDQ *pdq.Result
	// Query is everything the media was judged by (exact digests, every
	// PDQ form and variant, embedded files' digests), nil when it was not
	// hashed whole (decided from memory, streamed). The media ledger
	// stores it, to judge the media again without its bytes.
	Query *matcher.Query
	// Format is the format the bytes were sniffed as ("jpeg", "mp4",
	// ...), "" when none.
	Format string
	// Generation is the bank generation (matcher.Generation) taken
	// before the media was judged: a verdict is only as new as it.
	Generation uint64
	// Unscannable says why no perceptual hash was possible.
	UnscannableReason string
	HashTime          time.Duration
	MatchTime         time.Duration
	// Err is the matcher error for Refused and Unscanned outcomes.
	Err error
	// User is the requester's Matrix user ID, "" when unknown.
	User string
	// UpstreamStatus is the homeserver's answer to a forwarded upload: 0
	// when it never answered (or nothing was forwarded). A clean upload
	// it did not answer 2xx was never stored.
	UpstreamStatus int
}

// Observer hears decisions synchronously, before the response goes out, so
// an audit record can be durable before a block is answered.
type Observer interface {
	Observe(d *Decision)
}

// Proxy inspects Matrix media traffic. Safe for concurrent use.
type Proxy struct {
	cfg        Config
	log        *zap.Logger
	mem        *Memory
	serverName atomic.Pointer[string]
	// buffered is the bytes held by downloads being judged.
	buffered atomic.Int64
	// spoolParent is the configured temp dir, to recreate the private
	// spool directory under if it disappears.
	spoolParent string
	// lanes bound the pictures decoded and hashed at once
	// (MaxConcurrentHashing, and one more for small ones); hasher does it.
	lanes  *sched.Lanes
	hasher sched.Hasher
}

// reserve takes n bytes of the shared in-memory budget.
func (p *Proxy) reserve(n int64) bool {
	if p.buffered.Add(n) > p.cfg.MaxBufferedTotal {
		p.buffered.Add(-n)
		return false
	}
	return true
}

// release gives n bytes back to the shared in-memory budget.
func (p *Proxy) release(n int64) { p.buffered.Add(-n) }

// spooled accounts bytes added to (positive) or removed from the spool
// directory.
func (p *Proxy) spooled(delta int64) {
	if p.cfg.OnSpool != nil && delta != 0 {
		p.cfg.OnSpool(delta)
	}
}

// Buffered reports the bytes uploads and downloads hold in memory while
// being judged (metrics).
func (p *Proxy) Buffered() int64 { return p.buffered.Load() }

// BufferLimit is the most Buffered may reach (max_buffered_total).
func (p *Proxy) BufferLimit() int64 { return p.cfg.MaxBufferedTotal }

// New validates cfg and returns a Proxy.
func New(cfg Config) (*Proxy, error) {
	if cfg.Matcher == nil {
		return nil, errors.New("mediaproxy: a matcher is required")
	}
	if cfg.MaxUploadSize <= 0 {
		cfg.MaxUploadSize = DefaultMaxUploadSize
	}
	if cfg.MemoryBuffer <= 0 {
		cfg.MemoryBuffer = DefaultMemoryBuffer
	}
	if cfg.MaxDownloadBuffer <= 0 {
		cfg.MaxDownloadBuffer = DefaultMaxDownloadBuffer
	}
	if cfg.MaxBufferedTotal <= 0 {
		cfg.MaxBufferedTotal = DefaultMaxBufferedTotal
	}
	if cfg.MaxPixels <= 0 {
		cfg.MaxPixels = DefaultMaxPixels
	}
	if cfg.MaxConcurrentHashing <= 0 {
		cfg.MaxConcurrentHashing = max(1, runtime.GOMAXPROCS(0)-1)
	}
	switch cfg.OnUndecodableImage {
	case "":
		cfg.OnUndecodableImage = UndecodableBlock
	case UndecodableBlock, UndecodableAllow:
	default:
		return nil, fmt.Errorf("mediaproxy: on_undecodable_image must be %q or %q, not %q", UndecodableBlock, UndecodableAllow, cfg.OnUndecodableImage)
	}
	switch cfg.ReviewAction {
	case "":
		cfg.ReviewAction = ReviewAllow
	case ReviewAllow, ReviewHold:
	default:
		return nil, fmt.Errorf("mediaproxy: review_action must be %q or %q, not %q", ReviewAllow, ReviewHold, cfg.ReviewAction)
	}
	if cfg.PDQSearch > pdq.SearchDeep {
		return nil, fmt.Errorf("mediaproxy: unknown pdq search level %v", cfg.PDQSearch)
	}
	switch cfg.Hashing {
	case "":
		cfg.Hashing = HashingProcess
	case HashingProcess, HashingInline:
	default:
		return nil, fmt.Errorf("mediaproxy: hashing must be %q or %q, not %q", HashingProcess, HashingInline, cfg.Hashing)
	}
	if cfg.UploadIdleTimeout == 0 {
		cfg.UploadIdleTimeout = DefaultUploadIdleTimeout
	}
	if cfg.Memory == nil {
		cfg.Memory = NewMemory(100_000, 0)
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	dir, err := PrivateSpoolDir(cfg.TempDir)
	if err != nil {
		return nil, fmt.Errorf("mediaproxy: %w", err)
	}
	if cfg.Runner == nil {
		cfg.Runner = sched.NewRunner(cfg.Logger)
	}
	cfg.Runner.Grow(cfg.MaxConcurrentHashing+1, cfg.Hashing == HashingProcess)
	parent := cfg.TempDir
	cfg.TempDir = dir
	p := &Proxy{cfg: cfg, log: cfg.Logger, mem: cfg.Memory, spoolParent: parent,
		lanes: sched.NewLanes(cfg.MaxConcurrentHashing), hasher: cfg.Runner.Hasher(cfg.Hashing == HashingProcess)}
	if cfg.ServerName != "" {
		s := cfg.ServerName
		p.serverName.Store(&s)
	}
	return p, nil
}

// SpoolDir is the private directory uploads spill to.
func (p *Proxy) SpoolDir() string { return p.cfg.TempDir }

// Memory returns the verdict memory (for tests and metrics).
func (p *Proxy) Memory() *Memory { return p.mem }

// ServeHTTP handles one request, calling next for anything it lets through.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request, next Next) error {
	tokenToHeader(r)
	ep := Classify(r)
	if p.cfg.OnResponse != nil && ep.Kind != NotMedia {
		sw := &statusWriter{ResponseWriter: w}
		err := p.serve(sw, r, ep, next)
		p.cfg.OnResponse(ep.Direction(), sw.status, err)
		return err
	}
	return p.serve(w, r, ep, next)
}

// serve answers a request classified as ep.
func (p *Proxy) serve(w http.ResponseWriter, r *http.Request, ep Endpoint, next Next) error {
	if ep.Kind == Upload || ep.Kind == UploadTo || ep.Kind == Download {
		if r.Method == http.MethodOptions {
			// A CORS preflight needs headers, never the media: Dendrite
			// answers OPTIONS on a download with the whole file.
			writePreflight(w)
			return nil
		}
		if !ep.MethodAllowed() {
			writeError(w, http.StatusMethodNotAllowed, "M_UNRECOGNIZED", "Unrecognized request")
			return nil
		}
	}
	switch ep.Kind {
	case Upload, UploadTo:
		return p.serveUpload(w, r, ep, next)
	case Download:
		return p.serveDownload(w, r, ep, next)
	case Invalid:
		if r.Method == http.MethodPut {
			writeError(w, http.StatusBadRequest, "M_INVALID_PARAM", "Invalid server name or media ID")
		} else {
			writeError(w, http.StatusNotFound, "M_NOT_FOUND", "Not found")
		}
		return nil
	}
	return next(w, r)
}

func (p *Proxy) observe(d *Decision) {
	if p.cfg.Observer != nil {
		p.cfg.Observer.Observe(d)
	}
}

// userGrace bounds how long a block waits for the requester's identity: a
// slow or dead homeserver must not hold up the refusal.
const userGrace = 50 * time.Millisecond

// startUser begins resolving the requester and returns a function that
// yields the answer: waiting up to userGrace when wait is true (a block,
// which moderators need attributed), else only if it is already known.
func (p *Proxy) startUser(r *http.Request) func(wait bool) string {
	if p.cfg.UserOf == nil {
		return func(bool) string { return "" }
	}
	ch := make(chan string, 1)
	// The handler goes on to rewrite r's headers; the resolver gets its
	// own copy so the two never touch one map.
	rc := r.Clone(r.Context())
	go func() { ch <- p.cfg.UserOf(rc.Context(), rc) }()
	var got string
	var done bool
	return func(wait bool) string {
		if done {
			return got
		}
		if wait {
			t := time.NewTimer(userGrace)
			defer t.Stop()
			select {
			case got = <-ch:
				done = true
			case <-t.C:
			}
			return got
		}
		select {
		case got = <-ch:
			done = true
		default:
		}
		return got
	}
}

func (p *Proxy) localServer() string {
	if s := p.serverName.Load(); s != nil {
		return *s
	}
	return ""
}

// writeError writes a Matrix error with the CORS headers web clients need
// (a browser hides a CORS-less error from the app, which then shows a
// generic failure instead of the refusal).
func writeError(w http.ResponseWriter, status int, errcode, msg string) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "application/json")
	setCORS(h)
	h.Set("Cache-Control", "no-store")
	body, _ := json.Marshal(struct {
		Errcode string `json:"errcode"`
		Error   string `json:"error"`
	}{errcode, msg})
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if status == http.StatusServiceUnavailable {
		h.Set("Retry-After", "30")
	}
	w.WriteHeader(status)
	w.Write(body)
}

// writePreflight answers a CORS preflight on a media path with the headers
// the Matrix spec asks of homeservers and no body.
func writePreflight(w http.ResponseWriter) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	setCORS(h)
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
}

func setCORS(h http.Header) {
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST, PUT, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "X-Requested-With, Content-Type, Authorization, Date")
}

// tokenToHeader moves an ?access_token= query parameter into the
// Authorization header, where the Matrix spec accepts it equally
// (https://spec.matrix.org/v1.11/client-server-api/#using-access-tokens;
// the query form is deprecated): URLs end up in logs (reverse_proxy's, the
// homeserver's, any proxy's after this one), headers are redacted. When the
// request carries both, it is left alone: Synapse refuses that mix, and
// mediaguard must not change the answer.
func tokenToHeader(r *http.Request) {
	if !strings.Contains(r.URL.RawQuery, "access_token") || r.Header.Get("Authorization") != "" {
		return
	}
	q := r.URL.Query()
	tok := q.Get("access_token")
	if tok == "" {
		return
	}
	q.Del("access_token")
	r.URL.RawQuery = q.Encode()
	r.RequestURI = r.URL.RequestURI()
	r.Header.Set("Authorization", "Bearer "+tok)
}
