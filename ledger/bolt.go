package ledger

// The embedded store keeps the ledger in one file with bbolt
// (https://github.com/etcd-io/bbolt), etcd's maintained fork of BoltDB:
//
//   - pure Go, so the module still builds without cgo;
//   - one file, crash-safe without a recovery step: a copy-on-write B+tree
//     whose commits are fsync'd before the meta page flips, so a crash
//     leaves the last committed state (github.com/etcd-io/bbolt#readme,
//     "Caveats & Limitations" and "Transactions");
//   - readers run on a snapshot (MVCC) and never block the writer, which
//     is what a download path reading the ledger while uploads write it
//     needs; db.Batch coalesces concurrent writers into one commit, so
//     many requests' Puts cost one fsync, not one each;
//   - the file lock (flock) makes a second process fail at open instead
//     of corrupting the file.
//
// modernc.org/sqlite was the alternative in pure Go: a transpiled C
// library several times bigger in the binary and slower for what the
// ledger does (get and put one value by key, walk all keys), with SQL it
// would not use. Several proxies sharing a ledger use PostgreSQL instead
// (postgres.go).
//
// Layout: bucket "records" maps uvarint(server id) + media ID to the
// encoded record (encode.go); the server name and the bank fingerprint
// are interned in buckets "str2id" and "id2str" (a homeserver's ledger
// has a handful of servers and fingerprints, and storing an 18-byte name
// and a 71-byte fingerprint in every record would double it); "meta"
// holds Meta's values and "info" the layout version.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mediaguard/mediaguard/matcher"
)

// boltLayout is the layout version kept in the info bucket.
const boltLayout = 1

var (
	bucketRecords = []byte("records")
	bucketStr2ID  = []byte("str2id")
	bucketID2Str  = []byte("id2str")
	bucketMeta    = []byte("meta")
	bucketInfo    = []byte("info")
	keyLayout     = []byte("layout")
)

// BoltLockTimeout is how long OpenBolt waits for the file lock another
// process holds before it fails.
var BoltLockTimeout = 2 * time.Second

// scanChunk is how many records Scan and Prune handle per transaction: a
// read transaction held for a whole scan would keep the writer from
// growing the file (bbolt remaps under a lock that waits for readers), and
// fn may be slow (it matches against banks).
const scanChunk = 512

// Bolt is the embedded [Store]: one file that one process opens.
type Bolt struct {
	db   *bolt.DB
	path string

	closed atomic.Bool

	// strMu guards the interned strings learnt from committed
	// transactions; ids are never reused or removed.
	strMu sync.RWMutex
	ids   map[string]uint64
	strs  map[uint64]string

	lockMu sync.Mutex
	locks  map[string]bool
}

// OpenBolt opens the ledger file at path, creating it (mode 0600, and its
// directory 0700) when absent. An existing file that group or others may
// read is refused rather than tightened: the ledger says who uploaded what
// and what was blocked, and a widened mode is a deployment mistake the
// operator should see, not one to paper over. A file another process has
// open fails after BoltLockTimeout with an error naming the path.
func OpenBolt(path string) (*Bolt, error) {
	if path == "" {
		return nil, errors.New("ledger: the embedded ledger's path is empty")
	}
	if st, err := os.Stat(path); err == nil {
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("ledger: %s is not a regular file", path)
		}
		if perm := st.Mode().Perm(); perm&0o077 != 0 {
			return nil, fmt.Errorf("ledger: %s has mode %#o: group or others may read the ledger (who uploaded what, what was blocked); run  chmod 600 %s", path, perm, path)
		}
	} else if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("ledger: %w", err)
		}
	} else {
		return nil, fmt.Errorf("ledger: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: BoltLockTimeout,
		// The map freelist is bbolt's faster one for large files.
		FreelistType: bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("ledger: %s is in use by another process (its file lock was not free after %s); one mediaguard process opens an embedded ledger, several share a PostgreSQL one", path, BoltLockTimeout)
	}
	if err != nil {
		return nil, fmt.Errorf("ledger: open %s: %w", path, err)
	}
	s := &Bolt{db: db, path: path, ids: map[string]uint64{}, strs: map[uint64]string{}, locks: map[string]bool{}}
	if err := db.Update(s.setup); err != nil {
		db.Close()
		return nil, fmt.Errorf("ledger: %s: %w", path, err)
	}
	return s, nil
}

