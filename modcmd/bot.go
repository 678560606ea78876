package modcmd

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"maunium.net/go/mautrix"
	"maunium.net/go/mautrix/event"
	"maunium.net/go/mautrix/id"

	"github.com/mediaguard/mediaguard/notify"
)

// Config configures a Bot.
type Config struct {
	// Homeserver, AccessToken and Room are the notifier's: the bot
	// follows the room its notices go to.
	Homeserver  string
	AccessToken string
	// Room is a room ID (!id:server) or alias (#alias:server).
	Room string
	// StateFile keeps the sync position and the handled events across
	// restarts (required). It is replaced atomically after every batch
	// and every command.
	StateFile string
	// ModeratorLevel is the power level a member needs to command the
	// bot; nil means DefaultModeratorLevel.
	ModeratorLevel *int64
	// Moderation carries the commands out (required).
	Moderation Moderation
	// OnRecord, if set, is told of every command carried out or refused
	// as not understood (the audit log). Commands from members without
	// the power level are not recorded: anyone in the room could flood
	// the log.
	OnRecord func(Record)
	// HTTPClient is used for everything but the long poll (default: a
	// client with a 30 s timeout).
	HTTPClient *http.Client
	// PollTimeout is how long one /sync waits for news (default 30s).
	PollTimeout time.Duration
	// MaxRetryDelay caps the backoff after a failure (default 1m).
	MaxRetryDelay time.Duration
	// CommandTimeout bounds one command's execution, and the judgement
	// of one watched media (default 1m).
	CommandTimeout time.Duration
	// WatchRooms, when not empty, has the bot judge the media events
	// (m.image, m.video, m.file, m.audio, m.sticker and their
	// thumbnails) of these rooms: WatchAll for every room it is in, or
	// room IDs and aliases (joined at start, accepting an invite).
	WatchRooms []string
	// Redact also redacts a watched event whose media is listed, once,
	// where the bot has the power to.
	Redact bool
	// Watch judges the watched media (required with WatchRooms).
	Watch Watcher
	// Stories, when set, is shared with the notifier and the lookup API's
	// reports: a watched event another reporter claimed first (by room
	// and event) gets that report as its one notice, not a second one
	// from the watch path; the watch path still redacts it.
	Stories *notify.Stories
	// OnWatchNotice, if set, is told of each watched event whose notice
	// the homeserver accepted, once it has (the media that matched): the
	// service puts it on record, so that a lookup asking about the event
	// after a restart posts no second notice. Only a delivered notice
	// counts: an event whose notice was cut short by a stop is worked
	// through again at the next start (the bot's saved handled list and
	// position keep it from being noticed twice).
	OnWatchNotice func(WatchedMedia)
	// Logger receives the bot's logs; nil discards them.
	Logger *zap.Logger
}

// Stats are the bot's counters.
type Stats struct {
	// Commands counts commands carried out (including failures and
	// commands not understood), Ignored the commands from members below
	// the power level, Syncs the /sync batches worked through.
	Commands, Ignored, Syncs uint64
	// Following is true while the bot is in the room and syncing.
	Following bool
}

// Bot follows the management room and carries out moderators' commands.
type Bot struct {
	cfg      Config
	level    int64
	log      *zap.Logger
	cli      *mautrix.Client
	pollHTTP *http.Client

	// Touched only by the run goroutine.
	me       string
	roomID   string
	filterID string
	levels   PowerLevels
	// room is the state levels was built from, saved with the position.
	room roomState
	st   *state

	// watched is what the bot watches (joinWatched).
	watched atomic.Pointer[watchSet]

	commands, ignored, syncs atomic.Uint64
	following                atomic.Bool

	mu      sync.Mutex
	started bool
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}
}

