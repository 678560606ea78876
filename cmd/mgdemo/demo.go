package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mediaguard/mediaguard/internal/e2e"
	"github.com/mediaguard/mediaguard/internal/testimg"
	"github.com/mediaguard/mediaguard/internal/testkit"
)

// options are mgdemo's flags and where it writes.
type options struct {
	Caddy  string // bin/caddy
	Bank   string // the bank to copy into the directory
	Listed string // a picture the bank lists
	Check  bool   // run the scenario and stop, instead of waiting for a signal
	// Out receives what a user reads: addresses, accounts, curl lines, the
	// transcript. Log receives progress and diagnostics. Both may be the
	// same writer; it must be safe for concurrent use.
	Out, Log io.Writer
	// OnDir, if set, is told the temporary directory as soon as it exists.
	OnDir func(dir string)
}

// report is what a finished run leaves to check: the directory, which
// should be gone, and the addresses of Dendrite and Caddy, which should
// no longer answer.
type report struct {
	Dir  string
	URLs []string
}

// The accounts. Dendrite wants passwords of at least 8 characters; these
// are fixed so a browser client can log in with what the banner shows.
// The homeserver lives on loopback for the few minutes of the demo.
var (
	botAccount   = account{"mediaguard", "mediaguard-demo"}
	modAccount   = account{"moderator", "moderator-demo"}
	userAccounts = []account{{"alice", "alice-demo"}, {"bob", "bob-demo"}}
)

type account struct{ localpart, password string }

// roomAliasName is the local part of the management room's alias:
// mediaguard's notifier joins by it, as a deployment names Mjolnir's room.
const roomAliasName = "moderators"

// httpClient talks to the homeserver and Caddy on loopback only.
var httpClient = &http.Client{
	Timeout:   60 * time.Second,
	Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4},
}

// inputs are what the demo needs from the repository and the machine,
// checked before anything starts.
type inputs struct {
	caddy      string // absolute path of bin/caddy
	listed     string // absolute path of the listed picture
	listedHash string // its SHA-256, in hex
	bank       []byte // the demo bank
}

// preflight checks that Caddy, Dendrite and the demo files are there, so
// a missing one is one clear message and nothing to stop.
func preflight(o options) (in inputs, err error) {
	if st, err := os.Stat(o.Caddy); err != nil || st.IsDir() {
		return in, fmt.Errorf("no Caddy binary at %s: run `make build` (make demo does)", o.Caddy)
	}
	if dir, looked := e2e.FindDendrite(); dir == "" {
		return in, fmt.Errorf("Dendrite is not installed (looked in %s): run scripts/install-dendrite.sh (make demo does; Go and gcc, a few minutes once)",
			strings.Join(looked, string(os.PathListSeparator)))
	}
	if in.caddy, err = filepath.Abs(o.Caddy); err != nil {
		return in, err
	}
	if in.listed, err = filepath.Abs(o.Listed); err != nil {
		return in, err
	}
	listed, err := os.ReadFile(in.listed)
	if err != nil {
		return in, fmt.Errorf("the listed picture: %v (run mgdemo from the repository's root, or pass -listed)", err)
	}
	sum := sha256.Sum256(listed)
	in.listedHash = hex.EncodeToString(sum[:])
	if in.bank, err = os.ReadFile(o.Bank); err != nil {
		return in, fmt.Errorf("the demo bank: %v (run mgdemo from the repository's root, or pass -bank)", err)
	}
	return in, nil
}

// world is the running demo.
type world struct {
	o   options
	in  inputs
	r   *runner
	dir string

	hs        *e2e.Dendrite
	bot, mod  *e2e.User
	users     []*e2e.User // alice, bob
	room      string      // the management room's ID
	roomAlias string      // and its alias
	front     string      // http://127.0.0.1:PORT: mediaguard in front of Dendrite
	lookup    string      // http://127.0.0.1:PORT: the lookup API
	lookupKey string
	bankPath  string // the bank Caddy reads
	cleanPath string // a picture nothing lists
	caddy     *caddyProc
	caddyLog  string
}

