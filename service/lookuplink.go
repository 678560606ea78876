package service

// Linking a lookup to the picture's story. Mjolnir's HMA plugin asks the
// lookup API about the media of a room event and names the event
// (eventId, roomId, userId); when mediaguard's proxy has seen the same
// file, moderators would otherwise get two notices that cannot be
// matched up: mediaguard's (an mxc, no room or event) and Mjolnir's (a
// room and a user, no mxc). So a lookup answered "block" becomes a reply
// in the thread of the file's first notice, naming room, event and
// sender, or a notice of its own that later notices about the file join
// (notify.Stories).

import (
	"context"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/audit"
	"github.com/mediaguard/mediaguard/internal/apigate"
	"github.com/mediaguard/mediaguard/lookupwire"
	"github.com/mediaguard/mediaguard/modcmd"
	"github.com/mediaguard/mediaguard/notify"
)

// ActionLookupLink is the audit action of a lookup answered "block" for
// a request naming a room event, written once its notice is delivered
// (Ref the event, Endpoint the room, User the sender: the event's when
// the bot read it, else the one the request names,
// Digests its exact digests, Outcome the match and what became of the
// event).
const ActionLookupLink = "lookup_linked"

// linkQueueSize bounds the lookups waiting to be linked. Only blocks of
// events not reported before are queued, a handful a day in a healthy
// community; a flood past it is dropped and counted, never waited for.
const linkQueueSize = 256

// linkRedactTimeout bounds the check and redaction of one event (an
// event read, a media fetch and its hashing).
const linkRedactTimeout = 2 * time.Minute

// LinkStats count the lookups answered "block" that named a room event.
type LinkStats struct {
	// Linked counts events reported to the management room (queued on
	// the notifier); Duplicate the events reported before, by a lookup
	// or the room watcher, and left be; Dropped those not reported
	// because a queue was full.
	Linked, Duplicate, Dropped uint64
}

// linkItem is one lookup to link.
type linkItem struct {
	req  lookupwire.Request
	resp lookupwire.Response
}

// linker links lookups to stories off the request path: the lookup
// handler only queues, one worker does the rest.
type linker struct {
	s                          *Service
	queue                      chan linkItem
	linked, duplicate, dropped atomic.Uint64
	dropWarn                   apigate.Throttle
}

func newLinker(s *Service) *linker {
	return &linker{s: s, queue: make(chan linkItem, linkQueueSize)}
}

// offer queues a block answer for linking without blocking; it is the
// lookup handler's OnBlock. A request that names no room event (another
// mediaguard asking, a hand-made query) has nothing to link.
func (l *linker) offer(req lookupwire.Request, resp lookupwire.Response) {
	if !strings.HasPrefix(req.EventID, "$") || !strings.HasPrefix(req.RoomID, "!") {
		return
	}
	if req.UserID != "" && !strings.HasPrefix(req.UserID, "@") {
		req.UserID = ""
	}
	// The digests as the matcher read them (matcher.QueryFromLookup
	// trims them and takes either case): a story is found, begun and
	// recorded by the digests that matched, not by their spelling.
	h := &req.Hashes
	h.MD5, h.SHA1, h.SHA256 = normDigest(h.MD5), normDigest(h.SHA1), normDigest(h.SHA256)
	select {
	case l.queue <- linkItem{req, resp}:
	default:
		l.drop("the queue of lookups to link is full", req)
	}
}

// normDigest is a lookup's hex digest trimmed and in lower case.
func normDigest(hex string) string { return strings.ToLower(strings.TrimSpace(hex)) }

// drop counts a lookup not linked and says so, at most once a second.
func (l *linker) drop(why string, req lookupwire.Request) {
	l.dropped.Add(1)
	if ok, n := l.dropWarn.Allow(time.Now()); ok {
		l.s.log.Warn("a lookup answered block is not linked to the management room: "+why,
			zap.String("room_id", req.RoomID), zap.String("event_id", req.EventID), zap.Uint64("suppressed_since_last", n))
	}
}

// run links the queued lookups until ctx ends; seed has run before it
// (Service.Start), so a lookup queued while the audit log was being read
// waits in the queue and is judged against everything reported before.
func (l *linker) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case it := <-l.queue:
			l.link(ctx, it)
		}
	}
}

