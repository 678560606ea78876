package service

import (
	"context"
	"fmt"
	"net/http"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/homeserver"
)

// SetHomeserver points the requester lookup (whoami with the request's own
// token) at the homeserver's client API base URL; "" stops it. It takes
// effect for the requests that follow, and is only heeded when the Config
// had Homeserver or HomeserverLater set (otherwise the proxy never asks).
func (s *Service) SetHomeserver(url string) error {
	if url == "" {
		s.who.Store(nil)
		return nil
	}
	who, err := homeserver.NewWhoami(homeserver.WhoamiConfig{Homeserver: url})
	if err != nil {
		return fmt.Errorf("homeserver: %w", err)
	}
	s.who.Store(who)
	return nil
}

// userOf resolves the requester with whoami, "" when unknown or when no
// homeserver is set.
func (s *Service) userOf(ctx context.Context, r *http.Request) string {
	who := s.who.Load()
	if who == nil {
		return ""
	}
	u, why := who.User(ctx, homeserver.TokenFrom(r))
	if u == homeserver.Unknown {
		if ce := s.whoLog.Check(zap.DebugLevel, "requester not resolved"); ce != nil {
			ce.Write(zap.String("reason", why))
		}
		return ""
	}
	return u
}
