// Package pgtest runs a real PostgreSQL server (Debian's postgresql
// package) for the tests of one test binary: started on first use in a
// temporary directory, listening only on a unix socket there, each test
// given a database of its own, and stopped when the tests end.
//
// A test package uses it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }
//
// and dsn := pgtest.Start(t) in a test. Without PostgreSQL installed Start
// skips loudly, or fails under MEDIAGUARD_REQUIRE_E2E=1 (CI).
package pgtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mediaguard/mediaguard/internal/e2e"
)

// Install is how to get the server binaries on Debian.
const Install = "apt-get install postgresql   (Debian; binaries in /usr/lib/postgresql/VERSION/bin)"

// superuser is the role initdb creates; the server trusts local sockets
// in its own private directory only.
const superuser = "mediaguard"

// port only names the socket file: the server listens on no TCP port.
const port = 5432

var (
	once     sync.Once
	server   *exec.Cmd
	exited   chan struct{}
	dir      string
	startErr error
	missing  bool
	logBuf   syncBuffer
	dbs      atomic.Int64
)

// Run runs the tests and stops the server if one was started.
func Run(m *testing.M) int {
	code := m.Run()
	stop()
	return code
}

// BinDir finds the directory of initdb and postgres: pg_config's bindir,
// else the newest /usr/lib/postgresql/*/bin (Debian keeps them off PATH).
// "" when there is none.
func BinDir() string {
	has := func(d string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if st, err := os.Stat(filepath.Join(d, b)); err != nil || st.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if d := strings.TrimSpace(string(out)); has(d) {
			return d
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if has(d) {
			return d
		}
	}
	return ""
}

func version(bindir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(bindir)))
	return v
}

// Start returns the DSN (key=value form) of a new, empty database on the
// test binary's server, starting the server on first use.
func Start(t testing.TB) string {
	t.Helper()
	once.Do(start)
	if missing {
		e2e.MissingTool(t, "PostgreSQL (initdb, postgres)", Install)
	}
	if startErr != nil {
		t.Fatalf("pgtest: %v\nserver log:\n%s", startErr, logBuf.String())
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbs.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn("postgres"))
	if err != nil {
		t.Fatalf("pgtest: %v\nserver log:\n%s", err, logBuf.String())
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("pgtest: create database: %v", err)
	}
	return dsn(name)
}

func dsn(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", dir, port, superuser, db)
}

// start initialises a cluster in a temporary directory and starts the
// server on it. As root it runs both as the postgres user: initdb and
// postgres refuse to run as root.
func start() {
	bin := BinDir()
	if bin == "" {
		missing = true
		return
	}
	var err error
	if dir, err = os.MkdirTemp("", "mgpg-"); err != nil {
		startErr = err
		return
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			startErr = fmt.Errorf("running as root, and there is no postgres user to run the server as: %v", err)
			return
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			startErr = err
			return
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", superuser, "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	initdb.Dir = dir
	if out, err := initdb.CombinedOutput(); err != nil {
		startErr = fmt.Errorf("initdb: %v\n%s", err, out)
		return
	}
	// Durability is not under test here: fsync off makes the tests'
	// many small commits fast.
	server = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	server.Dir = dir
	server.Stdout, server.Stderr = &logBuf, &logBuf
	// Pdeathsig: a test binary killed by a timeout must not leave a
	// server behind.
	server.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGQUIT}
	if err := server.Start(); err != nil {
		startErr = fmt.Errorf("postgres: %v", err)
		return
	}
	exited = make(chan struct{})
	go func() { server.Wait(); close(exited) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, dsn("postgres"))
		if err == nil {
			conn.Close(ctx)
			cancel()
			return
		}
		cancel()
		select {
		case <-exited:
			startErr = fmt.Errorf("postgres exited at start: %v", err)
			return
		default:
		}
		if time.Now().After(deadline) {
			startErr = fmt.Errorf("postgres did not accept connections within 60s: %v", err)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop shuts the server down (a fast shutdown: SIGINT) and removes its
// directory.
func stop() {
	if server != nil && server.Process != nil {
		server.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			server.Process.Kill()
			<-exited
		}
	}
	if dir != "" {
		os.RemoveAll(dir)
	}
}

// syncBuffer is the server's log, written by exec's copying goroutine and
// read by a failing test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