// New validates cfg; nothing happens until Start.
func New(cfg Config) (*Bot, error) {
	if cfg.Homeserver == "" || cfg.AccessToken == "" || cfg.Room == "" {
		return nil, errors.New("modcmd: Homeserver, AccessToken and Room are required")
	}
	if !strings.HasPrefix(cfg.Room, "!") && !strings.HasPrefix(cfg.Room, "#") {
		return nil, fmt.Errorf("modcmd: Room %q is neither a room ID (!...) nor an alias (#...)", cfg.Room)
	}
	if cfg.StateFile == "" {
		return nil, errors.New("modcmd: StateFile is required: without it a restart would replay or lose commands")
	}
	if cfg.Moderation == nil {
		return nil, errors.New("modcmd: Moderation is required")
	}
	if len(cfg.WatchRooms) > 0 && cfg.Watch == nil {
		return nil, errors.New("modcmd: WatchRooms needs a Watch")
	}
	if cfg.Redact && len(cfg.WatchRooms) == 0 {
		return nil, errors.New("modcmd: Redact needs WatchRooms")
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 30 * time.Second
	}
	if cfg.MaxRetryDelay <= 0 {
		cfg.MaxRetryDelay = time.Minute
	}
	if cfg.CommandTimeout <= 0 {
		cfg.CommandTimeout = time.Minute
	}
	cli, err := notify.NewClient(cfg.Homeserver, cfg.AccessToken, cfg.HTTPClient)
	if err != nil {
		return nil, fmt.Errorf("modcmd: %w", err)
	}
	b := &Bot{cfg: cfg, level: DefaultModeratorLevel, log: cfg.Logger, cli: cli}
	if cfg.ModeratorLevel != nil {
		b.level = *cfg.ModeratorLevel
	}
	if b.log == nil {
		b.log = zap.NewNop()
	}
	// The long poll holds a request open for PollTimeout: its client
	// must wait longer than that, and a shared 30 s client would not.
	b.pollHTTP = &http.Client{Timeout: cfg.PollTimeout + 30*time.Second}
	if cfg.HTTPClient != nil {
		b.pollHTTP.Transport = cfg.HTTPClient.Transport
	}
	return b, nil
}

// Start follows the room in the background. It never fails for a
// homeserver that is down or a room the bot cannot join: those are
// logged and retried, so the proxy comes up regardless.
func (b *Bot) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.closed {
		return errors.New("modcmd: Start called twice or after Close")
	}
	b.started = true
	ctx, cancel := context.WithCancel(context.Background())
	b.cancel, b.done = cancel, make(chan struct{})
	go b.run(ctx)
	return nil
}

// Close stops following and waits for the command in progress, if any,
// to be cut short. It may be called more than once.
func (b *Bot) Close() {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return
	}
	b.closed = true
	cancel, done := b.cancel, b.done
	b.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// Stats returns the counters.
func (b *Bot) Stats() Stats {
	return Stats{Commands: b.commands.Load(), Ignored: b.ignored.Load(), Syncs: b.syncs.Load(), Following: b.following.Load()}
}

func (b *Bot) run(ctx context.Context) {
	defer close(b.done)
	release := acquire(ctx, b.cfg.StateFile)
	if release == nil {
		return
	}
	defer release()
	attempt := 0
	for {
		err := b.follow(ctx, &attempt)
		b.following.Store(false)
		if ctx.Err() != nil {
			return
		}
		wait := backoff(attempt, b.cfg.MaxRetryDelay)
		attempt++
		b.log.Error("management room commands: "+err.Error()+"; retrying", zap.String("room", b.cfg.Room), zap.Duration("in", wait))
		if !sleep(ctx, wait) {
			return
		}
	}
}

// follow joins the room, reads its power levels and syncs until an
// error. attempt is reset once a sync succeeds.
func (b *Bot) follow(ctx context.Context, attempt *int) error {
	if b.st == nil {
		st, err := loadState(b.cfg.StateFile)
		if err != nil {
			return fmt.Errorf("reading the bot's state: %w (fix or delete it; deleting it starts from now)", err)
		}
		b.st = st
	}
	if b.me == "" {
		who, err := b.cli.Whoami(ctx)
		if err != nil {
			return fmt.Errorf("the homeserver does not accept the bot's token (whoami): %w", notify.Explain(err))
		}
		b.me, b.cli.UserID = who.UserID.String(), who.UserID
	}
	jr, err := b.cli.JoinRoom(ctx, b.cfg.Room, nil)
	if err != nil {
		return fmt.Errorf("the bot %s is not in the management room %s and cannot join it: %w (invite it to the room)", b.me, b.cfg.Room, notify.Explain(err))
	}
	b.roomID = jr.RoomID.String()
	b.joinWatched(ctx)
	if b.st.NextBatch != "" && b.st.Room != nil {
		// Resuming: the levels of the position's time, brought up to
		// date by the state events the sync brings.
		levels, err := b.st.Room.levels()
		if err != nil {
			return fmt.Errorf("the bot's state file holds unreadable power levels: %w (fix or delete it)", err)
		}
		b.levels, b.room = levels, *b.st.Room
	} else if err := b.loadLevels(ctx); err != nil {
		return fmt.Errorf("reading the management room's power levels: %w", err)
	}
	if b.filterID == "" {
		f, err := b.cli.CreateFilter(ctx, b.filter())
		if err != nil {
			return fmt.Errorf("creating the sync filter: %w", notify.Explain(err))
		}
		b.filterID = f.FilterID
	}
	defer func() { b.filterID = "" }() // the watched rooms may differ at the next start
	if b.st.NextBatch == "" {
		// First start: commands sent before mediaguard ever followed the
		// room are history, not commands to carry out now.
		resp, err := b.sync(ctx, "", 0)
		if err != nil {
			return fmt.Errorf("first sync: %w", notify.Explain(err))
		}
		b.st.NextBatch, b.st.SeenTS = resp.NextBatch, time.Now().UnixMilli()
		b.st.Room = b.roomSnapshot()
		if err := b.st.save(b.cfg.StateFile); err != nil {
			return fmt.Errorf("saving the bot's state: %w", err)
		}
		b.log.Info("following the management room for commands from now on", zap.String("room", b.roomID), zap.String("bot", b.me),
			zap.Int64("moderator_power_level", b.level), zap.String("state_file", b.cfg.StateFile))
	} else {
		b.log.Info("following the management room for commands", zap.String("room", b.roomID), zap.String("bot", b.me),
			zap.Int64("moderator_power_level", b.level))
	}
	for {
		since := b.st.NextBatch
		resp, err := b.sync(ctx, since, b.cfg.PollTimeout)
		if err != nil {
			if f := notify.Explain(err); f.Errcode == "M_UNKNOWN_POS" {
				// The homeserver forgot the position (a database reset):
				// nothing can be resumed, so start from now.
				b.log.Error("the homeserver no longer knows the bot's sync position; commands sent meanwhile are lost, following from now")
				b.st.NextBatch = ""
			}
			return fmt.Errorf("sync: %w", notify.Explain(err))
		}
		*attempt = 0
		b.following.Store(true)
		if err := b.process(ctx, since, resp); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.st.NextBatch = resp.NextBatch
		b.st.Room = b.roomSnapshot()
		if err := b.st.save(b.cfg.StateFile); err != nil {
			return fmt.Errorf("saving the bot's state: %w", err)
		}
		b.syncs.Add(1)
	}
}

