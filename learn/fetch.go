package learn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/matcher"
)

// tempPrefix names the file a fetched media is held in. It starts as the
// proxy's spool files do, so that in the proxy's spool directory a
// leftover of a crash is swept with them at the next start.
const tempPrefix = "mediaguard-spool-learn-"

// learn fetches one quarantined media from the homeserver as an admin,
// past its quarantine, hashes it with the proxy's own scan and puts its
// entries in the bank under key (written by the next commit). The bytes
// are held in a private temporary file while they are hashed and removed
// at once; they are never logged.
func (p *Poller) learn(u *user, key, origin, mediaID string) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(u.ctx, u.s.FetchTimeout)
	defer cancel()
	f, err := os.CreateTemp(u.s.TempDir, tempPrefix+"*")
	if err != nil {
		return fmt.Errorf("learn: a temporary file for the media: %w", err)
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	sum := sha256.New()
	ct, n, err := u.admin.DownloadQuarantined(ctx, origin, mediaID, io.MultiWriter(f, sum), u.s.MaxSize)
	if err != nil {
		return err
	}
	digest := hex.EncodeToString(sum.Sum(nil))
	// Synapse quarantines every copy of the same bytes, each a record of
	// the feed: their entries are those of the first, hashed once.
	if twin, ok := p.bank.KeyWith(matcher.OwnedEntry{Type: matcher.SHA256, Hash: digest}); ok {
		if err := p.bank.Put(key, p.bank.Entries(twin)); err != nil {
			return err
		}
		p.learned.Add(1)
		p.reused.Add(1)
		u.log.Info("learn: quarantined media learned (the same bytes as media learned before)",
			zap.String("media", key), zap.String("same_as", twin))
		return nil
	}
	fs, err := u.s.Scanner.ScanFile(ctx, f, n, ct)
	if err != nil {
		return fmt.Errorf("learn: hashing: %w", err)
	}
	entries := entriesOf(fs, u.s.MinPDQQuality)
	if err := p.bank.Put(key, entries); err != nil {
		return err
	}
	p.learned.Add(1)
	fields := []zap.Field{zap.String("media", key), zap.Int64("size", n), zap.String("format", fs.Format),
		zap.Int("pdq_hashes", pdqCount(entries)), zap.Duration("took", time.Since(start))}
	switch {
	case fs.ExactOnly:
		fields = append(fields, zap.String("note", "larger than max_upload_size: its exact digests only"))
	case fs.Undecodable != "":
		fields = append(fields, zap.String("note", "undecodable, its exact digests only: "+fs.Undecodable))
	case fs.Unscannable != "" && pdqCount(entries) == 0:
		fields = append(fields, zap.String("note", "no picture to hash, its exact digests only: "+fs.Unscannable))
	}
	u.log.Info("learn: quarantined media learned", fields...)
	return nil
}
