package notify

import (
	"context"
	"strings"
	"testing"

	"github.com/mediaguard/mediaguard/internal/fakes"
)

// CheckRoom reads whether the bot is in the room, resolving an alias, and
// changes nothing (no join).
func TestCheckRoom(t *testing.T) {
	f := fakes.NewSynapse(t)
	f.Users["bot-token"] = "@bot:hs.example"
	f.Joined["@bot:hs.example"] = []string{"!in:hs.example"}
	f.Aliases["#mod:hs.example"] = "!in:hs.example"
	for _, tc := range []struct {
		name, token, room, roomID string
		joined                    bool
		err                       string
	}{
		{"joined", "bot-token", "!in:hs.example", "!in:hs.example", true, ""},
		{"alias", "bot-token", "#mod:hs.example", "!in:hs.example", true, ""},
		{"not joined yet", "bot-token", "!out:hs.example", "!out:hs.example", false, ""},
		{"unknown alias", "bot-token", "#nope:hs.example", "", false, "404 M_NOT_FOUND"},
		{"token rejected", "stale-bot-token", "!in:hs.example", "", false, "401 M_UNKNOWN_TOKEN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := NewMatrix(MatrixConfig{Homeserver: f.URL, AccessToken: tc.token, Room: tc.room})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			before := len(f.Calls())
			rc, err := m.CheckRoom(context.Background())
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), tc.token) {
					t.Fatalf("error %v, want %q without the token", err, tc.err)
				}
				return
			}
			if err != nil || rc.RoomID != tc.roomID || rc.Joined != tc.joined {
				t.Fatalf("CheckRoom = %+v, %v", rc, err)
			}
			for _, c := range f.Calls()[before:] {
				if c.Method != "GET" {
					t.Fatalf("CheckRoom changed something: %s %s", c.Method, c.Path)
				}
			}
		})
	}
}
