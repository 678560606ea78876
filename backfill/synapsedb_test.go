package backfill

import (
	"bytes"
	"context"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediaguard/mediaguard/internal/pgtest"
	"github.com/mediaguard/mediaguard/ledger"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// The --synapse-db mapping against a real PostgreSQL holding Synapse's
// media tables: remote files are named by their media ID, local ones get
// their uploader, and a file with no row falls back to its content.
func TestSynapseDBNamesRemoteMedia(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	// The columns the backfill reads, as Synapse's schema has them.
	for _, q := range []string{
		`CREATE TABLE local_media_repository (media_id TEXT, media_type TEXT, media_length INTEGER, created_ts BIGINT, upload_name TEXT, user_id TEXT, quarantined_by TEXT, url_cache TEXT, last_access_ts BIGINT, safe_from_quarantine BOOLEAN NOT NULL DEFAULT FALSE, UNIQUE (media_id))`,
		`CREATE TABLE remote_media_cache (media_origin TEXT, media_id TEXT, media_type TEXT, created_ts BIGINT, upload_name TEXT, media_length INTEGER, filesystem_id TEXT, last_access_ts BIGINT, quarantined_by TEXT, UNIQUE (media_origin, media_id))`,
		`INSERT INTO local_media_repository (media_id, media_type, user_id) VALUES ('ListedAsStoredxxxxxxxxxx', 'image/jpeg', '@alice:hs.example')`,
		`INSERT INTO remote_media_cache (media_origin, media_id, media_type, filesystem_id) VALUES ('other.example', 'TheirGifMediaID', 'image/gif', 'GifFrame2xxxxxxxxxxxxxxx')`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	db, err := OpenSynapseDB(ctx, dsn, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	root := t.TempDir()
	_, line := synapseStore(t, root)
	p, local := newProxy(t, line)
	st := newStore(t)
	var out bytes.Buffer
	cfg := baseConfig(root, p, local, st, &out)
	cfg.Resolver = db
	sum, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gif, ok := st.record(ledger.Key{Server: "other.example", ID: "TheirGifMediaID"})
	if !ok || gif.Verdict != ledger.Blocked {
		t.Errorf("the remote GIF is not recorded under its media ID: %+v", gif)
	}
	if !bytes.Contains(out.Bytes(), []byte("MATCH   mxc://other.example/TheirGifMediaID  remote_content/other.example/Gi/fF/rame2")) {
		t.Errorf("output:\n%s", out.String())
	}
	if r, _ := st.record(ledger.Key{Server: serverName, ID: "ListedAsStoredxxxxxxxxxx"}); r.Uploader != "@alice:hs.example" {
		t.Errorf("uploader %q", r.Uploader)
	}
	if _, ok := st.record(ledger.Key{Server: "other.example", ID: "fs:CleanPngxxxxxxxxxxxxxxxx"}); !ok || sum.ByContent != 1 {
		t.Errorf("the remote file with no row: recorded by content %v, %d by content", ok, sum.ByContent)
	}
	if _, err := OpenSynapseDB(ctx, "host=/nonexistent port=1 password=hunter2", 1); err == nil || bytes.Contains([]byte(err.Error()), []byte("hunter2")) {
		t.Errorf("a bad DSN: %v", err)
	}
}
