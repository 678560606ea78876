package ledger

// The PostgreSQL store lets several proxies share one ledger, in the
// database a Synapse operator already runs
// (https://element-hq.github.io/synapse/latest/postgres.html). It uses
// pgx (https://github.com/jackc/pgx), pure Go, through a pgxpool.
//
// One table holds the records: the key and the exact digests as columns
// (the digests indexed, for lookups by digest), the forms, dihedral hashes
// and embedded digests as one bytea in the encoding of encode.go (nothing
// queries inside them). Scan walks ranges of a bigint identity column in
// short keyset-paginated queries, so no query holds a snapshot for a whole
// scan (a long-running snapshot holds back vacuum for every table of the
// database). The schema is created at open under a transaction-scoped
// advisory lock, so proxies starting together do not race to create it,
// and its version is kept in a table of its own.

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mediaguard/mediaguard/matcher"
)

// pgSchema is the version of the tables below; a database whose version
// is newer is refused.
const pgSchema = 1

// pgMigrateLock is the advisory lock key the schema is created under
// ("mgledger" in ASCII).
const pgMigrateLock = 0x6d676c6564676572

var pgCreate = []string{
	`CREATE TABLE IF NOT EXISTS mediaguard_ledger_schema (version integer NOT NULL)`,
	`CREATE TABLE IF NOT EXISTS mediaguard_ledger (
		id          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
		server      text NOT NULL,
		media_id    text NOT NULL,
		size        bigint NOT NULL,
		type        text NOT NULL,
		kind        text NOT NULL,
		has         smallint NOT NULL,
		md5         bytea,
		sha1        bytea,
		sha256      bytea,
		pdq         bytea,
		pdq_quality integer NOT NULL,
		extra       bytea,
		first_seen  timestamptz,
		last_seen   timestamptz,
		uploader    text NOT NULL,
		verdict     smallint NOT NULL,
		reason      text NOT NULL,
		banks       text NOT NULL,
		PRIMARY KEY (server, media_id)
	)`,
	`CREATE INDEX IF NOT EXISTS mediaguard_ledger_sha256 ON mediaguard_ledger (sha256) WHERE sha256 IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS mediaguard_ledger_md5 ON mediaguard_ledger (md5) WHERE md5 IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS mediaguard_ledger_sha1 ON mediaguard_ledger (sha1) WHERE sha1 IS NOT NULL`,
	`CREATE INDEX IF NOT EXISTS mediaguard_ledger_last_seen ON mediaguard_ledger (last_seen)`,
	`CREATE TABLE IF NOT EXISTS mediaguard_ledger_meta (name text PRIMARY KEY, value text NOT NULL)`,
}

const pgColumns = `server, media_id, size, type, kind, has, md5, sha1, sha256, pdq, pdq_quality, extra, first_seen, last_seen, uploader, verdict, reason, banks`

const pgUpsert = `INSERT INTO mediaguard_ledger (` + pgColumns + `)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
	ON CONFLICT (server, media_id) DO UPDATE SET
		size = EXCLUDED.size, type = EXCLUDED.type, kind = EXCLUDED.kind, has = EXCLUDED.has,
		md5 = EXCLUDED.md5, sha1 = EXCLUDED.sha1, sha256 = EXCLUDED.sha256, pdq = EXCLUDED.pdq,
		pdq_quality = EXCLUDED.pdq_quality, extra = EXCLUDED.extra,
		first_seen = LEAST(mediaguard_ledger.first_seen, EXCLUDED.first_seen),
		last_seen = EXCLUDED.last_seen, uploader = EXCLUDED.uploader,
		verdict = EXCLUDED.verdict, reason = EXCLUDED.reason, banks = EXCLUDED.banks`

// Postgres is the PostgreSQL [Store].
type Postgres struct {
	pool   *pgxpool.Pool
	closed atomic.Bool

	// held are the connections holding TryLock's advisory locks, closed
	// by Close.
	heldMu sync.Mutex
	held   map[*pgx.Conn]bool
}