// setup creates the buckets of a new file and checks an old one's layout.
func (s *Bolt) setup(tx *bolt.Tx) error {
	info := tx.Bucket(bucketInfo)
	if info == nil {
		if tx.Bucket(bucketRecords) != nil {
			return errors.New("not a mediaguard ledger (no layout version)")
		}
		var err error
		if info, err = tx.CreateBucket(bucketInfo); err != nil {
			return err
		}
		if err := info.Put(keyLayout, binary.AppendUvarint(nil, boltLayout)); err != nil {
			return err
		}
	}
	v, n := binary.Uvarint(info.Get(keyLayout))
	if n <= 0 {
		return errors.New("not a mediaguard ledger (bad layout version)")
	}
	if v != boltLayout {
		return fmt.Errorf("ledger layout %d, this mediaguard reads %d (written by a newer version?)", v, boltLayout)
	}
	for _, b := range [][]byte{bucketRecords, bucketStr2ID, bucketID2Str, bucketMeta} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	return nil
}

// Path is the file's path.
func (s *Bolt) Path() string { return s.path }

func (s *Bolt) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// cachedID is the id of a string learnt from a committed transaction.
func (s *Bolt) cachedID(str string) (uint64, bool) {
	s.strMu.RLock()
	defer s.strMu.RUnlock()
	id, ok := s.ids[str]
	return id, ok
}

func (s *Bolt) learn(str string, id uint64) {
	s.strMu.Lock()
	s.ids[str], s.strs[id] = id, str
	s.strMu.Unlock()
}

// lookupID finds str's id without creating one; 0 when it has none.
func (s *Bolt) lookupID(tx *bolt.Tx, str string) uint64 {
	if id, ok := s.cachedID(str); ok {
		return id
	}
	v := tx.Bucket(bucketStr2ID).Get([]byte(str))
	if v == nil {
		return 0
	}
	id, n := binary.Uvarint(v)
	if n <= 0 {
		return 0
	}
	if !tx.Writable() {
		s.learn(str, id)
	}
	return id
}

// intern finds or creates str's id in a write transaction. The id is
// learnt by the caller once the transaction committed, never before: a
// batch that rolls back must not leave an id in memory that the file
// does not have.
func (s *Bolt) intern(tx *bolt.Tx, str string) (uint64, error) {
	if id := s.lookupID(tx, str); id != 0 {
		return id, nil
	}
	b := tx.Bucket(bucketStr2ID)
	id, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	enc := binary.AppendUvarint(nil, id)
	if err := b.Put([]byte(str), enc); err != nil {
		return 0, err
	}
	return id, tx.Bucket(bucketID2Str).Put(enc, []byte(str))
}

// str resolves an interned id.
func (s *Bolt) str(tx *bolt.Tx, id uint64) (string, error) {
	s.strMu.RLock()
	str, ok := s.strs[id]
	s.strMu.RUnlock()
	if ok {
		return str, nil
	}
	v := tx.Bucket(bucketID2Str).Get(binary.AppendUvarint(nil, id))
	if v == nil {
		return "", corruptf("no interned string %d", id)
	}
	str = string(v)
	if !tx.Writable() {
		s.learn(str, id)
	}
	return str, nil
}

func recordKey(serverID uint64, id string) []byte {
	return append(binary.AppendUvarint(make([]byte, 0, 2+len(id)), serverID), id...)
}

// decode reads a stored key and value into r.
func (s *Bolt) decode(tx *bolt.Tx, k, v []byte, r *Record) error {
	serverID, n := binary.Uvarint(k)
	if n <= 0 {
		return corruptf("key %q", k)
	}
	server, err := s.str(tx, serverID)
	if err != nil {
		return err
	}
	r.Key = Key{Server: server, ID: string(k[n:])}
	banksID, err := decodeValue(v, r)
	if err != nil {
		return fmt.Errorf("%s: %w", r.Key, err)
	}
	if banksID != 0 {
		if r.Banks, err = s.str(tx, banksID); err != nil {
			return err
		}
	}
	return nil
}

// Get implements [Store].
func (s *Bolt) Get(ctx context.Context, k Key) (r Record, ok bool, err error) {
	if err := s.check(ctx); err != nil {
		return r, false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		serverID := s.lookupID(tx, k.Server)
		if serverID == 0 {
			return nil
		}
		key := recordKey(serverID, k.ID)
		v := tx.Bucket(bucketRecords).Get(key)
		if v == nil {
			return nil
		}
		ok = true
		return s.decode(tx, key, v, &r)
	})
	return r, ok, s.wrap(err)
}

