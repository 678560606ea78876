package notify

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"
)

// MatrixConfig configures a Matrix notifier.
type MatrixConfig struct {
	// Homeserver is the client-server API base URL, e.g. https://matrix.example.org.
	Homeserver string
	// AccessToken is the bot account's token. It is only ever sent in the
	// Authorization header, never in a notice or a log line.
	AccessToken string
	// Room is the room ID (!id:server) or alias (#alias:server) to post to.
	Room string
	// QueueSize bounds the number of notices waiting for delivery
	// (default 1000); beyond it Notify refuses rather than blocks.
	QueueSize int
	// MaxRetryDelay caps the exponential backoff between attempts (default 1m).
	MaxRetryDelay time.Duration
	// HTTPClient is used for all requests (default: a client with a 30 s timeout).
	HTTPClient *http.Client
	// SummaryWindow is the burst window (default 1m).
	SummaryWindow time.Duration
	// SummaryThreshold is how many identical detections (same MatchedHash
	// and User) are posted per window before the rest are counted into one
	// summary notice (default 10; negative disables summarising).
	SummaryThreshold int
	// OnDelivered, if set, is called with each detection ID once the
	// homeserver has accepted its notice (or the summary that counted it),
	// so the audit log can stop redelivering it. It runs on the delivery
	// goroutine and should be quick.
	OnDelivered func(id string)
	// OnSightingDelivered, if set, is called with each sighting once the
	// homeserver has accepted its notice, like OnDelivered for a
	// detection: a sighting is put on record as reported only then, so
	// one lost to a stop (or refused) is not taken for reported. It runs
	// on the delivery goroutine and should be quick.
	OnSightingDelivered func(Sighting)
	// Commands, when not empty, turns on command mode: after each notice
	// these templates are sent as m.text, which Mjolnir executes as
	// commands, e.g. "!mjolnir quarantine-media {mxc}" or
	// "!mjolnir redact {user} --quarantine". {mxc} and {user} are filled
	// in; a command whose placeholder is unknown is skipped. This gives
	// mediaguard Mjolnir's moderator powers: off by default.
	Commands []string
	// Stories, when set, makes the notices about one file one story: a
	// notice about a file the room has already been told of is posted in
	// the thread of the first (reviews excepted: they ask for a decision
	// and stay in the room's timeline), and a notice about a new file
	// begins its story. Sighting needs it to find a file's story.
	Stories *Stories
	// Logger receives delivery problems; nil logs nothing.
	Logger *zap.Logger
}

// Stats are a notifier's cumulative counters since it was created, and
// (Pending) what it holds now. Matrix and Webhook both report them.
type Stats struct {
	// Queued counts notices accepted into the queue (including summaries
	// and, in command mode, the commands).
	Queued uint64
	// Delivered counts notices the homeserver (or webhook) accepted;
	// commands are not counted.
	Delivered uint64
	// Retried counts failed attempts that were retried.
	Retried uint64
	// Dropped counts notices given up on: QueueFull, Rejected and GaveUp
	// together.
	Dropped uint64
	// QueueFull counts notices refused at enqueue time because the queue
	// was full or the notifier closed.
	QueueFull uint64
	// Rejected counts notices the receiver refused with an answer that
	// retrying cannot change (a 4xx other than 429; for Matrix, a 403
	// after rejoining).
	Rejected uint64
	// GaveUp counts notices dropped after every attempt failed (Webhook
	// only: Matrix retries until it is closed).
	GaveUp uint64
	// Summarised counts detections folded into a summary instead of being
	// posted one by one.
	Summarised uint64
	// Pending is the number of notices (summaries and commands included)
	// queued or being delivered now.
	Pending int64
}

// item is one notice to send: a detection, or (more > 0) a summary.
type item struct {
	d         Detection
	more      int
	summaryID string
	acks      []string
	// cmd, when set, is a Mjolnir command sent as m.text after the notice
	// (command mode); cmdN numbers it within its detection.
	cmd  string
	cmdN int
	// sighting, when set, is the item: a room event with listed media.
	sighting *Sighting
}

