package notify

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
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
		status, body, _, err := m.do(ctx, http.MethodGet, "/_matrix/client/v3/directory/room/"+url.PathEscape(m.cfg.Room), nil)
		if err != nil {
			return rc, err
		}
		var r struct {
			RoomID string `json:"room_id"`
		}
		if status != http.StatusOK || json.Unmarshal(body, &r) != nil || !strings.HasPrefix(r.RoomID, "!") {
			return rc, fmt.Errorf("resolving the room alias %s: HTTP %d %s", m.cfg.Room, status, errcodeOf(body))
		}
		rc.RoomID = r.RoomID
	}
	status, body, _, err := m.do(ctx, http.MethodGet, "/_matrix/client/v3/joined_rooms", nil)
	if err != nil {
		return rc, err
	}
	var j struct {
		Rooms []string `json:"joined_rooms"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &j) != nil {
		return rc, fmt.Errorf("listing the bot's rooms: HTTP %d %s", status, errcodeOf(body))
	}
	rc.Joined = slices.Contains(j.Rooms, rc.RoomID)
	return rc, nil
}
