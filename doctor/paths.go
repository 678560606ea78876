package doctor

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/dustin/go-humanize"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// checkTempDir prepares the spool directory as a start does
// (mediaproxy.PrivateSpoolDir: mediaguard-UID under temp_dir, 0700, ours,
// crash leftovers swept) and spills one byte into it, as an upload
// larger than memory_buffer would. The directory is the one of the user
// the doctor runs as: run it as the user Caddy runs as.
func checkTempDir(_ context.Context, cfg Config) []Result {
	r := Result{Name: "temp_dir"}
	var dir string
	var err error
	r.Took = timed(func() {
		if dir, err = mediaproxy.PrivateSpoolDir(cfg.TempDir); err != nil {
			return
		}
		var f *os.File
		if f, err = os.CreateTemp(dir, "mediaguard-doctor-*"); err != nil {
			return
		}
		_, err = f.Write([]byte{0})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		os.Remove(f.Name())
	})
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("uploads cannot spill to disk (they would be refused with 503): %v", err)
		return []Result{r}
	}
	r.Detail = fmt.Sprintf("%s: mode 0700, owned by uid %d, takes spill files", dir, os.Getuid())
	return []Result{r}
}

// checkAuditLog checks the audit log's path with audit.CheckPath, which
// neither opens nor repairs the log (a running mediaguard may be writing
// it).
func checkAuditLog(_ context.Context, cfg Config) []Result {
	r := Result{Name: "audit_log"}
	if cfg.AuditLog == "" {
		r.Status, r.Detail = Warn, "not set: blocks are not recorded durably, and a notice not yet delivered at a restart is lost"
		return []Result{r}
	}
	var pc audit.PathCheck
	var err error
	r.Took = timed(func() { pc, err = audit.CheckPath(cfg.AuditLog) })
	switch {
	case err != nil:
		r.Status, r.Detail = Fail, fmt.Sprintf("%s: cannot be written (a start fails): %v", cfg.AuditLog, err)
	case !pc.Exists:
		r.Detail = fmt.Sprintf("%s: created at start (0600) under %s (mode %04o, writable)", cfg.AuditLog, pc.Dir, pc.DirMode)
	default:
		r.Detail = fmt.Sprintf("%s: %s, mode %04o, writable; directory mode %04o", cfg.AuditLog, humanize.IBytes(uint64(pc.Size)), pc.Mode, pc.DirMode)
	}
	if err == nil && len(pc.Warnings) > 0 {
		r.Status = Warn
		r.Detail += "; " + strings.Join(pc.Warnings, "; ")
	}
	return []Result{r}
}

// checkLedger checks the media ledger's store with ledger.Check, which
// neither writes to it nor takes its lock (a running mediaguard holds
// both).
func checkLedger(ctx context.Context, cfg Config) []Result {
	r := Result{Name: "ledger"}
	if cfg.Ledger == nil {
		r.Status, r.Detail = Warn, "not set: verdicts are forgotten at a restart, and media stored before a bank grew is only caught when downloaded again"
		return []Result{r}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var detail string
	var err error
	r.Took = timed(func() { detail, err = ledger.Check(ctx, *cfg.Ledger) })
	if err != nil {
		r.Status, r.Detail = Fail, fmt.Sprintf("a start fails: %v", err)
		return []Result{r}
	}
	r.Detail = detail
	return []Result{r}
}
