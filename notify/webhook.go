package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// WebhookConfig configures a generic webhook for teams without Mjolnir.
type WebhookConfig struct {
	// URL receives POST {"text": body, "html": formatted} (the convention
	// of Matrix Hookshot and Slack-style incoming webhooks).
	URL string
	// QueueSize bounds notices waiting for delivery (default 1000).
	QueueSize int
	// Attempts per notice on network errors, 429 and 5xx (default 6).
	Attempts int
	// HTTPClient is optional.
	HTTPClient *http.Client
	// Logger receives delivery problems; nil logs nothing.
	Logger *zap.Logger
}

// Webhook posts detections to a URL from one goroutine, never blocking the
// caller. Unlike Matrix it has no idempotency key, so a retry after a lost
// reply may post twice: webhooks are a convenience, the audit log is the
// record.
type Webhook struct {
	cfg    WebhookConfig
	queue  chan Detection
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once

	queued, delivered, retried, queueFull, rejected, gaveUp atomic.Uint64
	// pending counts notices queued whose delivery has not finished.
	pending atomic.Int64
}

// NewWebhook validates cfg and starts delivery.
func NewWebhook(cfg WebhookConfig) (*Webhook, error) {
	if cfg.URL == "" {
		return nil, fmt.Errorf("notify: webhook URL is required")
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 1000
	}
	if cfg.Attempts <= 0 {
		cfg.Attempts = 6
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := &Webhook{cfg: cfg, queue: make(chan Detection, cfg.QueueSize), cancel: cancel, done: make(chan struct{})}
	go w.run(ctx)
	return w, nil
}

// Notify queues d; false when the queue is full.
func (w *Webhook) Notify(d Detection) bool {
	// Counted before the send: the delivery goroutine may finish it
	// before this returns.
	w.pending.Add(1)
	select {
	case w.queue <- d:
		w.queued.Add(1)
		return true
	default:
		w.pending.Add(-1)
		w.queueFull.Add(1)
		return false
	}
}

// Stats returns a snapshot of the counters (Summarised is always 0: a
// webhook posts every notice).
func (w *Webhook) Stats() Stats {
	qf, rj, gu := w.queueFull.Load(), w.rejected.Load(), w.gaveUp.Load()
	return Stats{
		Queued: w.queued.Load(), Delivered: w.delivered.Load(), Retried: w.retried.Load(),
		Dropped: qf + rj + gu, QueueFull: qf, Rejected: rj, GaveUp: gu, Pending: w.pending.Load(),
	}
}

// Close stops delivery.
func (w *Webhook) Close() {
	w.once.Do(func() {
		w.cancel()
		<-w.done
	})
}

func (w *Webhook) run(ctx context.Context) {
	defer close(w.done)
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-w.queue:
			w.deliver(ctx, d)
			w.pending.Add(-1)
		}
	}
}

func (w *Webhook) deliver(ctx context.Context, d Detection) {
	text, html := Format(d)
	payload, _ := json.Marshal(map[string]string{"text": text, "html": html})
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, payload)
		switch {
		case err == nil:
			w.delivered.Add(1)
			return
		case ctx.Err() != nil:
			return // closed: neither delivered nor refused
		case !retry:
			w.rejected.Add(1)
		case attempt >= w.cfg.Attempts:
			w.gaveUp.Add(1)
		}
		if !retry || attempt >= w.cfg.Attempts {
			w.cfg.Logger.Warn("notify: webhook delivery failed; giving up", zap.String("detection", d.ID), zap.Error(err))
			return
		}
		w.retried.Add(1)
		if !sleep(ctx, delay) {
			return
		}
		delay = min(delay*2, 30*time.Second)
	}
}

func (w *Webhook) post(ctx context.Context, payload []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.cfg.URL, bytes.NewReader(payload))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.cfg.HTTPClient.Do(req)
	if err != nil {
		return true, fmt.Errorf("webhook: %w", redact(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, nil
	}
	return resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500, fmt.Errorf("webhook answered %d", resp.StatusCode)
}
