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
//
// The homeserver is asked first who quarantined the media, as it is now.
// Media no longer quarantined (the record is stale: the feed repeats
// records) is not learned, and neither is media quarantined by the
// synapse_admin token's own user: mediaguard quarantines what a bank it
// already has matched, and learning that would grow the learned bank
// from its own matches, each within the PDQ threshold of the last.
func (p *Poller) learn(u *user, key, origin, mediaID string) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(u.ctx, u.s.FetchTimeout)
	defer cancel()
	info, err := u.admin.MediaInfo(ctx, origin, mediaID)
	if err != nil {
		return err
	}
	switch info.QuarantinedBy {
	case "":
		p.notQuarantined.Add(1)
		u.log.Info("learn: not learned: the media is not quarantined (any more)", zap.String("media", key))
		return nil
	case u.self:
		p.own.Add(1)
		u.log.Info("learn: not learned: quarantined by synapse_admin's own user, from a match of a bank mediaguard already has",
			zap.String("media", key), zap.String("quarantined_by", info.QuarantinedBy))
		return nil
	}
	if info.SHA256 != "" && p.reuse(u, key, info.SHA256) {
		return nil
	}
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
	if p.reuse(u, key, hex.EncodeToString(sum.Sum(nil))) {
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

// reuse puts under key the entries of media learned before with the same
// SHA-256, if any: Synapse quarantines every copy of the same bytes, each
// a record of the feed, and their entries are those of the first, hashed
// once.
func (p *Poller) reuse(u *user, key, sha256Hex string) bool {
	twin, ok := p.bank.KeyWith(matcher.OwnedEntry{Type: matcher.SHA256, Hash: sha256Hex})
	if !ok || p.bank.Put(key, p.bank.Entries(twin)) != nil {
		return false
	}
	p.learned.Add(1)
	p.reused.Add(1)
	u.log.Info("learn: quarantined media learned (the same bytes as media learned before)",
		zap.String("media", key), zap.String("same_as", twin))
	return true
}
