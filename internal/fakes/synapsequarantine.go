package fakes

// The fake Synapse's quarantine state: the quarantine feed, the admin's
// download past a quarantine, and unquarantine. Each fact is Synapse's,
// from its admin API documentation ("Media Admin API",
// https://github.com/element-hq/synapse/blob/develop/docs/admin_api/media_admin_api.md)
// and its source:
//   - the servlets: ListQuarantineChanges, QuarantineMediaByID,
//     UnquarantineMediaByID and QueryMediaById in
//     https://github.com/element-hq/synapse/blob/develop/synapse/rest/admin/media.py;
//   - the records: _quarantine_media_txn, _quarantine_local_media_txn,
//     _quarantine_remote_media_txn and get_quarantined_media_changes in
//     https://github.com/element-hq/synapse/blob/develop/synapse/storage/databases/main/room.py;
//   - the download: DownloadResource in
//     https://github.com/element-hq/synapse/blob/develop/synapse/rest/client/media.py
//     and get_local_media in
//     https://github.com/element-hq/synapse/blob/develop/synapse/media/media_repository.py.

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// QuarantinePageSize is the most records a page of the feed holds
// (ListQuarantineChanges: "limit = 100").
const QuarantinePageSize = 100

// quarantineChange is one record of the feed.
type quarantineChange struct {
	stream      int64
	origin, id  string
	quarantined bool
}

// quarantineState is the fake's quarantine bookkeeping, under Synapse.mu.
type quarantineState struct {
	// remote maps the media IDs of remote media (cached copies, in
	// Synapse's remote_media_cache) to their origin; any other media is
	// local.
	remote map[string]string
	// quarantinedBy maps the IDs of quarantined media to the admin who
	// quarantined them (quarantined_by).
	quarantinedBy map[string]string
	changes       []quarantineChange
	stream        int64
	// failDownload makes the next n bypass downloads of an ID fail.
	failDownload map[string]failN
}

type failN struct{ n, status int }

func (q *quarantineState) init() {
	if q.quarantinedBy == nil {
		q.remote, q.quarantinedBy, q.failDownload = map[string]string{}, map[string]string{}, map[string]failN{}
		// Synapse's stream starts at position 1: an empty feed answers
		// next_batch 1 and the first record is at 2.
		q.stream = 1
	}
}

// PutRemote stores a cached copy of remote media: origin's media id.
func (f *Synapse) PutRemote(origin, id string, data []byte, contentType string) {
	f.Put(id, data, contentType)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.q.init()
	f.q.remote[id] = origin
}

// Delete removes a media item (the media admin API's delete): its
// download answers 404 M_NOT_FOUND from then on, quarantined or not.
func (f *Synapse) Delete(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.media, id)
}

// Quarantined reports whether the media ID is quarantined.
func (f *Synapse) Quarantined(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.q.quarantinedBy[id] != ""
}

// QuarantineAs quarantines server/id as the admin user by does through
// the admin API (another moderator's tool, say), without a request.
func (f *Synapse) QuarantineAs(by, server, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setQuarantined(server, id, by)
}

// adminOf is the server admin whose token the request bears, "" for any
// other token.
func (f *Synapse) adminOf(r *http.Request) string {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || tok == "":
		return ""
	case tok == f.AdminToken:
		return f.AdminUser
	}
	return f.Admins[tok]
}

// isAdmin reports whether user is a server admin.
func (f *Synapse) isAdmin(user string) bool {
	return user != "" && (user == f.AdminUser || slices.Contains(slices.Collect(maps.Values(f.Admins)), user))
}

// AppendQuarantineChange appends a raw record to the feed, as Synapse's
// best-effort feed may hold one ("expected to have missing or duplicate
// records"; its background update backfills historical quarantines),
// without changing any media's state.
func (f *Synapse) AppendQuarantineChange(origin, id string, quarantined bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.q.init()
	f.q.stream++
	f.q.changes = append(f.q.changes, quarantineChange{f.q.stream, origin, id, quarantined})
}

// FailDownload makes the next n downloads of id past its quarantine
// answer status (test-only: a media store that is failing).
func (f *Synapse) FailDownload(id string, n, status int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.q.init()
	f.q.failDownload[id] = failN{n, status}
}

// QuarantineFeedPosition is the feed's current stream position.
func (f *Synapse) QuarantineFeedPosition() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.q.init()
	return f.q.stream
}

// setQuarantined quarantines the media server/id as the admin by does
// (or releases it, for by ""), as Synapse does: a media with a SHA-256 is
// (un)quarantined with every local and cached remote media of the same
// bytes, all set to the same quarantined_by and each recorded in the
// feed, locals first; every matching media is recorded, already
// quarantined or not, which is one way the feed repeats records. Unknown
// media changes nothing and is not recorded. The caller holds f.mu.
func (f *Synapse) setQuarantined(server, id, by string) {
	f.q.init()
	target, ok := f.media[id]
	if !ok || target.Data == nil {
		return
	}
	if origin, remote := f.q.remote[id]; remote != (server != f.ServerName) || remote && origin != server {
		return // asked under another server than the media's
	}
	sum := sha256.Sum256(target.Data)
	var locals, remotes []string
	for mid, m := range f.media {
		if m.Data == nil || sha256.Sum256(m.Data) != sum {
			continue
		}
		if _, remote := f.q.remote[mid]; remote {
			remotes = append(remotes, mid)
		} else {
			locals = append(locals, mid)
		}
	}
	slices.Sort(locals)
	slices.Sort(remotes)
	for _, mid := range locals {
		f.record(f.ServerName, mid, by)
	}
	for _, mid := range remotes {
		f.record(f.q.remote[mid], mid, by)
	}
}

