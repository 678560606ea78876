package homeserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestQuarantineFeedClient(t *testing.T) {
	f := newFakeSynapseAdmin(t)
	a, _ := NewAdmin(AdminConfig{Homeserver: f.URL, AccessToken: f.AdminToken, RetryDelay: time.Millisecond, Attempts: 1})
	ctx := context.Background()
	f.Put("pic", []byte("picture bytes"), "image/png")
	if err := a.QuarantineMedia(ctx, "hs.example", "pic"); err != nil {
		t.Fatal(err)
	}
	page, err := a.QuarantineChanges(ctx, 0)
	if err != nil || len(page.Changes) != 1 || page.Changes[0] != (QuarantineChange{"hs.example", "pic", true}) || page.NextBatch != 2 {
		t.Fatalf("page %+v, %v", page, err)
	}
	if mi, err := a.MediaInfo(ctx, "hs.example", "pic"); err != nil || mi.QuarantinedBy != "@admin:hs.example" || len(mi.SHA256) != 64 {
		t.Fatalf("media info: %+v %v", mi, err)
	}
	var se404 *StatusError
	if _, err := a.MediaInfo(ctx, "hs.example", "nothing"); !errors.As(err, &se404) || se404.Status != 404 || FeedMissing(err) {
		t.Fatalf("media info of unknown media: %v", err)
	}
	var buf bytes.Buffer
	ct, n, err := a.DownloadQuarantined(ctx, "hs.example", "pic", &buf, 1<<20)
	if err != nil || ct != "image/png" || n != 13 || buf.String() != "picture bytes" {
		t.Fatalf("download past the quarantine: %q %d %q %v", ct, n, buf.String(), err)
	}
	if _, _, err := a.DownloadQuarantined(ctx, "hs.example", "pic", io.Discard, 5); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	var se *StatusError
	if _, _, err := a.DownloadQuarantined(ctx, "hs.example", "nothing", io.Discard, 100); !errors.As(err, &se) || se.Status != 404 {
		t.Fatalf("unknown media: %v", err)
	}
	if _, err := a.QuarantineChanges(ctx, 900000); !FeedPositionInvalid(err) || FeedMissing(err) {
		t.Fatalf("a position beyond the stream: %v", err)
	}
	f.NoQuarantineFeed.Store(true)
	_, err = a.QuarantineChanges(ctx, 0)
	if !FeedMissing(err) || FeedPositionInvalid(err) || strings.Contains(err.Error(), "from=") {
		t.Fatalf("an older Synapse: %v", err)
	}
	user, _ := NewAdmin(AdminConfig{Homeserver: f.URL, AccessToken: "user-token", Attempts: 1})
	if _, _, err := user.DownloadQuarantined(ctx, "hs.example", "pic", io.Discard, 100); !errors.As(err, &se) || se.Status != 400 || strings.Contains(err.Error(), "user-token") {
		t.Fatalf("a user's bypass: %v", err)
	}
}