// wrap turns bbolt's closed-database error into ErrClosed.
func (s *Bolt) wrap(err error) error {
	if errors.Is(err, bolterrors.ErrDatabaseNotOpen) {
		return ErrClosed
	}
	return err
}

// Put implements [Store]. Concurrent Puts share one commit (db.Batch).
func (s *Bolt) Put(ctx context.Context, r Record) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if err := validate(&r); err != nil {
		return err
	}
	var serverID, banksID uint64
	err := s.db.Batch(func(tx *bolt.Tx) error {
		// Batch may run this again alone after a failed batch: it must
		// depend on nothing but tx.
		var err error
		serverID, banksID, err = s.putTx(tx, &r)
		return err
	})
	if err != nil {
		return s.wrap(err)
	}
	s.learn(r.Key.Server, serverID)
	if banksID != 0 {
		s.learn(r.Banks, banksID)
	}
	return nil
}

// putTx writes r in tx, keeping a stored older FirstSeen, and returns the
// ids it interned for the caller to learn once tx committed.
func (s *Bolt) putTx(tx *bolt.Tx, r *Record) (serverID, banksID uint64, err error) {
	if serverID, err = s.intern(tx, r.Key.Server); err != nil {
		return 0, 0, err
	}
	if r.Banks != "" {
		if banksID, err = s.intern(tx, r.Banks); err != nil {
			return 0, 0, err
		}
	}
	key := recordKey(serverID, r.Key.ID)
	b := tx.Bucket(bucketRecords)
	put := *r
	if old := b.Get(key); old != nil {
		if first, err := firstSeenOf(old); err == nil && olderFirst(first, put.FirstSeen) {
			put.FirstSeen = first
		}
	}
	return serverID, banksID, b.Put(key, appendValue(nil, &put, banksID))
}

// olderFirst reports whether the stored FirstSeen old is kept over new:
// it is known and earlier (an unknown, zero, FirstSeen never wins).
func olderFirst(old, new time.Time) bool {
	return !old.IsZero() && (new.IsZero() || old.Unix() < new.Unix())
}

// validate refuses a record no caller should write.
func validate(r *Record) error {
	if r.Key.Server == "" || r.Key.ID == "" {
		return fmt.Errorf("ledger: record without a key (%q)", r.Key.String())
	}
	if r.Verdict < Clean || r.Verdict > Undecodable {
		return fmt.Errorf("ledger: %s: invalid verdict %d", r.Key, r.Verdict)
	}
	return nil
}

// SetVerdict implements [Store].
func (s *Bolt) SetVerdict(ctx context.Context, k Key, v Verdict, reason, banks string) (ok bool, err error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	if v < Clean || v > Undecodable {
		return false, fmt.Errorf("ledger: %s: invalid verdict %d", k, v)
	}
	var banksID uint64
	err = s.db.Batch(func(tx *bolt.Tx) error {
		ok, banksID = false, 0
		serverID := s.lookupID(tx, k.Server)
		if serverID == 0 {
			return nil
		}
		key := recordKey(serverID, k.ID)
		b := tx.Bucket(bucketRecords)
		old := b.Get(key)
		if old == nil {
			return nil
		}
		var r Record
		if _, err := decodeValue(old, &r); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		r.Verdict, r.Reason, r.Banks = v, reason, banks
		if banks != "" {
			var err error
			if banksID, err = s.intern(tx, banks); err != nil {
				return err
			}
		}
		ok = true
		return b.Put(key, appendValue(nil, &r, banksID))
	})
	if err != nil {
		return false, s.wrap(err)
	}
	if banksID != 0 {
		s.learn(banks, banksID)
	}
	return ok, nil
}

// Scan implements [Store]: the keys are split into parts ranges (see
// splitKeys), each walked by its own goroutine in short read
// transactions of scanChunk records; fn runs outside any transaction.
func (s *Bolt) Scan(ctx context.Context, parts int, fn func(r *Record) error) error {
	_, err := s.scan(ctx, parts, nil, fn)
	return err
}