func (it item) txnID() string {
	switch {
	case it.sighting != nil:
		return TxnID("sighting", it.sighting.Via, it.sighting.EventID)
	case it.cmd != "":
		return "mediaguard-" + it.d.ID + "-cmd" + strconv.Itoa(it.cmdN)
	case it.more > 0:
		return "mediaguard-" + it.summaryID
	}
	return "mediaguard-" + it.d.ID
}

// Matrix posts detection notices to one Matrix room. Notify is safe for
// concurrent use; one goroutine delivers in order.
type Matrix struct {
	cfg   MatrixConfig
	log   *zap.Logger
	queue chan item
	burst *burst

	// cli is the bot's Matrix client (see NewClient).
	cli    *mautrix.Client
	roomID string // resolved room ID; touched only by the delivery goroutine after Start
	joined bool

	queued, delivered, retried, queueFull, rejected, summarised atomic.Uint64
	// pending counts items enqueued whose delivery has not finished.
	pending atomic.Int64

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewMatrix validates cfg and applies defaults. Nothing is sent until Start.
func NewMatrix(cfg MatrixConfig) (*Matrix, error) {
	if cfg.Homeserver == "" || cfg.AccessToken == "" || cfg.Room == "" {
		return nil, errors.New("notify: Homeserver, AccessToken and Room are required")
	}
	u, err := url.Parse(cfg.Homeserver)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("notify: Homeserver %q is not an http(s) URL", cfg.Homeserver)
	}
	if !strings.HasPrefix(cfg.Room, "!") && !strings.HasPrefix(cfg.Room, "#") {
		return nil, fmt.Errorf("notify: Room %q is neither a room ID (!...) nor an alias (#...)", cfg.Room)
	}
	cfg.Homeserver = strings.TrimRight(cfg.Homeserver, "/")
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = time.Minute
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.SummaryWindow <= 0 {
		cfg.SummaryWindow = time.Minute
	}
	if cfg.SummaryThreshold == 0 {
		cfg.SummaryThreshold = 10
	}
	cli, err := NewClient(cfg.Homeserver, cfg.AccessToken, cfg.HTTPClient)
	if err != nil {
		return nil, err
	}
	m := &Matrix{cfg: cfg, log: cfg.Logger, cli: cli, queue: make(chan item, cfg.QueueSize)}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if strings.HasPrefix(cfg.Room, "!") {
		m.roomID = cfg.Room
	}
	if cfg.SummaryThreshold > 0 {
		m.burst = newBurst(cfg.SummaryWindow, cfg.SummaryThreshold, func(it item) { m.enqueue(it) })
	}
	return m, nil
}

// Start joins the room and starts delivery. A failed join is logged and
// retried by the delivery goroutine, not returned: the proxy must come up
// even when the homeserver is down. ctx (further capped at 10 s, so a hung
// homeserver cannot stall proxy startup) bounds only the initial join
// attempt; delivery runs until Close.
func (m *Matrix) Start(ctx context.Context) error {
	m.mu.Lock()
	if m.started || m.closed {
		m.mu.Unlock()
		return errors.New("notify: Start called twice or after Close")
	}
	m.started = true
	runCtx, cancel := context.WithCancel(context.Background())
	m.cancel, m.done = cancel, make(chan struct{})
	m.mu.Unlock()

	joinCtx, cancelJoin := context.WithTimeout(ctx, 10*time.Second)
	err := m.join(joinCtx)
	cancelJoin()
	if err != nil {
		m.log.Warn("notify: joining the notice room failed; retrying in the background", zap.String("room", m.cfg.Room), zap.Error(err))
	}
	go m.run(runCtx)
	return nil
}

// Notify queues d for delivery without blocking. It returns false (and
// counts it) when the queue is full or the notifier is closed; the caller's
// audit log keeps the detection and re-notifies it later. A detection
// folded into a burst summary returns true.
func (m *Matrix) Notify(d Detection) bool {
	if m.burst != nil && !m.burst.admit(d) {
		m.summarised.Add(1)
		return true
	}
	if !m.enqueue(item{d: d}) {
		return false
	}
	for i, c := range Commands(m.cfg.Commands, d) {
		m.enqueue(item{d: d, cmd: c, cmdN: i})
	}
	return true
}

