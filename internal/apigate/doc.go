// Package apigate is the gate mediaguard's HTTP APIs put in front of
// their work: the optional API key (as a bearer token, a Basic-auth
// password or ?api_key=), a token-bucket rate limit per client, and
// warnings throttled so that a flood of refused requests cannot fill the
// disk. The lookup API (lookupapi) and the HMA-compatible surface (hmaapi)
// share it, so a key, a limit and a refusal mean the same on both.
//
// It knows nothing of either API's answers: callers write their own error
// shapes. It must not import Caddy or any stage.
package apigate
