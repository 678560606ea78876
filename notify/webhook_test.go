package notify

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/internal/testkit"
)

// TestWebhook: a receiver following the Hookshot/Slack incoming-webhook
// convention (POST JSON {"text","html"}, 2xx on success) that fails twice
// with 503 still gets the notice, once.
func TestWebhook(t *testing.T) {
	var fails atomic.Int32
	fails.Store(2)
	var mu sync.Mutex
	var got []map[string]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fails.Add(-1) >= 0 {
			w.WriteHeader(503)
			return
		}
		var body map[string]string
		json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got = append(got, body)
		mu.Unlock()
	}))
	defer srv.Close()
	w, err := NewWebhook(WebhookConfig{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if !w.Notify(Detection{ID: "d1", Direction: "upload", User: "@u:example.org", HashType: "sha256", MatchedHash: strings.Repeat("ab", 32), Bank: "TEST"}) {
		t.Fatal("queue refused")
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || !strings.Contains(got[0]["text"], "@u:example.org") || got[0]["html"] == "" {
		t.Fatalf("webhook posts: %v", got)
	}
	if _, err := NewWebhook(WebhookConfig{}); err == nil {
		t.Fatal("empty URL accepted")
	}
}

// The webhook's Stats tell delivered notices from those it retried,
// those the receiver refused for good, those it gave up on after every
// attempt and those the full queue refused.
func TestWebhookStats(t *testing.T) {
	tests := []struct {
		name    string
		answers []int // the receiver's statuses, in turn; the last repeats
		want    Stats
	}{
		{"delivered after two 503s", []int{503, 503, 204}, Stats{Queued: 1, Delivered: 1, Retried: 2}},
		{"rejected", []int{400}, Stats{Queued: 1, Dropped: 1, Rejected: 1}},
		{"gave up", []int{502}, Stats{Queued: 1, Retried: 2, Dropped: 1, GaveUp: 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var n atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := min(int(n.Add(1))-1, len(tc.answers)-1)
				w.WriteHeader(tc.answers[i])
			}))
			defer srv.Close()
			w, err := NewWebhook(WebhookConfig{URL: srv.URL, Attempts: 3})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if !w.Notify(Detection{ID: "d1", HashType: "md5", Bank: "TEST"}) {
				t.Fatal("queue refused")
			}
			testkit.EventuallyWithin(t, 10*time.Second, "the notice settled", func() bool {
				st := w.Stats()
				return st.Delivered+st.Dropped == 1 && st.Pending == 0
			})
			if st := w.Stats(); st != tc.want {
				t.Errorf("stats %+v; want %+v", st, tc.want)
			}
		})
	}
	t.Run("queue full", func(t *testing.T) {
		hang := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-hang }))
		defer srv.Close()
		defer close(hang)
		w, err := NewWebhook(WebhookConfig{URL: srv.URL, QueueSize: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.Notify(Detection{ID: "first"})
		testkit.EventuallyWithin(t, 5*time.Second, "the first post to hang", func() bool { return len(w.queue) == 0 })
		for i := range 5 {
			w.Notify(Detection{ID: fmt.Sprint(i)})
		}
		if st := w.Stats(); st.QueueFull != 3 || st.Dropped != 3 || st.Pending != 3 || st.Queued != 3 {
			t.Errorf("stats %+v; want 3 refused, 3 pending (one in flight, two queued)", st)
		}
	})
}
