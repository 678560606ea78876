package ncmec

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// Checkpoint is how far a bank is synced, kept durably in
// CheckpointPath(bank) and replaced atomically after the bank file.
type Checkpoint struct {
	// Version is 1.
	Version int `json:"version"`
	// Bank is the bank's name and BaseURL the API it was synced from: a
	// checkpoint of another API is not resumed (the bank is synced again
	// from the start).
	Bank    string `json:"bank"`
	BaseURL string `json:"base_url"`
	// Through is the to of the last window read whole: every change
	// NCMEC made up to it is in the bank. The next sync starts there.
	Through time.Time `json:"through"`
	// BankThrough is the through of the bank file written last (its
	// header's): windows that change nothing move Through but leave the
	// file alone.
	BankThrough time.Time `json:"bank_through"`
	// SyncedAt is when that window was committed.
	SyncedAt time.Time `json:"synced_at"`
	// Entries and Counts describe the bank file written with it.
	Entries int    `json:"entries"`
	Counts  Counts `json:"counts"`
}

// LoadCheckpoint reads the checkpoint of the bank at path; ok is false
// when there is none (nothing synced yet).
func LoadCheckpoint(path string) (ck Checkpoint, ok bool, err error) {
	b, err := os.ReadFile(CheckpointPath(path))
	if errors.Is(err, fs.ErrNotExist) {
		return Checkpoint{}, false, nil
	}
	if err != nil {
		return Checkpoint{}, false, err
	}
	if err := json.Unmarshal(b, &ck); err != nil || ck.Version != 1 {
		return Checkpoint{}, false, fmt.Errorf("ncmec: checkpoint %s is unreadable (remove it to sync the bank again from the start): %v", CheckpointPath(path), err)
	}
	return ck, true, nil
}

func saveCheckpoint(path string, ck Checkpoint) error {
	ck.Version = 1
	return writeAtomic(CheckpointPath(path), func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ck)
	})
}