// scanPicked implements [pickScanner]: Scan, but each record's verdict
// and query are first decoded alone (decodeQuery) and asked of pick inside
// the read transaction, and only the records it picks are decoded in full
// and passed to fn. A retro-scan's matcher picks almost none, and the
// rest of a record (its key, times, strings and form names) is most of
// the cost of decoding it.
func (s *Bolt) scanPicked(ctx context.Context, parts int, pick func(Verdict, *matcher.Query) bool, fn func(r *Record) error) (int, error) {
	return s.scan(ctx, parts, pick, fn)
}

func (s *Bolt) scan(ctx context.Context, parts int, pick func(Verdict, *matcher.Query) bool, fn func(r *Record) error) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	var bounds [][]byte
	if err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketRecords).Cursor()
		first, _ := c.First()
		last, _ := c.Last()
		bounds = splitKeys(first, last, parts)
		return nil
	}); err != nil {
		return 0, s.wrap(err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		walked   atomic.Int64
	)
	for i := 0; i+1 < len(bounds); i++ {
		wg.Add(1)
		go func(lo, hi []byte) {
			defer wg.Done()
			n, err := s.scanRange(ctx, lo, hi, pick, fn)
			walked.Add(int64(n))
			if err != nil {
				errOnce.Do(func() { firstErr = err; cancel() })
			}
		}(bounds[i], bounds[i+1])
	}
	wg.Wait()
	return int(walked.Load()), firstErr
}

// scanRange walks the keys in [lo, hi) (nil: unbounded), passing to fn
// the records pick picks (all when pick is nil), and returns how many it
// walked.
func (s *Bolt) scanRange(ctx context.Context, lo, hi []byte, pick func(Verdict, *matcher.Query) bool, fn func(*Record) error) (int, error) {
	recs := make([]Record, scanChunk)
	var q matcher.Query
	next := lo
	total := 0
	for {
		var n, walked int
		var done bool
		err := s.db.View(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			var k, v []byte
			if next == nil {
				k, v = c.First()
			} else {
				k, v = c.Seek(next)
			}
			for ; k != nil && walked < scanChunk; k, v = c.Next() {
				if hi != nil && bytes.Compare(k, hi) >= 0 {
					break
				}
				walked++
				if pick != nil {
					verdict, err := decodeQuery(v, &q)
					if err != nil {
						return fmt.Errorf("key %q: %w", k, err)
					}
					if !pick(verdict, &q) {
						continue
					}
				}
				if err := s.decode(tx, k, v, &recs[n]); err != nil {
					return err
				}
				n++
			}
			if k == nil || (hi != nil && bytes.Compare(k, hi) >= 0) {
				done = true
			} else {
				next = append(next[:0:0], k...)
			}
			return nil
		})
		total += walked
		if err != nil {
			return total, s.wrap(err)
		}
		for i := range n {
			if err := ctx.Err(); err != nil {
				return total, err
			}
			if err := fn(&recs[i]); err != nil {
				return total, err
			}
		}
		if done {
			return total, ctx.Err()
		}
	}
}

// splitKeys returns parts+1 bounds (nil first and last: unbounded) that
// cut [first, last] into ranges of about equal share of the key space:
// the keys' common prefix followed by 8 bytes interpolated between the
// two keys' next 8. Media IDs are random strings, so equal shares of the
// space are about equal shares of the records. Bounds that coincide are
// merged, so there may be fewer ranges than parts. No keys, no ranges.
func splitKeys(first, last []byte, parts int) [][]byte {
	if first == nil {
		return nil
	}
	bounds := [][]byte{nil}
	p := 0
	for p < len(first) && p < len(last) && first[p] == last[p] {
		p++
	}
	word := func(k []byte) uint64 {
		var w [8]byte
		copy(w[:], k[min(p, len(k)):])
		return binary.BigEndian.Uint64(w[:])
	}
	lo, hi := word(first), word(last)
	for i := 1; i < parts && hi > lo; i++ {
		v := lo + uint64(float64(hi-lo)*float64(i)/float64(parts))
		b := binary.BigEndian.AppendUint64(append([]byte{}, first[:p]...), v)
		if prev := bounds[len(bounds)-1]; prev != nil && bytes.Compare(b, prev) <= 0 {
			continue
		}
		if bytes.Compare(b, first) <= 0 {
			continue
		}
		bounds = append(bounds, b)
	}
	return append(bounds, nil)
}

