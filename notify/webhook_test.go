package notify

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
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
