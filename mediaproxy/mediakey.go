package mediaproxy

import (
	"net/url"
	"strings"
)

// MediaKey names one piece of media: the homeserver that owns it and its
// media ID. Server is empty for media of this homeserver while its name
// is not yet known (it is learnt from the first upload's content_uri).
type MediaKey struct {
	Server, ID string
}

// String is "server/id", as in an mxc:// URI; "" for no media.
func (k MediaKey) String() string {
	if k.ID == "" {
		return ""
	}
	return k.Server + "/" + k.ID
}

// IsZero reports no media (an upload before the homeserver named it).
func (k MediaKey) IsZero() bool { return k.ID == "" }

// Rendition is one byte-different rendition of a media ID: the original,
// or a thumbnail of one size and method. A clean thumbnail says nothing
// about the original, so verdicts are remembered per rendition; a block
// covers every rendition of the key.
type Rendition struct {
	Key MediaKey
	// Thumb is "" for the original, else the thumbnail's width, height,
	// method and animation as requested.
	Thumb string
}

// Original is the rendition that is the stored file itself.
func (k MediaKey) Original() Rendition { return Rendition{Key: k} }

// renditionOf is the rendition an endpoint asks for.
func renditionOf(k MediaKey, ep Endpoint, u *url.URL) Rendition {
	if !ep.Thumbnail {
		return k.Original()
	}
	q := u.Query()
	return Rendition{Key: k, Thumb: strings.Join([]string{q.Get("width") + "x" + q.Get("height"), q.Get("method"), q.Get("animated")}, ":")}
}