// Prune implements [Store], deleting in transactions of scanChunk keys.
func (s *Bolt) Prune(ctx context.Context, before time.Time) (int, error) {
	total := 0
	var next []byte
	for {
		if err := s.check(ctx); err != nil {
			return total, err
		}
		done := false
		err := s.db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketRecords)
			c := b.Cursor()
			var k, v []byte
			if next == nil {
				k, v = c.First()
			} else {
				k, v = c.Seek(next)
			}
			var doomed [][]byte
			for n := 0; k != nil && n < scanChunk; k, v = c.Next() {
				n++
				last, err := lastSeenOf(v)
				if err != nil {
					return fmt.Errorf("key %q: %w", k, err)
				}
				if last.Before(before) {
					doomed = append(doomed, k)
				}
			}
			if k == nil {
				done = true
			} else {
				next = append(next[:0:0], k...)
			}
			// Deleted after the walk: deleting under a cursor
			// that then moves on can skip keys.
			for _, k := range doomed {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			total += len(doomed)
			return nil
		})
		if err != nil {
			return total, s.wrap(err)
		}
		if done {
			return total, nil
		}
	}
}

// Meta implements [Store].
func (s *Bolt) Meta(ctx context.Context, name string) (value string, ok bool, err error) {
	if err := s.check(ctx); err != nil {
		return "", false, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketMeta).Get([]byte(name))
		value, ok = string(v), v != nil
		return nil
	})
	return value, ok, s.wrap(err)
}

// SetMeta implements [Store].
func (s *Bolt) SetMeta(ctx context.Context, name, value string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if name == "" {
		return errors.New("ledger: empty meta name")
	}
	return s.wrap(s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put([]byte(name), []byte(value))
	}))
}

// TryLock implements [Store]: the file lock already keeps every other
// process out, so a lock held in this process is held fleet-wide.
func (s *Bolt) TryLock(ctx context.Context, name string) (release func(), ok bool, err error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	if s.locks[name] {
		return nil, false, nil
	}
	s.locks[name] = true
	var once sync.Once
	return func() {
		once.Do(func() {
			s.lockMu.Lock()
			delete(s.locks, name)
			s.lockMu.Unlock()
		})
	}, true, nil
}

// Len implements [Store].
func (s *Bolt) Len(ctx context.Context) (n int, err error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	err = s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketRecords).Stats().KeyN
		return nil
	})
	return n, s.wrap(err)
}

// Close implements [Store]; it waits for running reads.
func (s *Bolt) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.db.Close()
}

// Compact writes a compacted copy of the ledger to dst (a new file, mode
// 0600; it must not exist): pages filled completely and the free pages
// left by deletes dropped. The copy is one snapshot (bbolt walks the
// ledger in one read transaction), so writes made during the copy are not
// in it: compact a ledger no proxy is writing, then move the copy into
// place.
func (s *Bolt) Compact(dst string) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("ledger: compact: %s exists", dst)
	}
	out, err := bolt.Open(dst, 0o600, &bolt.Options{Timeout: BoltLockTimeout, NoSync: true})
	if err != nil {
		return fmt.Errorf("ledger: compact: %w", err)
	}
	if err := bolt.Compact(out, s.db, 64<<20); err != nil {
		out.Close()
		return fmt.Errorf("ledger: compact %s to %s: %w", s.path, dst, err)
	}
	// NoSync above spared an fsync per intermediate commit; one at the
	// end makes the copy durable.
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("ledger: compact: %w", err)
	}
	return out.Close()
}

// Touch implements [Store].
func (s *Bolt) Touch(ctx context.Context, k Key, at time.Time) (ok bool, err error) {
	if err := s.check(ctx); err != nil {
		return false, err
	}
	at = at.Truncate(time.Second)
	err = s.db.Batch(func(tx *bolt.Tx) error {
		ok = false
		serverID := s.lookupID(tx, k.Server)
		if serverID == 0 {
			return nil
		}
		key := recordKey(serverID, k.ID)
		b := tx.Bucket(bucketRecords)
		old := b.Get(key)
		if old == nil {
			return nil
		}
		var r Record
		banksID, err := decodeValue(old, &r)
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		ok = true
		if !at.After(r.LastSeen) {
			return nil
		}
		r.LastSeen = at
		return b.Put(key, appendValue(nil, &r, banksID))
	})
	if err != nil {
		return false, s.wrap(err)
	}
	return ok, nil
}