// Sighting queues the notice of listed media seen in a room event without
// blocking: a reply in the thread of the file's story when the room has
// been told of the file (Stories), else a notice of its own that begins
// the story. It returns false (and counts it in QueueFull) when the
// queue is full or the notifier is closed. Deciding whether an event is
// reported at all (Stories.Claim) is the caller's, and so is putting it
// on record once delivered (OnSightingDelivered): a sighting queued but
// not delivered before Close is not redelivered.
func (m *Matrix) Sighting(s Sighting) bool {
	return m.enqueue(item{sighting: &s})
}

func (m *Matrix) enqueue(it item) bool {
	m.mu.Lock()
	closed := m.closed
	m.mu.Unlock()
	if !closed {
		select {
		case m.queue <- it:
			m.queued.Add(1)
			m.pending.Add(1)
			return true
		default:
		}
	}
	m.queueFull.Add(1)
	return false
}

// Close stops delivery and waits for the delivery goroutine. Queued and
// in-flight notices are abandoned; the audit log redelivers them after
// restart, and the txnId makes an in-flight one that did land a no-op.
func (m *Matrix) Close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	m.closed = true
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if m.burst != nil {
		m.burst.close()
	}
	if cancel != nil {
		cancel()
		<-done
	}
}

// Stats returns a snapshot of the counters.
func (m *Matrix) Stats() Stats {
	return Stats{
		Queued: m.queued.Load(), Delivered: m.delivered.Load(), Retried: m.retried.Load(),
		// A notice is dropped by a full queue or a refusal: the
		// notifier never gives one up otherwise.
		Dropped: m.queueFull.Load() + m.rejected.Load(), QueueFull: m.queueFull.Load(), Rejected: m.rejected.Load(),
		Summarised: m.summarised.Load(), Pending: m.pending.Load(),
	}
}

func (m *Matrix) run(ctx context.Context) {
	defer close(m.done)
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-m.queue:
			m.deliver(ctx, it)
			m.pending.Add(-1)
		}
	}
}

// deliver sends one notice, retrying until it is accepted, rejected for
// good, or ctx ends. The queue behind it waits, which keeps notices in order
// while the homeserver is down.
//
// This loop is ours, not the SDK's: mautrix retries a single request
// (network errors, 502-504, 429) but has no notion of a queue that must
// stay in order behind it, of rejoining on 403, of counting retries and
// refusals for metrics, or of jitter, and it sleeps inside the call.
func (m *Matrix) deliver(ctx context.Context, it item) {
	attempt := 0
	rejoined := false
	for {
		var wait time.Duration
		if !m.joined {
			if err := m.join(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				m.log.Warn("notify: joining the notice room failed", zap.String("room", m.cfg.Room), zap.Error(err))
				wait = m.backoff(attempt)
				attempt++
				if !sleep(ctx, wait) {
					return
				}
				continue
			}
		}
		status, reason, retryAfter, err := m.send(ctx, it)
		switch {
		case ctx.Err() != nil:
			return
		case err == nil && status == http.StatusOK && it.cmd != "":
			return
		case err == nil && status == http.StatusOK:
			m.delivered.Add(1)
			if it.sighting != nil {
				if m.cfg.OnSightingDelivered != nil {
					m.cfg.OnSightingDelivered(*it.sighting)
				}
				return
			}
			if m.cfg.OnDelivered != nil {
				if it.more > 0 {
					for _, id := range it.acks {
						m.cfg.OnDelivered(id)
					}
				} else {
					m.cfg.OnDelivered(it.d.ID)
				}
			}
			return
		case err != nil || status >= 500:
			wait = m.backoff(attempt)
		case status == http.StatusTooManyRequests:
			wait = retryAfter
			if wait <= 0 {
				wait = m.backoff(attempt)
			}
		case status == http.StatusForbidden && !rejoined:
			// Most likely we were kicked, or never joined because the
			// invite came after Start: rejoin once, then retry. A second
			// 403 after a successful join is a real permission problem.
			rejoined, m.joined = true, false
			m.log.Warn("notify: send forbidden; rejoining the notice room", zap.String("room", m.cfg.Room), zap.String("reason", reason))
			continue
		default:
			m.rejected.Add(1)
			m.log.Warn("notify: homeserver rejected the notice; dropping it (check the notifier config)",
				zap.String("txn", it.txnID()), zap.Int("status", status), zap.String("reason", reason))
			return
		}
		m.retried.Add(1)
		m.log.Info("notify: send failed; will retry", zap.String("txn", it.txnID()), zap.Int("status", status),
			zap.String("reason", reason), zap.Error(err), zap.Duration("in", wait))
		attempt++
		if !sleep(ctx, wait) {
			return
		}
	}
}