// ErrBadDSN is wrapped by OpenPostgres for a DSN that does not parse. The
// DSN itself is never repeated in an error: it may hold a password.
var ErrBadDSN = errors.New("ledger: the postgres DSN does not parse as a libpq URL (postgres://...) or key=value string (its text is not shown: it may hold a password)")

// OpenPostgres connects to the database dsn names (a libpq URL or
// key=value string, https://www.postgresql.org/docs/current/libpq-connect.html#LIBPQ-CONNSTRING)
// and creates the ledger's tables when absent.
func OpenPostgres(ctx context.Context, dsn string) (*Postgres, error) {
	if dsn == "" {
		return nil, errors.New("ledger: the postgres DSN is empty")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, ErrBadDSN
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("ledger: postgres %s: %w", pgWhere(cfg), err)
	}
	s := &Postgres{pool: pool, held: map[*pgx.Conn]bool{}}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("ledger: postgres %s: %w", pgWhere(cfg), err)
	}
	return s, nil
}

// pgWhere names the database for errors, without the password.
func pgWhere(cfg *pgxpool.Config) string {
	c := cfg.ConnConfig
	return fmt.Sprintf("database %q on %s:%d as %q", c.Database, c.Host, c.Port, c.User)
}

func (s *Postgres) migrate(ctx context.Context) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(pgMigrateLock)); err != nil {
			return err
		}
		for _, q := range pgCreate {
			if _, err := tx.Exec(ctx, q); err != nil {
				return fmt.Errorf("creating the ledger's tables: %w", err)
			}
		}
		var v int
		err := tx.QueryRow(ctx, `SELECT version FROM mediaguard_ledger_schema`).Scan(&v)
		if errors.Is(err, pgx.ErrNoRows) {
			_, err = tx.Exec(ctx, `INSERT INTO mediaguard_ledger_schema (version) VALUES ($1)`, pgSchema)
			return err
		}
		if err != nil {
			return err
		}
		if v != pgSchema {
			return fmt.Errorf("ledger schema version %d, this mediaguard knows %d (created by a newer version?)", v, pgSchema)
		}
		return nil
	})
}

func (s *Postgres) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// pgTime is t to the second, NULL when zero.
func pgTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := time.Unix(t.Unix(), 0).UTC()
	return &u
}

// digest is b when Has says it is there, else NULL.
func digest(has bool, b []byte) []byte {
	if !has {
		return nil
	}
	return b
}

// Put implements [Store].
func (s *Postgres) Put(ctx context.Context, r Record) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := validate(&r); err != nil {
		return err
	}
	q := &r.Query
	var pdqBytes []byte
	quality := 0
	if q.Has&matcher.HasPDQ != 0 {
		pdqBytes, quality = appendHash(nil, q.PDQ), q.PDQQuality
	}
	_, err := s.pool.Exec(ctx, pgUpsert,
		r.Key.Server, r.Key.ID, r.Size, r.Type, string(q.Kind), int16(q.Has),
		digest(q.Has&matcher.HasMD5 != 0, q.MD5[:]),
		digest(q.Has&matcher.HasSHA1 != 0, q.SHA1[:]),
		digest(q.Has&matcher.HasSHA256 != 0, q.SHA256[:]),
		pdqBytes, quality, appendExtra(nil, q),
		pgTime(r.FirstSeen), pgTime(r.LastSeen),
		r.Uploader, int16(r.Verdict), r.Reason, r.Banks)
	if err != nil {
		return fmt.Errorf("ledger: put %s: %w", r.Key, err)
	}
	return nil
}

// pgRow receives one row of pgColumns.
type pgRow struct {
	has, verdict            int16
	md5, sha1, sha256, pdqB []byte
	extra                   []byte
	first, last             *time.Time
	kind                    string
	quality                 int32
}

func (p *pgRow) dest(r *Record) []any {
	return []any{&r.Key.Server, &r.Key.ID, &r.Size, &r.Type, &p.kind, &p.has,
		&p.md5, &p.sha1, &p.sha256, &p.pdqB, &p.quality, &p.extra,
		&p.first, &p.last, &r.Uploader, &p.verdict, &r.Reason, &r.Banks}
}

