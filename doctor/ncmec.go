package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/mediaguard/mediaguard/ncmec"
)

// checkNCMEC checks each NCMEC sync: NCMEC accepts its credentials (GET
// /v2/status, which only says whose they are) and its bank is synced, and
// recently. It reads the checkpoint; it never syncs or writes.
func checkNCMEC(ctx context.Context, cfg Config) []Result {
	var out []Result
	for _, c := range cfg.NCMEC {
		r := Result{Name: "ncmec " + c.Name}
		var st ncmec.Status
		var err error
		r.Took = timed(func() {
			cctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			st, err = ncmec.Check(cctx, c)
		})
		var ae *ncmec.AuthError
		switch {
		case errors.As(err, &ae):
			r.Status, r.Detail = Fail, err.Error()
			out = append(out, r)
			continue
		case err != nil:
			r.Status, r.Detail = Fail, fmt.Sprintf("%s does not answer: %v", c.ResolvedBase(), err)
			out = append(out, r)
			continue
		}
		r.Detail = fmt.Sprintf("user %q (member %s %s) accepted by %s", c.Username, st.MemberID, st.MemberName, c.ResolvedBase())
		ck, ok, err := ncmec.LoadCheckpoint(c.Path)
		every := c.Every
		if every <= 0 {
			every = ncmec.DefaultEvery
		}
		switch {
		case err != nil:
			r.Status, r.Detail = Fail, r.Detail+"; "+err.Error()
		case !ok:
			r.Status, r.Detail = Warn, r.Detail+"; not synced yet (the first sync runs when mediaguard starts)"
		default:
			r.Detail += fmt.Sprintf("; %s synced through %s (%s behind), %d entries (md5 %d, sha1 %d, pdq %d, video_md5 %d)",
				c.Path, ck.Through.UTC().Format(time.RFC3339), time.Since(ck.Through).Round(time.Second), ck.Entries,
				ck.Counts.MD5, ck.Counts.SHA1, ck.Counts.PDQ, ck.Counts.VideoMD5)
			if since := time.Since(ck.SyncedAt); since > max(3*every, time.Hour) {
				r.Status = Warn
				r.Detail += fmt.Sprintf("; last synced %s ago: look for \"ncmec sync failed\" in the log", since.Round(time.Minute))
			}
		}
		out = append(out, r)
	}
	return out
}

// ncmecPending reports whether path is an NCMEC-synced bank whose file a
// start has not created yet.
func ncmecPending(cfg Config, path string) bool {
	for _, c := range cfg.NCMEC {
		if c.Path == path {
			_, err := os.Stat(path)
			return errors.Is(err, fs.ErrNotExist)
		}
	}
	return false
}
