package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
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
	// Commands, when not empty, turns on command mode: after each notice
	// these templates are sent as m.text, which Mjolnir executes as
	// commands, e.g. "!mjolnir quarantine-media {mxc}" or
	// "!mjolnir redact {user} --quarantine". {mxc} and {user} are filled
	// in; a command whose placeholder is unknown is skipped. This gives
	// mediaguard Mjolnir's moderator powers: off by default.
	Commands []string
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
}

func (it item) txnID() string {
	switch {
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
	m := &Matrix{cfg: cfg, log: cfg.Logger, queue: make(chan item, cfg.QueueSize)}
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

// join POSTs /join/{roomIdOrAlias}; its answer carries the room ID, which
// is how an alias gets resolved.
func (m *Matrix) join(ctx context.Context) error {
	status, body, _, err := m.do(ctx, http.MethodPost, "/_matrix/client/v3/join/"+url.PathEscape(m.cfg.Room), map[string]any{})
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("join: HTTP %d %s", status, errcodeOf(body))
	}
	var r struct {
		RoomID string `json:"room_id"`
	}
	if json.Unmarshal(body, &r) != nil || !strings.HasPrefix(r.RoomID, "!") {
		return fmt.Errorf("join: answer has no room_id")
	}
	m.roomID, m.joined = r.RoomID, true
	return nil
}

// send PUTs the notice. reason is the answer's "errcode: error" for logs;
// retryAfter is a 429 answer's retry_after_ms (or Retry-After header), zero
// if absent.
func (m *Matrix) send(ctx context.Context, it item) (status int, reason string, retryAfter time.Duration, err error) {
	var content map[string]any
	if it.cmd != "" {
		// Mjolnir only acts on m.text starting with !mjolnir.
		content = map[string]any{"msgtype": "m.text", "body": it.cmd}
	} else {
		body, htmlBody := format(it.d, it.more, m.cfg.SummaryWindow)
		content = map[string]any{
			"msgtype":                  "m.notice",
			"body":                     body,
			"format":                   "org.matrix.custom.html",
			"formatted_body":           htmlBody,
			"org.mediaguard.detection": machine(it.d, it.more),
		}
	}
	path := "/_matrix/client/v3/rooms/" + url.PathEscape(m.roomID) + "/send/m.room.message/" + url.PathEscape(it.txnID())
	status, resp, hdr, err := m.do(ctx, http.MethodPut, path, content)
	if err != nil {
		return 0, "", 0, err
	}
	var e struct {
		Error        string `json:"error"`
		Errcode      string `json:"errcode"`
		RetryAfterMS int64  `json:"retry_after_ms"`
	}
	_ = json.Unmarshal(resp, &e)
	if status == http.StatusTooManyRequests {
		retryAfter = time.Duration(e.RetryAfterMS) * time.Millisecond
		if retryAfter <= 0 {
			if s, err := strconv.Atoi(hdr.Get("Retry-After")); err == nil {
				retryAfter = time.Duration(s) * time.Second
			}
		}
	}
	if status != http.StatusOK && e.Errcode != "" {
		reason = e.Errcode + ": " + e.Error
	}
	return status, reason, retryAfter, nil
}

func (m *Matrix) do(ctx context.Context, method, path string, payload any) (int, []byte, http.Header, error) {
	var b []byte // no body for a GET
	if payload != nil {
		var err error
		if b, err = json.Marshal(payload); err != nil {
			return 0, nil, nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, m.cfg.Homeserver+path, bytes.NewReader(b))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+m.cfg.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, nil, nil, redact(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, nil, redact(err)
	}
	return resp.StatusCode, body, resp.Header, nil
}

// redact strips the URL from transport errors: it is harmless today, but
// keeping request details out of logs means a future ?access_token= never
// leaks through an error message.
func redact(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

func errcodeOf(body []byte) string {
	var e struct {
		Errcode string `json:"errcode"`
	}
	_ = json.Unmarshal(body, &e)
	return e.Errcode
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
