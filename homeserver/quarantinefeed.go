package homeserver

// Synapse's quarantine feed, and the admin's download past a quarantine:
// what mediaguard learns the moderators' quarantines from.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
)

// QuarantineChange is one record of Synapse's quarantine feed: a media
// item that was quarantined (Quarantined) or taken out of quarantine.
type QuarantineChange struct {
	// Origin is the server of the media's mxc URI (Synapse fills in its
	// own name for local media).
	Origin string `json:"origin"`
	// MediaID is the media ID of the mxc URI.
	MediaID string `json:"media_id"`
	// Quarantined is true for a quarantine, false for its removal.
	Quarantined bool `json:"quarantined"`
}

// QuarantinePage is one page of the feed.
type QuarantinePage struct {
	// NextBatch is the position to ask from for the next page: the
	// stream position of the last change, or Synapse's current position
	// when the page is empty.
	NextBatch int64 `json:"next_batch"`
	// Changes are the changes after the position asked from, oldest
	// first.
	Changes []QuarantineChange `json:"changes"`
}

// QuarantineFeedPageSize is the most changes Synapse puts in one page
// (ListQuarantineChanges in
// https://github.com/element-hq/synapse/blob/develop/synapse/rest/admin/media.py).
const QuarantineFeedPageSize = 100

// QuarantineChanges returns the feed's changes after position from: GET
// /_synapse/admin/v1/media/quarantine_changes?from=N (Synapse ≥ 1.152,
// "Listing quarantined media changes" in
// https://element-hq.github.io/synapse/latest/admin_api/media_admin_api.html).
// The feed is best effort: records may be missing or repeated, and only
// changes made through the quarantine admin API are recorded. A Synapse
// without it answers 404 M_UNRECOGNIZED (see FeedMissing); a from beyond
// the stream's end, 400 M_INVALID_PARAM (see FeedPositionInvalid).
func (a *Admin) QuarantineChanges(ctx context.Context, from int64) (QuarantinePage, error) {
	body, err := a.call(ctx, http.MethodGet, quarantineFeedPath+"?from="+strconv.FormatInt(from, 10), nil)
	if err != nil {
		return QuarantinePage{}, err
	}
	var p QuarantinePage
	if err := json.Unmarshal(body, &p); err != nil {
		return QuarantinePage{}, fmt.Errorf("%w: the quarantine_changes answer is not JSON: %v", ErrAdmin, err)
	}
	return p, nil
}

// FeedMissing reports whether err is the homeserver saying it has no
// quarantine feed: 404 on the feed's path, which is how Synapse before
// 1.152 (and any homeserver without Synapse's admin API) answers an
// unknown admin path.
func FeedMissing(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusNotFound && se.Path == quarantineFeedPath
}

const quarantineFeedPath = "/_synapse/admin/v1/media/quarantine_changes"

// FeedPositionInvalid reports whether err is Synapse refusing the
// position asked from as beyond its stream (400 M_INVALID_PARAM): the
// homeserver's database was restored or replaced since it was handed out.
func FeedPositionInvalid(err error) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Status == http.StatusBadRequest && se.Errcode == "M_INVALID_PARAM"
}

// ErrTooLarge is a download longer than the limit asked for.
var ErrTooLarge = errors.New("homeserver: media larger than the limit")

// DownloadQuarantined copies one media item into w as an admin, past its
// quarantine: GET /_matrix/client/v1/media/download/{origin}/{mediaId}
// ?admin_unsafely_bypass_quarantine=true with the admin token ("Downloading
// quarantined media" in
// https://element-hq.github.io/synapse/latest/admin_api/media_admin_api.html;
// the authenticated download is
// https://spec.matrix.org/v1.11/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid).
// It returns the Content-Type and the bytes copied. A body longer than
// limit is ErrTooLarge; a refusal is an error wrapping ErrAdmin and a
// *StatusError (404 M_NOT_FOUND for media deleted or never stored). It
// makes one attempt, bounded by ctx only: media may be large.
func (a *Admin) DownloadQuarantined(ctx context.Context, origin, mediaID string, w io.Writer, limit int64) (string, int64, error) {
	ct, n, err := DownloadMedia(ctx, a.cfg.HTTPClient, a.cfg.Homeserver, a.cfg.AccessToken, origin, mediaID, "admin_unsafely_bypass_quarantine=true", w, limit)
	if err != nil && !errors.Is(err, ErrTooLarge) {
		err = fmt.Errorf("%w: %w", ErrAdmin, err)
	}
	return ct, n, err
}

