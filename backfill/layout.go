package backfill

import (
	"path/filepath"
	"strings"

	"github.com/mediaguard/mediaguard/ledger"
)

// The top-level directories of Synapse's media store, as
// synapse/media/filepath.py (github.com/element-hq/synapse) builds them
// and docs/media_repository.md describes them:
//
//	local_content/aa/bb/cccc...             local media aabbcccc...
//	local_thumbnails/aa/bb/cccc.../W-H-...  its thumbnails
//	remote_content/SERVER/aa/bb/cccc...     remote media, by filesystem ID
//	remote_thumbnail/SERVER/aa/bb/cccc.../  their thumbnails
//	url_cache/..., url_cache_thumbnails/... URL previews' downloads
const (
	dirLocal           = "local_content"
	dirRemote          = "remote_content"
	dirLocalThumbs     = "local_thumbnails"
	dirRemoteThumbs    = "remote_thumbnail"
	dirURLCache        = "url_cache"
	dirURLCacheThumbs  = "url_cache_thumbnails"
	fsIDPrefix         = ledger.ContentOnlyPrefix
	localPathParts     = 4
	remotePathParts    = 5
	shardedPrefixChars = 2
)

// kind classifies a path of the media store.
type kind uint8

const (
	kindOther     kind = iota // not Synapse's layout: reported, skipped
	kindLocal                 // local_content: a local media ID
	kindRemote                // remote_content: a remote filesystem ID
	kindThumbnail             // a rendition of media judged as its original
	kindURLCache              // a URL preview's download, not a user's upload
)

// stored is one file of the media store, named by its place in the layout.
type stored struct {
	// rel is the path relative to the media store, with forward slashes.
	rel  string
	kind kind
	// server is the remote origin (remote_content/SERVER/...).
	server string
	// id is the local media ID or the remote filesystem ID: the three
	// last path elements joined (aa + bb + rest).
	id string
}

// classify names a file of the media store by its relative path.
func classify(rel string) stored {
	rel = filepath.ToSlash(rel)
	parts := strings.Split(rel, "/")
	s := stored{rel: rel}
	switch parts[0] {
	case dirLocalThumbs, dirRemoteThumbs:
		s.kind = kindThumbnail
	case dirURLCache, dirURLCacheThumbs:
		s.kind = kindURLCache
	case dirLocal:
		if len(parts) == localPathParts && sharded(parts[1:]) {
			s.kind, s.id = kindLocal, parts[1]+parts[2]+parts[3]
		}
	case dirRemote:
		if len(parts) == remotePathParts && parts[1] != "" && sharded(parts[2:]) {
			s.kind, s.server, s.id = kindRemote, parts[1], parts[2]+parts[3]+parts[4]
		}
	}
	return s
}

// sharded reports whether aa, bb, rest look like Synapse's two-level
// sharding of an ID: two characters, two characters, the rest.
func sharded(p []string) bool {
	return len(p[0]) == shardedPrefixChars && len(p[1]) == shardedPrefixChars && p[2] != ""
}

// skippedDir reports whether a top-level directory is walked for names
// only (counted, never hashed).
func skippedDir(name string) bool {
	switch name {
	case dirLocalThumbs, dirRemoteThumbs, dirURLCache, dirURLCacheThumbs:
		return true
	}
	return false
}

// walkLess orders relative paths as filepath.WalkDir visits them: element
// by element, each directory's entries by name. Plain string order differs
// ("a.b" < "a/b", but WalkDir visits a/ first), and the resume point is
// compared in walk order.
func walkLess(a, b string) bool {
	for {
		ai, bi := strings.IndexByte(a, '/'), strings.IndexByte(b, '/')
		ae, be := a, b
		if ai >= 0 {
			ae = a[:ai]
		}
		if bi >= 0 {
			be = b[:bi]
		}
		if ae != be {
			return ae < be
		}
		if ai < 0 || bi < 0 {
			// One is a prefix of the other: the directory comes first.
			return ai < 0 && bi >= 0
		}
		a, b = a[ai+1:], b[bi+1:]
	}
}
