package modcmd

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// DefaultModeratorLevel is the power level a member needs to command the
// bot unless configured otherwise: Matrix clients' "Moderator" preset.
const DefaultModeratorLevel = 50

// PowerLevels is what the bot needs of a room's m.room.power_levels and
// m.room.create: each member's level
// (https://spec.matrix.org/v1.11/client-server-api/#mroompower_levels).
type PowerLevels struct {
	// Users maps user IDs to their levels.
	Users map[string]int64
	// UsersDefault is the level of everyone not in Users.
	UsersDefault int64
	// Creators have unlimited power (room version 12: creators are not
	// listed in Users, https://spec.matrix.org/v1.16/rooms/v12/), or 100
	// in a room without power levels (the spec's default for the
	// creator).
	Creators map[string]bool
	// creatorsUnlimited is set for room versions whose creators outrank
	// every level.
	creatorsUnlimited bool
	// hasLevels is false until a power_levels event was read.
	hasLevels bool
}

// Level is userID's power level in the room.
func (p *PowerLevels) Level(userID string) int64 {
	if p.Creators[userID] && (p.creatorsUnlimited || !p.hasLevels) {
		if p.creatorsUnlimited {
			return math.MaxInt64
		}
		return 100 // no power_levels event: the creator has 100
	}
	if l, ok := p.Users[userID]; ok {
		return l
	}
	return p.UsersDefault
}

// SetLevels reads the content of an m.room.power_levels event. Levels
// are integers; rooms of old versions may hold them as strings of digits
// (servers accepted "50" before room version 10,
// https://spec.matrix.org/v1.11/rooms/v10/), so those are read too. An
// entry that is neither is skipped: a corrupt entry must not raise
// anyone to moderator. Content that is not an object leaves p as it was
// and returns the error.
func (p *PowerLevels) SetLevels(content json.RawMessage) error {
	var raw struct {
		Users        map[string]json.RawMessage `json:"users"`
		UsersDefault json.RawMessage            `json:"users_default"`
	}
	if err := json.Unmarshal(content, &raw); err != nil {
		return err
	}
	users := make(map[string]int64, len(raw.Users))
	for u, v := range raw.Users {
		if l, ok := powerInt(v); ok {
			users[u] = l
		}
	}
	def, ok := powerInt(raw.UsersDefault)
	if !ok {
		def = 0 // absent (or unreadable): the spec's default
	}
	p.Users, p.UsersDefault, p.hasLevels = users, def, true
	return nil
}

// SetCreate reads the m.room.create event: its sender is the creator, and
// from room version 12 on, the creators (sender and
// additional_creators) outrank every power level.
func (p *PowerLevels) SetCreate(sender string, content json.RawMessage) {
	var c struct {
		RoomVersion        string   `json:"room_version"`
		AdditionalCreators []string `json:"additional_creators"`
	}
	_ = json.Unmarshal(content, &c) // a malformed create event adds no one
	p.Creators = map[string]bool{}
	if sender != "" {
		p.Creators[sender] = true
	}
	// Version 12 (and MSC4289's unstable name org.matrix.hydra.11) make
	// creators privileged; earlier versions only default them to 100.
	p.creatorsUnlimited = c.RoomVersion == "12" || c.RoomVersion == "org.matrix.hydra.11"
	if p.creatorsUnlimited {
		for _, u := range c.AdditionalCreators {
			p.Creators[u] = true
		}
	}
}

// powerInt reads a power level: a JSON integer, or a string of one.
func powerInt(v json.RawMessage) (int64, bool) {
	s := strings.TrimSpace(string(v))
	if s == "" || s == "null" {
		return 0, false
	}
	if s[0] == '"' {
		var str string
		if json.Unmarshal(v, &str) != nil {
			return 0, false
		}
		s = strings.TrimSpace(str)
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
