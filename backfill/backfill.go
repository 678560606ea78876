// Package backfill judges the media a Synapse homeserver already stores:
// it walks Synapse's media store, hashes every original file exactly as
// the proxy hashes a body (through the proxy's own scan, with its
// decoders, forms, variants, embedded files, hashing lanes and idle-
// priority worker processes), matches it against the configured banks,
// and writes each file's record to the media ledger, so that media
// uploaded before mediaguard ran is judged and later downloads of it are
// decided from the ledger. It is a dry run unless an Actor is given: then
// each match is quarantined and announced once.
//
// A run is resumable: the last file completed in walk order is kept in
// the ledger's meta (SetMeta) every few hundred files, and a rerun
// continues after it; a file the ledger already holds at the same size
// is not hashed again.
//
// It imports the stages it drives (mediaproxy, matcher, ledger, and for
// acting homeserver and notify) and never Caddy: the caddymodule command
// builds them from the configuration.
package backfill

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/mediaguard/mediaguard/ledger"
	"github.com/mediaguard/mediaguard/matcher"
	"github.com/mediaguard/mediaguard/mediaproxy"
)

// Scanner judges one stored file as the proxy would; *mediaproxy.Proxy
// is the one used outside tests (ScanFile).
type Scanner interface {
	ScanFile(ctx context.Context, f *os.File, size int64, contentType string) (mediaproxy.FileScan, error)
}

// Media is what Synapse's database knows of one stored file.
type Media struct {
	// ID is the media ID (for remote media, the origin's media ID, not
	// the filesystem ID the file is stored under).
	ID string
	// ContentType is the type the media was uploaded or fetched with.
	ContentType string
	// Uploader is the local user who uploaded it ("" for remote media).
	Uploader string
}

// Resolver reads Synapse's database. ok is false when it has no row for
// the file (media deleted from the database but not from disk).
type Resolver interface {
	// Local looks up local media by media ID (local_media_repository).
	Local(ctx context.Context, mediaID string) (m Media, ok bool, err error)
	// Remote maps a remote file's origin and filesystem ID to the
	// media (remote_media_cache).
	Remote(ctx context.Context, origin, filesystemID string) (m Media, ok bool, err error)
}

// Actor acts on a match found by a backfill: quarantine the media and
// tell moderators, once per match.
type Actor interface {
	RetroBlock(ctx context.Context, r ledger.Record, v matcher.Verdict) error
}

// Config configures a Run.
type Config struct {
	// MediaStore is Synapse's media_store_path. Required.
	MediaStore string
	// ServerName is the homeserver's name, the server of local media;
	// required when the store holds local_content.
	ServerName string
	// Resolver, when set, names remote media by their media ID and gives
	// content types and uploaders. Without it remote files are recorded
	// by content only, under Key{origin, "fs:"+filesystem ID}.
	Resolver Resolver
	// Scanner hashes files; Matcher judges them. Required.
	Scanner Scanner
	Matcher matcher.Matcher
	// Banks returns the fingerprint of the local banks the verdicts are
	// reached against (Record.Banks); nil records "".
	Banks func() string
	// Ledger receives a record per file and keeps the resume point.
	// Required.
	Ledger ledger.Store
	// Actor, when set, acts on every match; nil is a dry run.
	Actor Actor
	// Jobs is how many files are judged at once (default: cores-1, at
	// least 1).
	Jobs int
	// Restart ignores the stored resume point and walks from the start.
	Restart bool
	// Rehash hashes files the ledger already holds at the same size.
	Rehash bool
	// CheckpointEvery is how many files complete between resume-point
	// writes. The default is a two-hundredth of the store's files (at
	// least 1, at most 256), so a run killed outright (no Ctrl-C, which
	// saves the exact place) redoes at most 0.5% of the store.
	CheckpointEvery int
	// Out receives a line per match and per problem. Required.
	Out io.Writer
	// Progress, when set, receives progress: a line redrawn in place when
	// Terminal, else a line every ProgressInterval (default 10s).
	Progress         io.Writer
	Terminal         bool
	ProgressInterval time.Duration
}

// Summary counts what a Run did.
type Summary struct {
	// Files is the number of original files in the store (thumbnails and
	// URL previews excluded), counted before hashing.
	Files int
	// Thumbnails and URLCache count the renditions and URL previews'
	// downloads, skipped; Other counts files outside Synapse's layout.
	Thumbnails, URLCache, Other int
	// ResumedAfter is the resume point the run continued after ("" from
	// the start), Resumed how many files it passed over.
	ResumedAfter string
	Resumed      int
	// Known counts files the ledger already held at the same size.
	Known int
	// Hashed counts files hashed, Bytes their total size.
	Hashed int
	Bytes  int64
	// Verdicts of the files hashed.
	Blocked, Clean, Unscannable, Undecodable int
	// ExactOnly counts files over max_upload_size, judged by their exact
	// digests only; ByContent counts remote files recorded by content
	// only (no Resolver, or no row for them).
	ExactOnly, ByContent int
	// Vanished counts files deleted between the walk and their turn.
	Vanished int
	// Failed counts files that could not be judged (read or matcher
	// errors); a rerun with Restart retries them (the rest are Known).
	Failed int
	// Acted and ActFailed count matches acted on.
	Acted, ActFailed int
	Elapsed          time.Duration
	// Interrupted is set when the run stopped before the end.
	Interrupted bool
}

// resumeMeta is the ledger meta name of a media store's resume point.
func resumeMeta(root string) string { return "backfill.resume " + root }

// Run walks the media store and judges every original file. It returns
// what it did; on ctx's end it saves the resume point and returns ctx's
// error with the summary so far.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	start := time.Now()
	if cfg.MediaStore == "" || cfg.Scanner == nil || cfg.Matcher == nil || cfg.Ledger == nil || cfg.Out == nil {
		return Summary{}, errors.New("backfill: MediaStore, Scanner, Matcher, Ledger and Out are required")
	}
	root, err := filepath.Abs(cfg.MediaStore)
	if err != nil {
		return Summary{}, err
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return Summary{}, fmt.Errorf("backfill: media store %s is not a directory", cfg.MediaStore)
	}
	if cfg.ServerName == "" {
		if _, err := os.Stat(filepath.Join(root, dirLocal)); err == nil {
			return Summary{}, errors.New("backfill: the media store holds local media: the homeserver's name is required (--server-name)")
		}
	}
	if cfg.Jobs <= 0 {
		cfg.Jobs = max(1, runtime.NumCPU()-1)
	}
	if cfg.ProgressInterval <= 0 {
		cfg.ProgressInterval = 10 * time.Second
	}
	r := &run{cfg: cfg, root: root, meta: resumeMeta(root)}
	err = r.run(ctx)
	r.sum.Elapsed = time.Since(start)
	return r.sum, err
}
