package notify

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"maunium.net/go/mautrix/id"
)

// RoomCheck is what CheckRoom found.
type RoomCheck struct {
	// RoomID is the room notices go to: Room itself, or the room its
	// alias names.
	RoomID string
	// Joined is whether the bot is a member of it now.
	Joined bool
}

// CheckRoom tells whether the bot (the token's user) is in the notice
// room, for a deployment check. It changes nothing: an alias is resolved
// through the room directory (GET
// /_matrix/client/v3/directory/room/{roomAlias},
// https://spec.matrix.org/v1.11/client-server-api/#get_matrixclientv3directoryroomroomalias)
// and the bot's rooms are listed (GET /_matrix/client/v3/joined_rooms,
// https://spec.matrix.org/v1.11/client-server-api/#get_matrixclientv3joined_rooms).
// A bot that is not joined yet is no error: Start joins (which accepts a
// pending invite), so Joined false with a nil error means "not yet". A
// rejected token or an unknown alias is an error. The token never appears
// in one.
func (m *Matrix) CheckRoom(ctx context.Context) (RoomCheck, error) {
	rc := RoomCheck{RoomID: m.cfg.Room}
	if strings.HasPrefix(m.cfg.Room, "#") {
		r, err := m.cli.ResolveAlias(ctx, id.RoomAlias(m.cfg.Room))
		if err != nil {
			return rc, fmt.Errorf("resolving the room alias %s: %w", m.cfg.Room, Explain(err))
		}
		if !strings.HasPrefix(r.RoomID.String(), "!") {
			return rc, fmt.Errorf("resolving the room alias %s: the answer names no room", m.cfg.Room)
		}
		rc.RoomID = r.RoomID.String()
	}
	j, err := m.cli.JoinedRooms(ctx)
	if err != nil {
		return rc, fmt.Errorf("listing the bot's rooms: %w", Explain(err))
	}
	rc.Joined = slices.Contains(j.JoinedRooms, id.RoomID(rc.RoomID))
	return rc, nil
}