// eventTypes are the events the bot reads in the management room.
var eventTypes = []event.Type{event.EventMessage, event.EventReaction, event.StatePowerLevels, event.StateCreate}

// timelineLimit is how many events one sync carries; more make the
// timeline "limited" and the rest is fetched with /messages.
const timelineLimit = 100

// filter limits sync to the management room's messages, reactions and
// the state that decides who may command, so a bot in busy rooms does
// not download them all
// (https://spec.matrix.org/v1.11/client-server-api/#filtering).
func (b *Bot) filter() *mautrix.Filter {
	none := &mautrix.FilterPart{NotTypes: []event.Type{{Type: "*"}}}
	rooms := []id.RoomID{id.RoomID(b.roomID)}
	types := eventTypes
	if len(b.cfg.WatchRooms) > 0 {
		types = append(slices.Clone(eventTypes), event.EventSticker)
		w := b.watched.Load()
		if w.all {
			rooms = nil // every room the bot is in
		}
		for _, r := range w.ids {
			rooms = append(rooms, id.RoomID(r))
		}
	}
	return &mautrix.Filter{
		EventFormat: mautrix.EventFormatClient,
		AccountData: none,
		Presence:    none,
		Room: &mautrix.RoomFilter{
			Rooms:        rooms,
			IncludeLeave: true,
			AccountData:  none,
			Ephemeral:    none,
			State:        &mautrix.FilterPart{Types: []event.Type{event.StatePowerLevels, event.StateCreate}},
			Timeline:     &mautrix.FilterPart{Types: types, Limit: timelineLimit},
		},
	}
}

func (b *Bot) sync(ctx context.Context, since string, timeout time.Duration) (*mautrix.RespSync, error) {
	return b.cli.FullSyncRequest(ctx, mautrix.ReqSync{
		Timeout: int(timeout / time.Millisecond), Since: since, FilterID: b.filterID,
		SetPresence: event.PresenceOffline, Client: b.pollHTTP,
	})
}

// loadLevels reads the room's state: who created it and the power
// levels. Sync only tells of changes after the stored position, so the
// levels in force are read at every (re)start.
func (b *Bot) loadLevels(ctx context.Context) error {
	state, err := b.cli.State(ctx, id.RoomID(b.roomID))
	if err != nil {
		return notify.Explain(err)
	}
	var rs roomState
	for t, evs := range state {
		ev := evs[""]
		if ev == nil {
			continue
		}
		switch t.Type {
		case event.StateCreate.Type:
			rs.Create, rs.Creator = ev.Content.VeryRaw, ev.Sender.String()
		case event.StatePowerLevels.Type:
			rs.PowerLevels = ev.Content.VeryRaw
		}
	}
	levels, err := rs.levels()
	if err != nil {
		return fmt.Errorf("m.room.power_levels: %w", err)
	}
	b.levels, b.room = levels, rs
	return nil
}

