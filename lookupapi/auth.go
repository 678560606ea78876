package lookupapi

import (
	"net/http"

	"github.com/mediaguard/mediaguard/internal/apigate"
)

// writeUnauthorized answers 401 with a bearer challenge (RFC 6750); Basic
// is accepted too but not advertised, so browsers do not pop up a prompt.
func writeUnauthorized(w http.ResponseWriter, res apigate.AuthResult) {
	w.Header().Set("WWW-Authenticate", apigate.Challenge)
	if res == apigate.AuthWrong {
		writeError(w, http.StatusUnauthorized, codeUnknownToken, "the api key is not valid")
		return
	}
	writeError(w, http.StatusUnauthorized, codeMissingToken,
		"an api key is required: send it as a bearer token, as the basic auth password or as ?api_key=")
}
