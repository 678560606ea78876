package apigate

import (
	"fmt"
	"math"
)

// New checks an API's key and rate settings and builds what enforces
// them: an Authenticator (nil when key is empty: no key asked for) and a
// Limiter (nil when rate is 0: no limit) holding at most maxClients
// clients' state.
func New(key string, rate float64, burst, maxClients int) (*Authenticator, *Limiter, error) {
	if burst < 0 {
		return nil, nil, fmt.Errorf("rate burst %d is negative", burst)
	}
	if math.IsNaN(rate) || math.IsInf(rate, 0) || rate < 0 {
		return nil, nil, fmt.Errorf("rate limit %v is not a finite rate >= 0", rate)
	}
	var auth *Authenticator
	if key != "" {
		a, err := NewAuthenticator(key)
		if err != nil {
			return nil, nil, err
		}
		auth = a
	}
	var lim *Limiter
	if rate > 0 {
		lim = NewLimiter(rate, burst, maxClients)
	}
	return auth, lim, nil
}