// run sets the demo up, then runs the check or waits for ctx to end, and
// always stops everything and removes the directory before it returns.
func run(ctx context.Context, o options) (rep report, err error) {
	in, err := preflight(o)
	if err != nil {
		return rep, err
	}
	dir, err := os.MkdirTemp("", "mgdemo-")
	if err != nil {
		return rep, err
	}
	rep.Dir = dir
	if o.OnDir != nil {
		o.OnDir(dir)
	}
	w := &world{o: o, in: in, dir: dir, r: &runner{dir: dir, log: o.Log}}
	defer func() {
		fmt.Fprintf(o.Log, "mgdemo: stopping Caddy and Dendrite, removing %s\n", dir)
		cerr := w.r.close()
		if cerr != nil && err == nil {
			err = fmt.Errorf("removing %s: %w", dir, cerr)
		}
		if cerr == nil {
			fmt.Fprintf(o.Log, "mgdemo: stopped; %s removed\n", dir)
		}
	}()
	// A harness Fatal or Skip ends the demo here, before the cleanups.
	defer func() {
		if p := recover(); p != nil {
			a, ok := p.(abort)
			if !ok {
				panic(p)
			}
			switch err = a; {
			case ctx.Err() != nil && a.msg == ctx.Err().Error():
				err = ctx.Err()
			case ctx.Err() != nil: // Ctrl-C reaches Dendrite and Caddy too
				err = fmt.Errorf("%w (setup cut short: %v)", ctx.Err(), a)
			}
		}
	}()

	start := time.Now()
	w.setup(ctx)
	rep.URLs = []string{w.hs.URL, w.front, w.lookup}
	fmt.Fprintf(o.Log, "mgdemo: ready in %v\n", time.Since(start).Round(100*time.Millisecond))
	w.banner()

	events := make(chan event, 64)
	followCtx, stopFollowing := context.WithCancel(ctx)
	followed := make(chan struct{})
	go func() {
		defer close(followed)
		w.follow(followCtx, events)
	}()
	w.r.Cleanup(func() { stopFollowing(); <-followed })

	if o.Check {
		return rep, w.check(ctx, events)
	}
	fmt.Fprintf(o.Out, "\n=== Management room %s (%s): messages as they arrive; Ctrl-C stops everything\n", w.roomAlias, w.room)
	select {
	case <-ctx.Done():
		return rep, ctx.Err()
	case <-w.caddy.exited:
		return rep, fmt.Errorf("caddy exited; the last lines of %s:\n%s", w.caddyLog, e2e.FileTail(w.caddyLog, 30))
	}
}

// step aborts the demo when ctx has ended (a signal during setup) and
// announces the next step otherwise.
func (w *world) step(ctx context.Context, format string, args ...any) {
	if ctx.Err() != nil {
		w.r.Fatalf("%v", ctx.Err())
	}
	fmt.Fprintf(w.o.Log, "mgdemo: "+format+"\n", args...)
}

