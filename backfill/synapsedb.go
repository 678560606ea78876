package backfill

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SynapseDB reads Synapse's PostgreSQL database, read-only: the media
// tables that name what the media store holds. Tables and columns as
// Synapse's schema defines them (github.com/element-hq/synapse,
// synapse/storage/schema/main/full_schemas and
// synapse/storage/databases/main/media_repository.py):
//
//	local_media_repository(media_id, media_type, user_id, ...)
//	remote_media_cache(media_origin, media_id, media_type, filesystem_id, ...)
type SynapseDB struct {
	pool *pgxpool.Pool
}

// OpenSynapseDB connects to Synapse's database at dsn (a PostgreSQL URL
// or key=value string) with at most conns connections, and checks it
// holds Synapse's media tables.
func OpenSynapseDB(ctx context.Context, dsn string, conns int) (*SynapseDB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's error quotes the DSN, password included: say less.
		return nil, errors.New("synapse database: the DSN does not parse")
	}
	cfg.MaxConns = int32(max(1, conns))
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("synapse database: %w", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_name IN ('local_media_repository', 'remote_media_cache')`).Scan(&n); err != nil {
		pool.Close()
		return nil, fmt.Errorf("synapse database: %w", err)
	}
	if n != 2 {
		pool.Close()
		return nil, errors.New("synapse database: no local_media_repository and remote_media_cache tables: not Synapse's database?")
	}
	return &SynapseDB{pool: pool}, nil
}

// Local looks up local media by its media ID.
func (db *SynapseDB) Local(ctx context.Context, mediaID string) (Media, bool, error) {
	var typ, user *string
	err := db.pool.QueryRow(ctx, `SELECT media_type, user_id FROM local_media_repository WHERE media_id = $1`, mediaID).Scan(&typ, &user)
	if errors.Is(err, pgx.ErrNoRows) {
		return Media{}, false, nil
	}
	if err != nil {
		return Media{}, false, err
	}
	return Media{ID: mediaID, ContentType: deref(typ), Uploader: deref(user)}, true, nil
}

// Remote maps a remote file's origin and filesystem ID to its media.
func (db *SynapseDB) Remote(ctx context.Context, origin, filesystemID string) (Media, bool, error) {
	var id string
	var typ *string
	err := db.pool.QueryRow(ctx, `SELECT media_id, media_type FROM remote_media_cache WHERE media_origin = $1 AND filesystem_id = $2`, origin, filesystemID).Scan(&id, &typ)
	if errors.Is(err, pgx.ErrNoRows) {
		return Media{}, false, nil
	}
	if err != nil {
		return Media{}, false, err
	}
	return Media{ID: id, ContentType: deref(typ)}, true, nil
}

// Close closes the connections.
func (db *SynapseDB) Close() { db.pool.Close() }

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
