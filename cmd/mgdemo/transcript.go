package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// event is one message of the management room.
type event struct {
	Sender    string
	Time      time.Time
	MsgType   string
	Body      string
	Detection map[string]any // mediaguard's org.mediaguard.detection, if any
}

// syncFilter keeps the moderator's /sync to the management room's
// messages (spec.matrix.org/v1.11/client-server-api/#filtering; the
// filter may be given inline as JSON).
func syncFilter(room string) string {
	b, _ := json.Marshal(map[string]any{
		"presence":     map[string]any{"types": []string{}},
		"account_data": map[string]any{"types": []string{}},
		"room": map[string]any{
			"rooms":        []string{room},
			"timeline":     map[string]any{"types": []string{"m.room.message"}, "limit": 50},
			"state":        map[string]any{"types": []string{}},
			"ephemeral":    map[string]any{"types": []string{}},
			"account_data": map[string]any{"types": []string{}},
		},
	})
	return string(b)
}

// follow long-polls /sync as the moderator until ctx ends, printing each
// message of the management room to Out and passing it on to events
// (dropped when nobody reads them: only the check does). It talks to
// Dendrite directly, so Caddy stops without waiting for its long poll.
func (w *world) follow(ctx context.Context, events chan<- event) {
	since, failing := "", false
	for ctx.Err() == nil {
		q := url.Values{"filter": {syncFilter(w.room)}, "timeout": {"25000"}}
		if since != "" {
			q.Set("since", since)
		}
		next, evs, err := w.sync(ctx, q)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing { // once per outage, not once per retry
				fmt.Fprintf(w.o.Log, "mgdemo: following the management room: %v (retrying)\n", err)
			}
			failing = true
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		failing, since = false, next
		for _, ev := range evs {
			w.printEvent(ev)
			select {
			case events <- ev:
			default:
			}
		}
	}
}

// sync makes one /sync request and returns its next_batch and the room's
// messages.
func (w *world) sync(ctx context.Context, q url.Values) (string, []event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.hs.URL+"/_matrix/client/v3/sync?"+q.Encode(), nil)
	if err != nil {
		return "", nil, err
	}
	req.Header.Set("Authorization", "Bearer "+w.mod.AccessToken)
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("/sync: %d %.200s", resp.StatusCode, body)
	}
	var r struct {
		NextBatch string `json:"next_batch"`
		Rooms     struct {
			Join map[string]struct {
				Timeline struct {
					Events []struct {
						Type           string         `json:"type"`
						Sender         string         `json:"sender"`
						OriginServerTS int64          `json:"origin_server_ts"`
						Content        map[string]any `json:"content"`
					} `json:"events"`
				} `json:"timeline"`
			} `json:"join"`
		} `json:"rooms"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return "", nil, fmt.Errorf("/sync: %v", err)
	}
	var out []event
	for _, e := range r.Rooms.Join[w.room].Timeline.Events {
		if e.Type != "m.room.message" {
			continue
		}
		ev := event{Sender: e.Sender, Time: time.UnixMilli(e.OriginServerTS)}
		ev.MsgType, _ = e.Content["msgtype"].(string)
		ev.Body, _ = e.Content["body"].(string)
		ev.Detection, _ = e.Content["org.mediaguard.detection"].(map[string]any)
		out = append(out, ev)
	}
	return r.NextBatch, out, nil
}

// printEvent shows a message as a transcript entry: time, sender and
// type, then the body indented.
func (w *world) printEvent(ev event) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n[%s] %s (%s):\n", ev.Time.Format("15:04:05"), ev.Sender, ev.MsgType)
	for line := range strings.SplitSeq(strings.TrimRight(ev.Body, "\n"), "\n") {
		b.WriteString("    " + line + "\n")
	}
	io.WriteString(w.o.Out, b.String())
}
