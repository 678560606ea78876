package modcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/mediaguard/mediaguard/atomicfile"
)

// maxHandled bounds the event IDs remembered as handled. Only the events
// of the sync batch being worked through can come again (a restart
// resumes from the position before that batch), so a few hundred would
// do; the rest is margin for a long gap fetched at once.
const maxHandled = 2000

// state is what the bot keeps across restarts: where in the room's
// history it is, and which events it has handled since.
type state struct {
	// Version of the file's layout.
	Version int `json:"version"`
	// NextBatch is the /sync position after the last batch worked
	// through in full; "" before the first start.
	NextBatch string `json:"next_batch"`
	// Handled lists the event IDs of commands carried out, oldest first.
	Handled []string `json:"handled"`
	// SeenTS is the origin_server_ts (ms) of the newest event worked
	// through (at the first start, the time of it): when a gap is
	// fetched, anything older was before the position.
	SeenTS int64 `json:"seen_ts"`
	// Room is the power levels and creators in force at NextBatch: a
	// batch worked through again after a crash is judged by the levels
	// of its time, not by later ones (a member promoted since must not
	// have their earlier, ignored commands carried out).
	Room *roomState `json:"room,omitempty"`
}

const stateVersion = 1

// roomState is the management room's state that decides who may
// command, as the events' contents.
type roomState struct {
	PowerLevels json.RawMessage `json:"power_levels,omitempty"`
	Create      json.RawMessage `json:"create,omitempty"`
	Creator     string          `json:"creator,omitempty"`
}

// levels rebuilds the power levels from rs.
func (rs *roomState) levels() (PowerLevels, error) {
	var p PowerLevels
	if rs.Create != nil {
		p.SetCreate(rs.Creator, rs.Create)
	}
	if rs.PowerLevels != nil {
		if err := p.SetLevels(rs.PowerLevels); err != nil {
			return p, err
		}
	}
	return p, nil
}

// loadState reads the state file; a missing file is a first start.
func loadState(path string) (*state, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &state{Version: stateVersion}, nil
	}
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("state file %s is not the bot's JSON: %w", path, err)
	}
	if s.Version != stateVersion {
		return nil, fmt.Errorf("state file %s has version %d; this mediaguard reads %d", path, s.Version, stateVersion)
	}
	return &s, nil
}

// save replaces the state file atomically: a crash leaves the old
// position and list or the new, never a torn file.
func (s *state) save(path string) error {
	if len(s.Handled) > maxHandled {
		s.Handled = slices.Clone(s.Handled[len(s.Handled)-maxHandled:])
	}
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return atomicfile.WriteBytes(path, 0o600, b)
}

func (s *state) handled(eventID string) bool { return slices.Contains(s.Handled, eventID) }

// leases give one bot at a time a state file in this process. Caddy
// starts a reloaded config's apps before it stops the old ones, so for a
// moment two bots follow the same room: the new one waits for the old
// one's lease, then reads the position the old one saved last, so no
// command is carried out by both.
var leases sync.Map // absolute path -> chan struct{} (capacity 1)

// acquire waits for path's lease; it returns nil if ctx ends first.
func acquire(ctx context.Context, path string) (release func()) {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	v, _ := leases.LoadOrStore(path, make(chan struct{}, 1))
	sem := v.(chan struct{})
	select {
	case sem <- struct{}{}:
		return sync.OnceFunc(func() { <-sem })
	case <-ctx.Done():
		return nil
	}
}