// fill completes r from the row's other columns.
func (p *pgRow) fill(r *Record) error {
	q := &r.Query
	q.Has, q.Kind, r.Verdict = matcher.Has(p.has), matcher.MediaKind(p.kind), Verdict(p.verdict)
	q.MD5, q.SHA1, q.SHA256, q.PDQ, q.PDQQuality = [16]byte{}, [20]byte{}, [32]byte{}, [4]uint64{}, 0
	r.FirstSeen, r.LastSeen = time.Time{}, time.Time{}
	if p.first != nil {
		r.FirstSeen = p.first.UTC()
	}
	if p.last != nil {
		r.LastSeen = p.last.UTC()
	}
	for _, d := range []struct {
		bit  matcher.Has
		src  []byte
		dst  []byte
		name string
	}{{matcher.HasMD5, p.md5, q.MD5[:], "md5"}, {matcher.HasSHA1, p.sha1, q.SHA1[:], "sha1"}, {matcher.HasSHA256, p.sha256, q.SHA256[:], "sha256"}} {
		if q.Has&d.bit == 0 {
			continue
		}
		if len(d.src) != len(d.dst) {
			return corruptf("%s: %s of %d bytes", r.Key, d.name, len(d.src))
		}
		copy(d.dst, d.src)
	}
	if q.Has&matcher.HasPDQ != 0 {
		if len(p.pdqB) != 32 {
			return corruptf("%s: pdq of %d bytes", r.Key, len(p.pdqB))
		}
		d := decoder{b: p.pdqB}
		q.PDQ, q.PDQQuality = d.hash(), int(p.quality)
	}
	if err := decodeExtra(p.extra, q); err != nil {
		return fmt.Errorf("%s: %w", r.Key, err)
	}
	return nil
}

// Get implements [Store].
func (s *Postgres) Get(ctx context.Context, k Key) (r Record, ok bool, err error) {
	if err := s.check(ctx); err != nil {
		return r, false, err
	}
	var p pgRow
	err = s.pool.QueryRow(ctx, `SELECT `+pgColumns+` FROM mediaguard_ledger WHERE server = $1 AND media_id = $2`, k.Server, k.ID).Scan(p.dest(&r)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, fmt.Errorf("ledger: get %s: %w", k, err)
	}
	if err := p.fill(&r); err != nil {
		return Record{}, false, err
	}
	return r, true, nil
}

// SetVerdict implements [Store].
func (s *Postgres) SetVerdict(ctx context.Context, k Key, v Verdict, reason, banks string) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if v < Clean || v > Undecodable {
		return false, fmt.Errorf("ledger: %s: invalid verdict %d", k, v)
	}
	tag, err := s.pool.Exec(ctx, `UPDATE mediaguard_ledger SET verdict = $3, reason = $4, banks = $5 WHERE server = $1 AND media_id = $2`, k.Server, k.ID, int16(v), reason, banks)
	if err != nil {
		return false, fmt.Errorf("ledger: set verdict of %s: %w", k, err)
	}
	return tag.RowsAffected() > 0, nil
}

