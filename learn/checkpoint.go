package learn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/mediaguard/mediaguard/atomicfile"
)

// checkpoint is how far the feed has been applied to the bank, kept
// beside the bank file (CheckpointPath) and replaced atomically after
// each page's changes are in the bank file: a crash replays at most one
// page, whose changes are idempotent.
type checkpoint struct {
	// Homeserver is the admin API the position belongs to: a position in
	// another homeserver's feed means nothing here.
	Homeserver string `json:"homeserver"`
	// NextBatch is the feed position to ask from next.
	NextBatch int64 `json:"next_batch"`
	// Pending are quarantined media that could not be fetched yet, by
	// key, retried with backoff until MaxAttempts, so that one media
	// never holds up the feed.
	Pending map[string]*pending `json:"pending,omitempty"`
}

// pending is one media whose fetch failed.
type pending struct {
	// Origin and MediaID name it in the feed.
	Origin  string `json:"origin"`
	MediaID string `json:"media_id"`
	// Attempts is how many fetches failed.
	Attempts int `json:"attempts"`
	// FirstFailed and NextTry are when it first failed and when it is
	// tried again.
	FirstFailed time.Time `json:"first_failed"`
	NextTry     time.Time `json:"next_try"`
	// LastError is why the last attempt failed (never a token).
	LastError string `json:"last_error"`
}

// CheckpointPath is where the checkpoint of the bank at bankPath is kept.
func CheckpointPath(bankPath string) string { return bankPath + ".checkpoint" }

// loadCheckpoint reads the checkpoint at path; a missing file is the
// start of the feed.
func loadCheckpoint(path string) (checkpoint, error) {
	var cp checkpoint
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cp, nil
	}
	if err != nil {
		return cp, fmt.Errorf("learn: checkpoint: %w", err)
	}
	if err := json.Unmarshal(b, &cp); err != nil {
		return cp, fmt.Errorf("learn: checkpoint %s is damaged (%v): remove it to read the feed from its start again (every change is idempotent)", path, err)
	}
	return cp, nil
}

// save replaces the checkpoint file.
func (cp *checkpoint) save(path string) error {
	b, err := json.MarshalIndent(cp, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteBytes(path, 0o600, append(b, '\n')); err != nil {
		return fmt.Errorf("learn: checkpoint: %w", err)
	}
	return nil
}

// Position is what the checkpoint of the bank at bankPath says: the feed
// position applied, the homeserver it belongs to and how many media wait
// for another fetch; all zero when there is none yet. It reads, never
// writes (mediaguard doctor).
func Position(bankPath string) (nextBatch int64, homeserver string, pending int, err error) {
	cp, err := loadCheckpoint(CheckpointPath(bankPath))
	return cp.NextBatch, cp.Homeserver, len(cp.Pending), err
}
