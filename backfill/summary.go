package backfill

import (
	"fmt"
	"io"
	"time"

	"github.com/dustin/go-humanize"
)

// Print writes the summary for an operator; acted says whether matches
// were acted on (else it was a dry run).
func (s Summary) Print(w io.Writer, acted bool) {
	state := "done"
	if s.Interrupted {
		state = "INTERRUPTED (rerun to continue after the last file completed)"
	}
	fmt.Fprintf(w, "backfill %s in %s\n", state, s.Elapsed.Round(time.Millisecond))
	fmt.Fprintf(w, "  files        %d original files; skipped %d thumbnails, %d URL-preview files, %d outside Synapse's layout\n", s.Files, s.Thumbnails, s.URLCache, s.Other)
	if s.ResumedAfter != "" {
		fmt.Fprintf(w, "  resumed      after %s (%d files passed over; --restart to start over)\n", s.ResumedAfter, s.Resumed)
	}
	rate := ""
	if secs := s.Elapsed.Seconds(); secs > 0 && s.Hashed > 0 {
		rate = fmt.Sprintf(" (%.1f files/s, %s/s)", float64(s.Hashed)/secs, humanize.Bytes(uint64(float64(s.Bytes)/secs)))
	}
	fmt.Fprintf(w, "  hashed       %d files, %s%s; %d already in the ledger at the same size (--rehash to hash them again)\n", s.Hashed, humanize.Bytes(uint64(s.Bytes)), rate, s.Known)
	fmt.Fprintf(w, "  verdicts     %d blocked, %d clean, %d unscannable, %d undecodable\n", s.Blocked, s.Clean, s.Unscannable, s.Undecodable)
	if s.ExactOnly > 0 {
		fmt.Fprintf(w, "  exact only   %d files larger than max_upload_size were judged by their exact digests only\n", s.ExactOnly)
	}
	if s.ByContent > 0 {
		fmt.Fprintf(w, "  by content   %d remote files recorded by content only (key fs:FILESYSTEM_ID; their media IDs need --synapse-db)\n", s.ByContent)
	}
	if s.Vanished > 0 {
		fmt.Fprintf(w, "  vanished     %d files deleted while the backfill ran\n", s.Vanished)
	}
	if s.Failed > 0 {
		fmt.Fprintf(w, "  FAILED       %d files could not be judged (listed above); rerun with --restart to retry them\n", s.Failed)
	}
	switch {
	case acted:
		fmt.Fprintf(w, "  acted        %d matches quarantined and reported, %d failed\n", s.Acted, s.ActFailed)
	case s.Blocked > 0:
		fmt.Fprintf(w, "  dry run      nothing was quarantined or reported; rerun with --act to act on the matches\n")
	}
}