// setup starts Dendrite, makes the accounts and the management room, and
// starts Caddy in front; it aborts through the runner on any failure.
func (w *world) setup(ctx context.Context) {
	r := w.r
	w.bankPath = filepath.Join(w.dir, "demo.bank")
	w.cleanPath = filepath.Join(w.dir, "clean.png")
	if err := os.WriteFile(w.bankPath, w.in.bank, 0o600); err != nil {
		r.Fatalf("%v", err)
	}
	// A photo-like picture of its own: far from the listed one in PDQ.
	if err := os.WriteFile(w.cleanPath, testimg.PNG(testimg.Photo(2024, 320, 240)), 0o600); err != nil {
		r.Fatalf("%v", err)
	}

	w.step(ctx, "starting Dendrite %s in %s", e2e.DendriteVersion, w.dir)
	w.hs = e2e.StartDendrite(r)

	w.step(ctx, "registering @%s (mediaguard's notices), @%s (owns the management room), @%s and @%s",
		botAccount.localpart, modAccount.localpart, userAccounts[0].localpart, userAccounts[1].localpart)
	w.bot = w.hs.RegisterUser(r, botAccount.localpart, botAccount.password, false)
	w.mod = w.hs.RegisterUser(r, modAccount.localpart, modAccount.password, false)
	for _, a := range userAccounts {
		w.users = append(w.users, w.hs.RegisterUser(r, a.localpart, a.password, false))
	}

	// The moderator's room, with the bot invited: mediaguard joins it by
	// its alias when it starts, as it would join Mjolnir's.
	w.step(ctx, "creating the management room and inviting %s", w.bot.ID)
	status, body := w.mod.Do(r, http.MethodPost, "/_matrix/client/v3/createRoom", map[string]any{
		"preset":          "private_chat",
		"name":            "Management room (mediaguard demo)",
		"topic":           "mediaguard posts a notice here for every blocked upload or download",
		"room_alias_name": roomAliasName,
		"invite":          []string{w.bot.ID},
	})
	var created struct {
		RoomID string `json:"room_id"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &created) != nil || created.RoomID == "" {
		r.Fatalf("creating the management room: %d %s", status, body)
	}
	w.room, w.roomAlias = created.RoomID, "#"+roomAliasName+":"+w.hs.ServerName

	w.lookupKey = e2e.RandomHex(r, 16)
	w.caddyLog = filepath.Join(w.dir, "caddy.log")
	cfPath := filepath.Join(w.dir, "Caddyfile")
	env := []string{botTokenEnv + "=" + w.bot.AccessToken, lookupKeyEnv + "=" + w.lookupKey}
	w.step(ctx, "starting %s with mediaguard in front of Dendrite (log %s)", w.o.Caddy, w.caddyLog)
	// Free ports are free only until someone takes them: retry on a clash.
	for attempt := 1; ; attempt++ {
		cf := caddyConfig{
			Bank: w.bankPath, AuditLog: filepath.Join(w.dir, "audit.log"),
			Homeserver: w.hs.URL, Room: w.roomAlias,
			Front: freePort(r), Lookup: freePort(r),
		}
		if err := os.WriteFile(cfPath, []byte(cf.caddyfile()), 0o600); err != nil {
			r.Fatalf("%v", err)
		}
		w.front = fmt.Sprintf("http://127.0.0.1:%d", cf.Front)
		w.lookup = fmt.Sprintf("http://127.0.0.1:%d", cf.Lookup)
		c, err := startCaddy(w.in.caddy, cfPath, w.dir, w.caddyLog, env)
		if err != nil {
			r.Fatalf("starting %s: %v", w.in.caddy, err)
		}
		r.Cleanup(c.stop)
		w.caddy = c
		err = c.waitReady(30*time.Second, map[string]string{
			w.front + "/_matrix/client/versions": "",
			w.lookup + "/":                       w.lookupKey, // the health document
		})
		if err == nil {
			break
		}
		c.stop()
		if c.addrInUse() && attempt < 3 {
			r.Logf("a port was taken; retrying on others")
			continue
		}
		r.Fatalf("Caddy did not start: %v; the last lines of %s:\n%s", err, w.caddyLog, e2e.FileTail(w.caddyLog, 30))
	}

	// Notices can only be posted once the bot has joined, which mediaguard
	// does as it starts: wait for it so the banner tells the truth.
	w.step(ctx, "waiting for mediaguard's bot to join the management room")
	deadline := time.Now().Add(20 * time.Second)
	for !w.botJoined() {
		if time.Now().After(deadline) {
			r.Fatalf("%s did not join %s within 20 s; the last lines of %s:\n%s", w.bot.ID, w.roomAlias, w.caddyLog, e2e.FileTail(w.caddyLog, 30))
		}
		if ctx.Err() != nil {
			r.Fatalf("%v", ctx.Err())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// botJoined reports whether the bot is among the room's joined members.
func (w *world) botJoined() bool {
	status, body := w.mod.Do(w.r, http.MethodGet, "/_matrix/client/v3/rooms/"+url.PathEscape(w.room)+"/joined_members", nil)
	var m struct {
		Joined map[string]any `json:"joined"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &m) != nil {
		return false
	}
	_, ok := m.Joined[w.bot.ID]
	return ok
}

func freePort(r *runner) int {
	p, err := testkit.Port()
	if err != nil {
		r.Fatalf("finding a free port: %v", err)
	}
	return p
}