func (f *Synapse) record(origin, id, by string) {
	if by != "" {
		f.q.quarantinedBy[id] = by
	} else {
		delete(f.q.quarantinedBy, id)
	}
	f.q.stream++
	f.q.changes = append(f.q.changes, quarantineChange{f.q.stream, origin, id, by != ""})
}

// quarantineAdmin answers the quarantine feed and the media-info API; it
// reports whether the request was one of those (unquarantine is answered
// with quarantine, in admin). The token was checked.
func (f *Synapse) quarantineAdmin(w http.ResponseWriter, r *http.Request) bool {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && p == "/_synapse/admin/v1/media/quarantine_changes":
		if f.NoQuarantineFeed.Load() {
			// Synapse before 1.152 has no such servlet: an unknown
			// admin path.
			w.WriteHeader(404)
			io.WriteString(w, `{"errcode":"M_UNRECOGNIZED","error":"Unrecognized request"}`)
			return true
		}
		f.quarantineChanges(w, r)
		return true
	case r.Method == http.MethodGet && strings.HasPrefix(p, "/_synapse/admin/v1/media/"):
		server, id, ok := strings.Cut(strings.TrimPrefix(p, "/_synapse/admin/v1/media/"), "/")
		if !ok || strings.Contains(id, "/") {
			return false
		}
		f.mediaInfo(w, server, id)
		return true
	}
	return false
}

// mediaInfo answers GET /_synapse/admin/v1/media/{server}/{id}:
// {"media_info": {...}} with, among Synapse's fields, media_origin,
// media_id, media_type, media_length, quarantined_by (null when not
// quarantined) and sha256; unknown media (and remote media not cached)
// is 404 M_NOT_FOUND.
func (f *Synapse) mediaInfo(w http.ResponseWriter, server, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.q.init()
	m, ok := f.media[id]
	origin, remote := f.q.remote[id]
	if !remote {
		origin = f.ServerName
	}
	if !ok || m.Data == nil || origin != server {
		w.WriteHeader(404)
		io.WriteString(w, `{"errcode":"M_NOT_FOUND","error":"Unknown media"}`)
		return
	}
	sum := sha256.Sum256(m.Data)
	info := map[string]any{
		"media_origin": origin, "media_id": id, "media_type": m.Type, "media_length": len(m.Data),
		"quarantined_by": nil, "sha256": hex.EncodeToString(sum[:]),
	}
	if by := f.q.quarantinedBy[id]; by != "" {
		info["quarantined_by"] = by
	}
	json.NewEncoder(w).Encode(map[string]any{"media_info": info})
}

// quarantineChanges answers GET quarantine_changes?from=N: the records
// with from < stream position ≤ the current one, oldest first, at most
// QuarantinePageSize; next_batch is the last record's position, or the
// current position when there is none. from defaults to 0; one that is
// not an integer, or is beyond the stream, is 400 M_INVALID_PARAM.
func (f *Synapse) quarantineChanges(w http.ResponseWriter, r *http.Request) {
	from := int64(0)
	if s := r.URL.Query().Get("from"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			w.WriteHeader(400)
			io.WriteString(w, `{"errcode":"M_INVALID_PARAM","error":"Query parameter \"from\" must be an integer"}`)
			return
		}
		from = n
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.q.init()
	if from > f.q.stream {
		w.WriteHeader(400)
		io.WriteString(w, `{"errcode":"M_INVALID_PARAM","error":"The from token is considered invalid because it includes stream positions greater than the furthest persisted position"}`)
		return
	}
	var b strings.Builder
	b.WriteString(`{"changes":[`)
	next, n := f.q.stream, 0
	for _, c := range f.q.changes {
		if c.stream <= from {
			continue
		}
		if n == QuarantinePageSize {
			break
		}
		if n > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"origin":%q,"media_id":%q,"quarantined":%t}`, c.origin, c.id, c.quarantined)
		next = c.stream
		n++
	}
	fmt.Fprintf(&b, `],"next_batch":%d}`, next)
	io.WriteString(w, b.String())
}

// quarantinedDownload answers a download or thumbnail of quarantined
// media, and any download asking to bypass quarantine, reporting whether
// it did: quarantined media is 404 M_NOT_FOUND, as unknown media is;
// admin_unsafely_bypass_quarantine=true (on the client-v1 download) is
// honoured for a server admin's token and answered 400 M_UNKNOWN for any
// other ("Must be a server admin to bypass quarantine").
func (f *Synapse) quarantinedDownload(w http.ResponseWriter, r *http.Request, id string) bool {
	bypass := r.URL.Query().Get("admin_unsafely_bypass_quarantine") == "true" &&
		strings.HasPrefix(r.URL.Path, "/_matrix/client/v1/media/download/")
	admin := r.Header.Get("Authorization") == "Bearer "+f.AdminToken
	f.mu.Lock()
	f.q.init()
	quarantined := f.q.quarantinedBy[id] != ""
	failStatus := 0
	if fl := f.q.failDownload[id]; bypass && admin && fl.n > 0 {
		fl.n--
		f.q.failDownload[id] = fl
		failStatus = fl.status
	}
	f.mu.Unlock()
	switch {
	case bypass && !admin:
		MatrixError(w, 400, "M_UNKNOWN")
	case failStatus != 0:
		w.WriteHeader(failStatus)
	case quarantined && !bypass:
		MatrixError(w, 404, "M_NOT_FOUND")
	default:
		return false
	}
	return true
}