// roomSnapshot is the state in force now, to save with the position.
func (b *Bot) roomSnapshot() *roomState {
	rs := b.room
	return &rs
}

// applyState takes a state event seen in the timeline or the state
// section of a sync into account.
func (b *Bot) applyState(ev *event.Event) {
	if ev.StateKey == nil || *ev.StateKey != "" {
		return
	}
	switch ev.Type.Type {
	case event.StatePowerLevels.Type:
		if err := b.levels.SetLevels(ev.Content.VeryRaw); err != nil {
			b.log.Warn("unreadable m.room.power_levels in the management room; keeping the previous levels", zap.Error(err))
			return
		}
		b.room.PowerLevels = ev.Content.VeryRaw
	case event.StateCreate.Type:
		b.levels.SetCreate(ev.Sender.String(), ev.Content.VeryRaw)
		b.room.Create, b.room.Creator = ev.Content.VeryRaw, ev.Sender.String()
	}
}

// process works through one sync batch in order: the management room's
// commands, then the watched rooms' media events.
func (b *Bot) process(ctx context.Context, since string, resp *mautrix.RespSync) error {
	if left := resp.Rooms.Leave[id.RoomID(b.roomID)]; left != nil {
		return fmt.Errorf("the bot %s was removed from the management room %s", b.me, b.roomID)
	}
	if jr := resp.Rooms.Join[id.RoomID(b.roomID)]; jr != nil {
		if err := b.processRoom(ctx, b.roomID, since, jr, b.handle); err != nil {
			return err
		}
	}
	for roomID, jr := range resp.Rooms.Join {
		if !b.watching(roomID.String()) {
			continue
		}
		err := b.processRoom(ctx, roomID.String(), since, jr, func(ctx context.Context, ev *event.Event) error {
			return b.handleMedia(ctx, roomID.String(), ev)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// processRoom works through one room's part of a sync batch, fetching
// the gap before a limited timeline, and hands each event to handle.
func (b *Bot) processRoom(ctx context.Context, roomID, since string, jr *mautrix.SyncJoinedRoom, handle func(context.Context, *event.Event) error) error {
	mgmt := roomID == b.roomID
	if mgmt {
		for _, ev := range jr.State.Events {
			b.applyState(ev)
		}
	}
	events := jr.Timeline.Events
	if jr.Timeline.Limited && since != "" {
		gap, err := b.gap(ctx, roomID, jr.Timeline.PrevBatch, since)
		if err != nil {
			return fmt.Errorf("fetching the events missed while away in %s: %w", roomID, err)
		}
		events = append(gap, events...)
	}
	for _, ev := range events {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if mgmt {
			b.st.SeenTS = max(b.st.SeenTS, ev.Timestamp)
		}
		if ev.StateKey != nil {
			if mgmt {
				b.applyState(ev)
			}
			continue
		}
		if err := handle(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// maxGap bounds the events fetched to fill a gap: commands older than
// that (a flood while mediaguard was down) are logged as skipped.
const maxGap = 1000

// gap fetches, oldest first, the events between the stored position
// (since) and the start of a limited timeline (from), with /messages
// (https://spec.matrix.org/v1.11/client-server-api/#get_matrixclientv3roomsroomidmessages).
func (b *Bot) gap(ctx context.Context, roomID, from, since string) ([]*event.Event, error) {
	part := &mautrix.FilterPart{Types: append(slices.Clone(eventTypes), event.EventSticker)}
	var got []*event.Event
	for from != "" && len(got) < maxGap {
		resp, err := b.cli.Messages(ctx, id.RoomID(roomID), from, since, mautrix.DirectionBackward, part, timelineLimit)
		if err != nil {
			return nil, notify.Explain(err)
		}
		if len(resp.Chunk) == 0 {
			break
		}
		older := false
		for _, ev := range resp.Chunk {
			// A server that ignored `to` pages on into what was worked
			// through before the position: stop there.
			if ev.Timestamp < b.st.SeenTS {
				older = true
				break
			}
			got = append(got, ev)
		}
		if older || resp.End == "" || resp.End == from {
			break
		}
		from = resp.End
	}
	if len(got) >= maxGap {
		b.log.Error("more events were missed while away than are fetched; the oldest commands among them are not carried out", zap.Int("fetched", len(got)))
	}
	for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
		got[i], got[j] = got[j], got[i]
	}
	return got, nil
}

// backoff is exponential from 250 ms, capped, with equal jitter.
func backoff(attempt int, max time.Duration) time.Duration {
	d := 250 * time.Millisecond
	for i := 0; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

// sleep waits d or until ctx ends; it reports whether to carry on.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
