package caddymodule

import (
	"errors"
	"strconv"
	"strings"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"

	"github.com/mediaguard/mediaguard/service"
)

// commandsStateSuffix names the bot's state file beside the audit log
// when state_file is not set.
const commandsStateSuffix = ".commands.json"

// parseMatrixModeration reads the `notify matrix` options of the
// moderators' commands; it reports whether d's option was one of them
// (setting *err when its value is wrong).
func parseMatrixModeration(d *caddyfile.Dispenser, m *MatrixNotify, err *error) bool {
	switch d.Val() {
	case "moderator_power_level":
		// Power levels are integers, negative ones included
		// (https://spec.matrix.org/v1.11/client-server-api/#mroompower_levels).
		n, e := intArg(d, -1<<53, 1<<53)
		if *err = e; e == nil {
			m.ModeratorPowerLevel = &n
		}
	case "state_file":
		if !d.Args(&m.StateFile) {
			*err = d.ArgErr()
		}
	case "watch_rooms":
		m.WatchRooms = d.RemainingArgs()
		if len(m.WatchRooms) == 0 {
			*err = d.Errf(`notify matrix: watch_rooms takes "all" or room IDs and quoted aliases`)
		}
	case "redact":
		var v string
		switch {
		case !d.Args(&v):
			*err = d.ArgErr()
		case v == "on":
			m.Redact = true
		case v == "off":
			m.Redact = false
		default:
			*err = d.Errf("notify matrix: redact must be on or off, not %q", v)
		}
	default:
		return false
	}
	return true
}

// moderatorCommands is the service's commands configuration for the
// Matrix notifier m: the bot takes moderators' commands (and watches
// rooms) when it has a state file (state_file, or beside the audit log).
func (a *App) moderatorCommands(repl replacer, m *MatrixNotify) (*service.CommandsConfig, error) {
	if m.Redact && len(m.WatchRooms) == 0 {
		return nil, errors.New("mediaguard: notify matrix: redact needs watch_rooms")
	}
	path := repl.ReplaceAll(m.StateFile, "")
	if path == "" && a.AuditLog != "" {
		path = strings.TrimSuffix(a.AuditLog, "/") + commandsStateSuffix
	}
	if path == "" {
		if len(m.WatchRooms) > 0 {
			return nil, errors.New("mediaguard: notify matrix: watch_rooms needs state_file (or audit_log) so that a restart judges no event twice")
		}
		if a.log != nil {
			a.log.Warn("moderators' commands are off: the bot needs a state file to neither replay nor lose commands; set state_file in notify matrix, or audit_log")
		}
		return nil, nil
	}
	cc := &service.CommandsConfig{StateFile: path, Redact: m.Redact}
	for _, r := range m.WatchRooms {
		r = repl.ReplaceAll(r, "")
		if r != "all" && !strings.HasPrefix(r, "!") && !strings.HasPrefix(r, "#") {
			return nil, errors.New(`mediaguard: notify matrix: watch_rooms takes "all" or room IDs (!id:server) and aliases (#alias:server, quoted in a Caddyfile), not ` + strconv.Quote(r))
		}
		cc.WatchRooms = append(cc.WatchRooms, r)
	}
	if m.ModeratorPowerLevel != nil {
		l := int64(*m.ModeratorPowerLevel)
		cc.ModeratorLevel = &l
	}
	return cc, nil
}
