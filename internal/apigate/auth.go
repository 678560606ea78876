package apigate

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"unicode"
)

// AuthResult is the outcome of checking a request's credential.
type AuthResult int

// Authentication outcomes.
const (
	// AuthOK: the key was presented.
	AuthOK AuthResult = iota
	// AuthMissing: no credential in any accepted place.
	AuthMissing
	// AuthWrong: a credential that is not the key.
	AuthWrong
)

// String names the result for logs.
func (a AuthResult) String() string {
	switch a {
	case AuthOK:
		return "ok"
	case AuthMissing:
		return "no api key"
	}
	return "wrong api key"
}

// Label names the result as metrics label it: "ok", "missing" or "wrong".
func (a AuthResult) Label() string {
	switch a {
	case AuthOK:
		return "ok"
	case AuthMissing:
		return "missing"
	}
	return "wrong"
}

// Authenticator checks the optional API key. It keeps only the key's
// SHA-256: comparing fixed-length digests in constant time reveals neither
// the key's bytes nor its length through timing.
type Authenticator struct {
	digest [sha256.Size]byte
}

// NewAuthenticator refuses keys that no client could send intact: leading
// or trailing spaces are trimmed from bearer tokens, and control
// characters cannot appear in a header. The error has no prefix: callers
// name their API.
func NewAuthenticator(key string) (*Authenticator, error) {
	if strings.TrimSpace(key) != key {
		return nil, errors.New("api key must not start or end with whitespace")
	}
	if strings.ContainsFunc(key, unicode.IsControl) {
		return nil, errors.New("api key must not contain control characters")
	}
	return &Authenticator{digest: sha256.Sum256([]byte(key))}, nil
}

// Check looks for the key as a bearer token, as the Basic auth password
// (a client given https://user:KEY@host/ sends that; the user name is
// ignored) and as the api_key query parameter. Any one matching is enough.
func (a *Authenticator) Check(r *http.Request) AuthResult {
	found, ok := false, false
	try := func(cred string) {
		found = true
		d := sha256.Sum256([]byte(cred))
		// Every candidate is compared; no early return that timing could
		// tell apart.
		if subtle.ConstantTimeCompare(d[:], a.digest[:]) == 1 {
			ok = true
		}
	}
	if v := r.Header.Get("Authorization"); v != "" {
		scheme, cred, _ := strings.Cut(strings.TrimSpace(v), " ")
		if strings.EqualFold(scheme, "Bearer") {
			try(strings.TrimSpace(cred))
		} else if _, pw, isBasic := r.BasicAuth(); isBasic {
			try(pw)
		}
	}
	if r.URL != nil && strings.Contains(r.URL.RawQuery, "api_key") {
		for _, v := range r.URL.Query()["api_key"] {
			try(v)
		}
	}
	switch {
	case ok:
		return AuthOK
	case found:
		return AuthWrong
	}
	return AuthMissing
}

// Challenge is the WWW-Authenticate value of a 401 (RFC 6750). Basic is
// accepted too but not advertised, so browsers do not pop up a prompt.
const Challenge = `Bearer realm="mediaguard"`