// Scan implements [Store]: the id range is cut into parts, each read by
// its own goroutine scanChunk rows at a time, fn running between queries.
func (s *Postgres) Scan(ctx context.Context, parts int, fn func(r *Record) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var lo, hi *int64
	if err := s.pool.QueryRow(ctx, `SELECT min(id), max(id) FROM mediaguard_ledger`).Scan(&lo, &hi); err != nil {
		return fmt.Errorf("ledger: scan: %w", err)
	}
	if lo == nil {
		return nil
	}
	parts = max(parts, 1)
	span := *hi - *lo + 1
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for i := int64(0); i < int64(parts); i++ {
		from, to := *lo+span*i/int64(parts), *lo+span*(i+1)/int64(parts)
		if from == to {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.scanRange(ctx, from, to, fn); err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// scanRange reads the rows whose id is in [from, to).
func (s *Postgres) scanRange(ctx context.Context, from, to int64, fn func(*Record) error) error {
	recs := make([]Record, scanChunk)
	var p pgRow
	for {
		rows, err := s.pool.Query(ctx, `SELECT id, `+pgColumns+` FROM mediaguard_ledger WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3`, from, to, scanChunk)
		if err != nil {
			return fmt.Errorf("ledger: scan: %w", err)
		}
		n := 0
		var id int64
		for rows.Next() {
			r := &recs[n]
			if err := rows.Scan(append([]any{&id}, p.dest(r)...)...); err != nil {
				rows.Close()
				return fmt.Errorf("ledger: scan: %w", err)
			}
			if err := p.fill(r); err != nil {
				rows.Close()
				return err
			}
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("ledger: scan: %w", err)
		}
		for i := range n {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(&recs[i]); err != nil {
				return err
			}
		}
		if n < scanChunk {
			return ctx.Err()
		}
		from = id + 1
	}
}

// Prune implements [Store]; a record without LastSeen counts as last seen
// long ago, as in the embedded store.
func (s *Postgres) Prune(ctx context.Context, before time.Time) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM mediaguard_ledger WHERE last_seen IS NULL OR last_seen < $1`, before)
	if err != nil {
		return 0, fmt.Errorf("ledger: prune: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// Meta implements [Store].
func (s *Postgres) Meta(ctx context.Context, name string) (string, bool, error) {
	if err := s.check(ctx); err != nil {
		return "", false, err
	}
	var v string
	err := s.pool.QueryRow(ctx, `SELECT value FROM mediaguard_ledger_meta WHERE name = $1`, name).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("ledger: meta %q: %w", name, err)
	}
	return v, true, nil
}

// SetMeta implements [Store].
func (s *Postgres) SetMeta(ctx context.Context, name, value string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if name == "" {
		return errors.New("ledger: empty meta name")
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO mediaguard_ledger_meta (name, value) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, name, value)
	if err != nil {
		return fmt.Errorf("ledger: set meta %q: %w", name, err)
	}
	return nil
}

// pgLockKey is the advisory lock key of a TryLock name.
func pgLockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("mediaguard ledger lock: " + name))
	return int64(h.Sum64())
}

// TryLock implements [Store] with a session advisory lock
// (https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS)
// on a connection taken out of the pool and kept until release: the
// server drops the lock when that connection ends, so a proxy that dies
// holding it does not hold it for ever. Release closes the connection
// rather than returning it, so a lock can never ride along into the pool.
func (s *Postgres) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("ledger: lock %q: %w", name, err)
	}
	conn := pc.Hijack()
	key := pgLockKey(name)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil || !ok {
		conn.Close(context.Background())
		if err != nil {
			return nil, false, fmt.Errorf("ledger: lock %q: %w", name, err)
		}
		return nil, false, nil
	}
	s.heldMu.Lock()
	s.held[conn] = true
	s.heldMu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.heldMu.Lock()
			delete(s.held, conn)
			s.heldMu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Closing alone would free it; the unlock frees it
			// even if the close is slow to reach the server.
			conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, key)
			conn.Close(ctx)
		})
	}, true, nil
}

// Len implements [Store].
func (s *Postgres) Len(ctx context.Context) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM mediaguard_ledger`).Scan(&n); err != nil {
		return 0, fmt.Errorf("ledger: len: %w", err)
	}
	return int(n), nil
}

// Close implements [Store]; it ends the connections holding locks too.
func (s *Postgres) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.heldMu.Lock()
	for c := range s.held {
		c.Close(context.Background())
	}
	s.held = map[*pgx.Conn]bool{}
	s.heldMu.Unlock()
	s.pool.Close()
	return nil
}

// Touch implements [Store].
func (s *Postgres) Touch(ctx context.Context, k Key, at time.Time) (bool, error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	tag, err := s.pool.Exec(ctx, `UPDATE mediaguard_ledger SET last_seen = GREATEST(last_seen, $3) WHERE server = $1 AND media_id = $2`, k.Server, k.ID, at.Truncate(time.Second))
	if err != nil {
		return false, fmt.Errorf("ledger: touch %s: %w", k, err)
	}
	return tag.RowsAffected() > 0, nil
}
