package service

import (
	"errors"
	"net/http"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hmaapi"
)

// HMAConfig configures an HMA-compatible handler (hmaapi).
type HMAConfig struct {
	// APIKey, MaxBodyBytes (0: max_upload_size), RateLimit and RateBurst:
	// see hmaapi.Config.
	APIKey       string
	MaxBodyBytes int64
	RateLimit    float64
	RateBurst    int
	// ClientKey names the client a request is rate limited as; nil is the
	// remote IP.
	ClientKey func(*http.Request) string
	// OnAnswer is told of every request answered (metrics).
	OnAnswer func(hmaapi.Answer)
	// Logger receives the handler's logs; nil discards them.
	Logger *zap.Logger
}

// HMA returns an HMA-compatible handler (POST /h/hash, GET /m/lookup, …)
// over this service: uploads hashed by the proxy's own spool and hashing,
// lookups answered by the proxy's own guard, banks listed from the same
// local banks and remotes, /h/hash's quality threshold the banks'
// min_pdq_quality.
func (s *Service) HMA(cfg HMAConfig) (*hmaapi.Handler, error) {
	if s == nil || s.guard == nil || s.proxy == nil {
		return nil, errors.New("service: HMA API of a service not built")
	}
	minPDQ := s.local.MinPDQQuality()
	return hmaapi.New(hmaapi.Config{
		Matcher: s.guard, Proxy: s.proxy, Local: s.local, Remote: s.guard, MinPDQQuality: &minPDQ,
		APIKey: cfg.APIKey, MaxBodyBytes: cfg.MaxBodyBytes, RateLimit: cfg.RateLimit, RateBurst: cfg.RateBurst,
		ClientKey: cfg.ClientKey, OnAnswer: cfg.OnAnswer, Logger: cfg.Logger,
	})
}