// seed claims the events the audit log says were reported (by a lookup
// or the room watcher), so that the plugin asking again after a restart
// posts nothing. Only records of a notice the management room accepted
// count: ActionWatch is written when the media is judged, before any
// notice, and claiming from it would keep the watcher, working through
// an event again after a stop cut its notice short, from posting it. The
// watcher's own events are kept from a second notice by its saved state.
func (l *linker) seed() {
	if l.s.audit == nil {
		return
	}
	err := audit.Read(l.s.audit.Path(), time.Time{}, func(r audit.Record) error {
		if r.Kind == audit.KindAction && (r.Action == ActionLookupLink || r.Action == ActionWatchNoticed) && r.Ref != "" {
			l.s.stories.Claim(r.Endpoint, r.Ref)
		}
		return nil
	})
	if err != nil {
		l.s.log.Error("audit: cannot read the events reported before; a lookup of one may report it again", zap.Error(err))
	}
}

// link reports one event: once (the first reporter claims it), redacted
// where the room watcher would redact it, and in the story of its file.
func (l *linker) link(ctx context.Context, it linkItem) {
	s, req := l.s, it.req
	if !s.stories.Claim(req.RoomID, req.EventID) {
		l.duplicate.Add(1)
		return
	}
	var check modcmd.EventCheck
	if s.bot != nil {
		rctx, cancel := context.WithTimeout(ctx, linkRedactTimeout)
		check = s.bot.RedactIfListed(rctx, req.RoomID, req.EventID)
		cancel()
	}
	redaction, sender := check.Redaction, req.UserID
	if check.Read {
		// The event as the homeserver has it: its sender, not the
		// request's word.
		sender = check.Sender
	}
	digests := notify.Digests{MD5: req.Hashes.MD5, SHA1: req.Hashes.SHA1, SHA256: req.Hashes.SHA256}
	verified := matchedDigest(digests, it.resp)
	match := clipText(it.resp.Reason, 300)
	s.log.Warn("listed media posted in a room (Mjolnir's lookup)", zap.String("room_id", req.RoomID), zap.String("event_id", req.EventID),
		zap.String("user_id", sender), zap.Bool("event_read", check.Read), zap.String("bank", it.resp.Bank), zap.String("redaction", redaction))
	ok := s.notifier.Sighting(notify.Sighting{RoomID: req.RoomID, EventID: req.EventID, Sender: sender, MsgType: req.MediaType,
		Reason: match, Redaction: redaction, Via: notify.SightingLookup, Unverified: !check.Read, Digests: digests, Verified: verified})
	if !ok {
		l.drop("the notice queue is full", req)
		return
	}
	l.linked.Add(1)
}

// matchedDigest is the one of a lookup's digests that matched a bank
// (the answer's hashType and matchedHash), none for a PDQ match: the
// request's other digests are its caller's word, and a story begun
// under them would draw the notices of whichever file truly has them.
func matchedDigest(d notify.Digests, resp lookupwire.Response) notify.Digests {
	var v notify.Digests
	switch m := resp.MatchedHash; resp.HashType {
	case "md5":
		if strings.EqualFold(d.MD5, m) {
			v.MD5 = d.MD5
		}
	case "sha1":
		if strings.EqualFold(d.SHA1, m) {
			v.SHA1 = d.SHA1
		}
	case "sha256":
		if strings.EqualFold(d.SHA256, m) {
			v.SHA256 = d.SHA256
		}
	}
	return v
}

// delivered puts a lookup's report on record once the management room
// accepted its notice (the notifier's OnSightingDelivered): written any
// earlier, a report lost to a stop, or refused, would keep the plugin's
// next request about the event from reporting it after a restart
// (seed). The digests are the ones a block record keeps, never more.
func (l *linker) delivered(sg notify.Sighting) {
	if l == nil || sg.Via != notify.SightingLookup || l.s.audit == nil {
		return
	}
	digests := map[string]string{}
	for k, v := range map[string]string{"md5": sg.Digests.MD5, "sha1": sg.Digests.SHA1, "sha256": sg.Digests.SHA256} {
		if v != "" && len(v) <= 64 {
			digests[k] = strings.ToLower(v)
		}
	}
	outcome := sg.Reason
	if sg.Redaction != "" {
		outcome += "; " + sg.Redaction
	}
	err := l.s.audit.Append(audit.Record{Kind: audit.KindAction, Action: ActionLookupLink, User: sg.Sender, Ref: sg.EventID,
		Endpoint: sg.RoomID, Digests: digests, Outcome: clipText(outcome, 500)})
	if err != nil {
		l.s.log.Error("audit: cannot record a lookup's event", zap.String("event_id", sg.EventID), zap.Error(err))
	}
}

// LookupLinkStats returns the counts of lookups linked to the management
// room; ok is false when there is no Matrix notifier to link them in.
func (s *Service) LookupLinkStats() (st LinkStats, ok bool) {
	if s.links == nil {
		return LinkStats{}, false
	}
	l := s.links
	return LinkStats{Linked: l.linked.Load(), Duplicate: l.duplicate.Load(), Dropped: l.dropped.Load()}, true
}
