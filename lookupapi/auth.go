package lookupapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"
	"unicode"
)

// authResult is the outcome of checking a request's credential.
type authResult int

const (
	authOK      authResult = iota
	authMissing            // no credential in any accepted place
	authWrong              // a credential that is not the key
)

// String names the result for logs.
func (a authResult) String() string {
	switch a {
	case authOK:
		return "ok"
	case authMissing:
		return "no api key"
	}
	return "wrong api key"
}

// authenticator checks the optional API key. It keeps only the key's
// SHA-256: comparing fixed-length digests in constant time reveals neither
// the key's bytes nor its length through timing.
type authenticator struct {
	digest [sha256.Size]byte
}

// newAuthenticator refuses keys that no client could send intact: leading
// or trailing spaces are trimmed from bearer tokens, and control characters
// cannot appear in a header.
func newAuthenticator(key string) (*authenticator, error) {
	if strings.TrimSpace(key) != key {
		return nil, errors.New("lookupapi: api key must not start or end with whitespace")
	}
	if strings.ContainsFunc(key, unicode.IsControl) {
		return nil, errors.New("lookupapi: api key must not contain control characters")
	}
	return &authenticator{digest: sha256.Sum256([]byte(key))}, nil
}

// check looks for the key as a bearer token, as the Basic auth password
// (the plugin turns https://user:KEY@host/ into that; the user name is
// ignored) and as the api_key query parameter. Any one matching is enough.
func (a *authenticator) check(r *http.Request) authResult {
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
		return authOK
	case found:
		return authWrong
	}
	return authMissing
}

// writeUnauthorized answers 401 with a bearer challenge (RFC 6750); Basic
// is accepted too but not advertised, so browsers do not pop up a prompt.
func writeUnauthorized(w http.ResponseWriter, res authResult) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="mediaguard"`)
	if res == authWrong {
		writeError(w, http.StatusUnauthorized, codeUnknownToken, "the api key is not valid")
		return
	}
	writeError(w, http.StatusUnauthorized, codeMissingToken,
		"an api key is required: send it as a bearer token, as the basic auth password or as ?api_key=")
}
