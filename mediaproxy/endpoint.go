// Package mediaproxy is the inline half of mediaguard: it recognises Matrix
// media requests, spools and hashes uploads before they reach the
// homeserver, buffers and hashes downloads before they reach the client,
// asks the matcher, and refuses matches with Matrix errors. It is plain
// net/http (no Caddy import) so it can be tested with httptest and reused;
// the Caddy adapter only hands it the next handler.
//
// It is the intercept stage: it calls hashing (hash) and matcher (match)
// and hands every decision to an Observer (the act stage, package
// actions); it must not import the actions, the lookup API or Caddy.
package mediaproxy

import (
	"net/http"
	"net/url"
	pathpkg "path"
	"strings"
)

// Kind is what a request does with media.
type Kind int

// Request kinds.
const (
	NotMedia Kind = iota
	// Upload is POST /_matrix/media/{r0,v1,v3}/upload.
	Upload
	// UploadTo is PUT /_matrix/media/{v3,v1}/upload/{server}/{id} (async
	// upload step 2: the media ID is known before the bytes arrive).
	UploadTo
	// Download covers download and thumbnail on the legacy, authenticated
	// client and federation families.
	Download
	// Invalid is a media path whose server or media ID cannot be trusted
	// (encoded slashes, "..", overlong or odd characters). It is refused:
	// letting it through unscanned would be a bypass.
	Invalid
)

// Direction names a media endpoint's kind as metrics do: "upload",
// "download", "invalid", or "" for a request that is not media.
func (ep Endpoint) Direction() string {
	switch ep.Kind {
	case Upload, UploadTo:
		return "upload"
	case Download:
		return "download"
	case Invalid:
		return "invalid"
	}
	return ""
}

// Family is which API family a media request came through.
type Family string

// API families.
const (
	FamilyLegacy     Family = "legacy"     // /_matrix/media/{r0,v1,v3}/...
	FamilyClient     Family = "client"     // /_matrix/client/v1/media/...
	FamilyFederation Family = "federation" // /_matrix/federation/v1/media/... (multipart/mixed)
)

// Endpoint is a parsed media request.
type Endpoint struct {
	Kind   Kind
	Family Family
	// Thumbnail is true for thumbnail requests (different bytes from the
	// original, so clean verdicts are remembered per size and method).
	Thumbnail bool
	// Server and MediaID identify the media; Server is empty for
	// federation requests, which name only local media.
	Server, MediaID string
	// Name is a short endpoint name for logs and metrics labels.
	Name string
	// Method is the request's method: the proxy answers OPTIONS itself,
	// judges GET and HEAD, and refuses the rest (see MethodAllowed).
	Method string
}

// msc3916Prefix is the unstable prefix of authenticated media.
const msc3916Prefix = "/_matrix/client/unstable/org.matrix.msc3916/media/"

// MethodAllowed reports whether the endpoint's method is one the proxy
// judges and forwards: POST for uploads, PUT for async uploads, GET and
// HEAD for downloads. OPTIONS is answered by the proxy (CORS preflight);
// anything else is refused, never forwarded unjudged.
func (ep Endpoint) MethodAllowed() bool {
	switch ep.Kind {
	case Upload:
		return ep.Method == http.MethodPost
	case UploadTo:
		return ep.Method == http.MethodPut
	case Download:
		return ep.Method == http.MethodGet || ep.Method == http.MethodHead
	}
	return false
}

// maxIDLen bounds server names and media IDs (Synapse's media IDs are 24
// letters; server names are DNS names with a port).
const maxIDLen = 255

// Classify parses r's path. Every method on a download, thumbnail or upload
// path is a media request (homeservers serve media on OPTIONS too, and what
// a method does is the homeserver's business, not the client's claim);
// everything else (config, preview_url, create) is NotMedia and passes
// through.
//
// A path that only becomes a media path once it is percent-decoded or
// cleaned ("//", "/./", "%6Dedia") is Invalid: a homeserver's router may
// normalise it and serve media that this parser did not recognise.
func Classify(r *http.Request) Endpoint {
	path := r.URL.EscapedPath()
	if path == "" {
		path = r.URL.Path
	}
	ep := classifyPath(r.Method, path)
	if ep.Kind != NotMedia {
		return ep
	}
	if clean := cleanPath(r.URL.Path); clean != path {
		if alt := classifyPath(r.Method, clean); alt.Kind != NotMedia {
			alt.Kind = Invalid
			return alt
		}
	}
	return ep
}

