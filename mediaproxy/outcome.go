package mediaproxy

import (
	"context"
	"errors"

	"github.com/mediaguard/mediaguard/matcher"
)

// outcomeOf turns the matcher's answer for a scanned body into what
// happens to it, for uploads, buffered downloads and streamed ones alike;
// each caller only maps the outcome to its own answer (403, 404, 503, an
// aborted stream). gone reports that the client left while the matcher
// was asked: there is nobody to answer and nothing to record.
//
// Streamed bodies are never undecodable (they are judged by their exact
// digests only) and a match on one is LateBlocked: its bytes are already
// out but for the held-back tail.
func (p *Proxy) outcomeOf(ctx context.Context, v matcher.Verdict, err error, sc scanned, streamed bool) (o Outcome, reason string, gone bool) {
	reason = sc.unscannable
	switch {
	case err != nil && errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return "", reason, true
	case err != nil:
		// Fail closed: the matcher could not say.
		return Refused, reason, false
	case v.Match && streamed:
		return LateBlocked, reason, false
	case v.Match:
		return Blocked, reason, false
	case sc.undecodable != "" && p.cfg.OnUndecodableImage == UndecodableBlock:
		return Undecodable, sc.undecodable, false
	case v.WouldBlock:
		// Only lists in report mode matched: the media passes, and the
		// match is reported.
		return WouldBlock, reason, false
	case v.Review && p.cfg.ReviewAction == ReviewHold:
		return Held, reason, false
	case v.Review:
		// A borderline match: the media passes, and a moderator is asked.
		return Review, reason, false
	case v.Unscanned:
		if sc.undecodable != "" {
			reason = sc.undecodable
		}
		return Unscanned, reason, false
	case sc.undecodable != "":
		return Unscannable, sc.undecodable, false
	case sc.unscannable != "":
		return Unscannable, reason, false
	}
	return Clean, reason, false
}
