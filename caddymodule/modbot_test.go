package caddymodule

import (
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

// The moderators' commands: their options in `notify matrix`, and how
// they map onto the service (the state file beside the audit log by
// default; watch_rooms refused until it exists).
func TestModeratorCommandsConfig(t *testing.T) {
	matrix := func(extra string) string {
		return "notify matrix {\n homeserver http://h\n access_token t\n room !r:h\n " + extra + "\n }"
	}
	for _, tc := range []struct{ in, want string }{
		{matrix("moderator_power_level high"), "moderator_power_level: want a whole number"},
		{matrix("moderator_power_level"), "moderator_power_level"},
		{matrix("state_file"), "state_file"},
		{matrix("watch_rooms"), `watch_rooms takes "all"`},
		{matrix("redact maybe"), "redact must be on or off"},
	} {
		src := "{\n\tmediaguard {\n\t\t" + tc.in + "\n\t}\n}\n:8080 {\n\tmediaguard\n}\n"
		_, _, err := caddyfile.Adapter{ServerType: serverType()}.Adapt([]byte(src), nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %q", tc.in, err, tc.want)
		}
	}

	level := 75
	for _, tc := range []struct {
		name      string
		app       App
		state     string
		level     int64 // -1: default (nil)
		wantError string
	}{
		{"beside the audit log", App{AuditLog: "/var/lib/mg/audit.log", Notify: &NotifySettings{Matrix: &MatrixNotify{}}}, "/var/lib/mg/audit.log.commands.json", -1, ""},
		{"state_file wins", App{AuditLog: "/a.log", Notify: &NotifySettings{Matrix: &MatrixNotify{StateFile: "/s.json", ModeratorPowerLevel: &level}}}, "/s.json", 75, ""},
		{"no place for state: off", App{Notify: &NotifySettings{Matrix: &MatrixNotify{}}}, "", -1, ""},
		{"watch_rooms", App{AuditLog: "/a.log", Notify: &NotifySettings{Matrix: &MatrixNotify{WatchRooms: []string{"all", "!r:h"}, Redact: true}}}, "/a.log.commands.json", -1, ""},
		{"watch_rooms without state", App{Notify: &NotifySettings{Matrix: &MatrixNotify{WatchRooms: []string{"all"}}}}, "", -1, "watch_rooms needs state_file"},
		{"watch_rooms bad room", App{AuditLog: "/a.log", Notify: &NotifySettings{Matrix: &MatrixNotify{WatchRooms: []string{"lobby"}}}}, "", -1, `not "lobby"`},
		{"redact alone", App{AuditLog: "/a.log", Notify: &NotifySettings{Matrix: &MatrixNotify{Redact: true}}}, "", -1, "redact needs watch_rooms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.app.Notify.Matrix
			m.Homeserver, m.AccessToken, m.Room = "http://127.0.0.1:8008", "secret", "!r:h"
			cfg, err := tc.app.plainConfig(caddy.NewReplacer())
			if tc.wantError != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantError) {
					t.Fatalf("error %v, want %q", err, tc.wantError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tc.state == "" && cfg.Commands != nil:
				t.Fatalf("commands on without a state file: %+v", cfg.Commands)
			case tc.state == "":
			case cfg.Commands == nil || cfg.Commands.StateFile != tc.state:
				t.Fatalf("commands = %+v, want state file %s", cfg.Commands, tc.state)
			case tc.level < 0 && cfg.Commands.ModeratorLevel != nil, tc.level >= 0 && (cfg.Commands.ModeratorLevel == nil || *cfg.Commands.ModeratorLevel != tc.level):
				t.Fatalf("moderator level = %v, want %d", cfg.Commands.ModeratorLevel, tc.level)
			}
		})
	}
}