// join joins the room (POST /join/{roomIdOrAlias}, which also accepts a
// pending invite); its answer carries the room ID, which is how an alias
// gets resolved.
func (m *Matrix) join(ctx context.Context) error {
	resp, err := m.cli.JoinRoom(ctx, m.cfg.Room, nil)
	if err != nil {
		return fmt.Errorf("join: %w", Explain(err))
	}
	if !strings.HasPrefix(resp.RoomID.String(), "!") {
		return fmt.Errorf("join: answer has no room_id")
	}
	m.roomID, m.joined = resp.RoomID.String(), true
	return nil
}

// send PUTs the notice with its transaction ID. The homeserver treats a
// repeated transaction ID from the same token as the same event, which is
// what makes a retry after a lost answer safe
// (https://spec.matrix.org/v1.11/client-server-api/#transaction-identifiers).
// status is 200 on success and 0 when no answer came. A notice posted on
// its own begins the story of its file (Stories); it is decided here, on
// the one delivery goroutine, so that a report queued after a detection
// finds the detection's notice.
func (m *Matrix) send(ctx context.Context, it item) (status int, reason string, retryAfter time.Duration, err error) {
	var content map[string]any
	var digests Digests
	var about string
	switch {
	case it.cmd != "":
		// Mjolnir only acts on m.text starting with !mjolnir.
		content = map[string]any{"msgtype": "m.text", "body": it.cmd}
	case it.sighting != nil:
		s := *it.sighting
		// A sighting finds its story by what it says of the file but
		// begins one only under what is known of it.
		digests, about = s.Verified, s.EventID
		root, _, _ := m.cfg.Stories.Root(s.Digests)
		content = SightingContent(s, root)
	default:
		body, htmlBody := format(it.d, it.more, m.cfg.SummaryWindow)
		content = map[string]any{
			"msgtype":                  "m.notice",
			"body":                     body,
			"format":                   "org.matrix.custom.html",
			"formatted_body":           htmlBody,
			"org.mediaguard.detection": machine(it.d, it.more),
		}
		if it.more == 0 {
			digests, about = it.d.Digests, it.d.ID
			if root, of, ok := m.cfg.Stories.Root(digests); ok && of != it.d.ID && !it.d.Review {
				content["m.relates_to"] = threadOn(root)
			}
		}
	}
	resp, err := m.cli.SendMessageEvent(ctx, id.RoomID(m.roomID), event.EventMessage, content, mautrix.ReqSendEvent{TransactionID: it.txnID()})
	if err == nil {
		if _, threaded := content["m.relates_to"]; !threaded && about != "" {
			m.cfg.Stories.Begin(digests, resp.EventID.String(), about)
		}
		return http.StatusOK, "", 0, nil
	}
	f := Explain(err)
	if f.Status == 0 {
		return 0, "", 0, errors.New(f.Reason)
	}
	return f.Status, f.Reason, f.RetryAfter, nil
}

// backoff is exponential from 250 ms, capped at MaxRetryDelay, with "equal
// jitter" (half fixed, half random) so many proxies restarting together do
// not hammer a recovering homeserver in lockstep.
func (m *Matrix) backoff(attempt int) time.Duration {
	d := 250 * time.Millisecond
	for i := 0; i < attempt && d < m.cfg.MaxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, m.cfg.MaxRetryDelay)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether to carry on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