// DownloadMedia copies media origin/mediaID into w through the
// authenticated media API (GET /_matrix/client/v1/media/download/{origin}/{id}
// at base, with token as bearer and query, if any, appended:
// https://spec.matrix.org/v1.11/client-server-api/#get_matrixclientv1mediadownloadservernamemediaid)
// and returns its Content-Type and the bytes copied. A body longer than
// limit is ErrTooLarge; one shorter than its Content-Length (the
// connection cut) is an error, never a short file taken for the media; a
// refusal is a *StatusError. The token never appears in an error.
func DownloadMedia(ctx context.Context, c *http.Client, base, token, origin, mediaID, query string, w io.Writer, limit int64) (string, int64, error) {
	path := "/_matrix/client/v1/media/download/" + url.PathEscape(origin) + "/" + url.PathEscape(mediaID)
	target := base + path
	if query != "" {
		target += "?" + query
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("GET %s: %s", path, redact(err.Error(), token))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return "", 0, statusError(http.MethodGet, path, resp.StatusCode, body)
	}
	if resp.ContentLength > limit {
		return "", 0, fmt.Errorf("%w: %s is %d bytes, the limit is %d", ErrTooLarge, path, resp.ContentLength, limit)
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, limit+1))
	switch {
	case err != nil:
		return "", n, fmt.Errorf("GET %s: reading the body: %s", path, redact(err.Error(), token))
	case n > limit:
		return "", n, fmt.Errorf("%w: %s is over %d bytes", ErrTooLarge, path, limit)
	case resp.ContentLength >= 0 && n != resp.ContentLength:
		return "", n, fmt.Errorf("GET %s: %d bytes of %d", path, n, resp.ContentLength)
	}
	return resp.Header.Get("Content-Type"), n, nil
}

// MediaInfo is what the admin API says of one media item.
type MediaInfo struct {
	// QuarantinedBy is the user who quarantined it ("system" for an
	// upload of bytes already quarantined), "" when it is not
	// quarantined.
	QuarantinedBy string
	// SHA256 is the hex SHA-256 of its bytes, "" when Synapse has none
	// (media stored before 1.128).
	SHA256 string
}

// MediaInfo asks about one local or cached remote media item: GET
// /_synapse/admin/v1/media/{origin}/{mediaId} → {"media_info": {...,
// "quarantined_by", "sha256"}} ("Query a piece of media by ID" in
// https://element-hq.github.io/synapse/latest/admin_api/media_admin_api.html).
// Unknown media (or remote media not cached) is 404 M_NOT_FOUND.
func (a *Admin) MediaInfo(ctx context.Context, origin, mediaID string) (MediaInfo, error) {
	body, err := a.call(ctx, http.MethodGet, "/_synapse/admin/v1/media/"+url.PathEscape(origin)+"/"+url.PathEscape(mediaID), nil)
	if err != nil {
		return MediaInfo{}, err
	}
	var out struct {
		Info *struct {
			QuarantinedBy *string `json:"quarantined_by"`
			SHA256        *string `json:"sha256"`
		} `json:"media_info"`
	}
	if err := json.Unmarshal(body, &out); err != nil || out.Info == nil {
		return MediaInfo{}, fmt.Errorf("%w: the media answer has no media_info", ErrAdmin)
	}
	var mi MediaInfo
	if out.Info.QuarantinedBy != nil {
		mi.QuarantinedBy = *out.Info.QuarantinedBy
	}
	if out.Info.SHA256 != nil {
		mi.SHA256 = *out.Info.SHA256
	}
	return mi, nil
}