// cleanPath is p as a lenient router sees it: decoded, with empty and dot
// segments resolved.
func cleanPath(p string) string {
	if p == "" {
		return p
	}
	c := pathpkg.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

// mediaVersion accepts any version-like segment after /_matrix/media/: a
// homeserver may serve versions this parser has never heard of, and an
// unknown one must be judged rather than waved through.
func mediaVersion(v string) bool {
	if v == "" || len(v) > 32 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

func classifyPath(method, path string) Endpoint {
	var fam Family
	var rest string
	switch {
	case strings.HasPrefix(path, "/_matrix/media/"):
		fam = FamilyLegacy
		rest = path[len("/_matrix/media/"):]
		ver, after, ok := strings.Cut(rest, "/")
		if !ok || !mediaVersion(ver) {
			return Endpoint{}
		}
		rest = after
	case strings.HasPrefix(path, "/_matrix/client/v1/media/"):
		fam = FamilyClient
		rest = path[len("/_matrix/client/v1/media/"):]
	case strings.HasPrefix(path, msc3916Prefix):
		// Synapse served authenticated media under MSC3916's unstable
		// prefix before it was stable (1.105-1.110).
		fam = FamilyClient
		rest = path[len(msc3916Prefix):]
	case strings.HasPrefix(path, "/_matrix/federation/v1/media/"):
		fam = FamilyFederation
		rest = path[len("/_matrix/federation/v1/media/"):]
	default:
		return Endpoint{}
	}
	action, args, _ := strings.Cut(rest, "/")
	segs := splitSegments(args)
	ep := Endpoint{Family: fam, Method: method}
	switch action {
	case "upload":
		if fam != FamilyLegacy {
			return Endpoint{}
		}
		switch {
		case args == "":
			ep.Kind, ep.Name = Upload, "upload"
			return ep
		default:
			ep.Name = "upload_to"
			if segs == nil || len(segs) != 2 || !validServer(segs[0]) || !validMediaID(segs[1]) {
				ep.Kind = Invalid
				return ep
			}
			ep.Kind, ep.Server, ep.MediaID = UploadTo, segs[0], segs[1]
			return ep
		}
	case "download", "thumbnail":
		ep.Thumbnail = action == "thumbnail"
		ep.Name = string(fam) + "_" + action
		ep.Kind = Download
		if fam == FamilyFederation {
			// /_matrix/federation/v1/media/download/{mediaId}
			if len(segs) != 1 || !validMediaID(segs[0]) {
				ep.Kind = Invalid
				return ep
			}
			ep.MediaID = segs[0]
			return ep
		}
		// {server}/{id}[/{fileName}] for downloads; thumbnails take no name.
		if len(segs) < 2 || len(segs) > 3 || (ep.Thumbnail && len(segs) != 2) ||
			!validServer(segs[0]) || !validMediaID(segs[1]) {
			ep.Kind = Invalid
			return ep
		}
		ep.Server, ep.MediaID = segs[0], segs[1]
		return ep
	}
	return Endpoint{}
}

// splitSegments unescapes each path segment; nil means a segment that is
// empty, undecodable, or would change meaning once decoded.
func splitSegments(args string) []string {
	if args == "" {
		return []string{}
	}
	parts := strings.Split(args, "/")
	for i, p := range parts {
		u, err := url.PathUnescape(p)
		if err != nil || u == "" || u == "." || u == ".." || strings.ContainsAny(u, "/\\\x00") {
			return nil
		}
		parts[i] = u
	}
	return parts
}

// validServer accepts DNS names, IPv4 and bracketed IPv6 literals with an
// optional port: the grammar of Matrix server names.
func validServer(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':' || c == '[' || c == ']') {
			return false
		}
	}
	return true
}

// validMediaID accepts the characters the spec allows in media IDs
// ([A-Za-z0-9_-]) plus '.' and '=' seen from other implementations.
func validMediaID(s string) bool {
	if len(s) == 0 || len(s) > maxIDLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '=') {
			return false
		}
	}
	return true
}
