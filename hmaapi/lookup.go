package hmaapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/matcher"
)

// lookupRequest is a parsed GET /m/lookup.
type lookupRequest struct {
	st    signalType
	q     matcher.Query
	banks map[string]bool // nil: every bank
}

// parseLookup reads /m/lookup's query string as HMA 1.1.7's lookup_get
// does (src/OpenMediaMatch/blueprints/matching.py in
// https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner):
// both signal and signal_type are required (an empty one counts as
// missing), an unknown signal type is "No such SignalType", a signal that
// is not a hash of its type is "invalid signal: …", and banks is split on
// commas as it is, names not trimmed. The url form is refused (msgNoURL).
func parseLookup(v url.Values) (lookupRequest, *requestError) {
	var lr lookupRequest
	if v.Get("url") != "" {
		return lr, badRequest(msgNoURL)
	}
	signal, typ := v.Get("signal"), v.Get("signal_type")
	if signal == "" || typ == "" {
		return lr, badRequest("Either url or both signal and signal_type are required")
	}
	st, ok := signalTypes[typ]
	if !ok {
		return lr, badRequest(fmt.Sprintf("No such SignalType '%s'", clip(typ, 64)))
	}
	q, err := st.query(signal)
	if err != nil {
		return lr, badRequest(errInvalidSignal.Error() + ": " + err.Error())
	}
	lr.st, lr.q = st, q
	if b := v.Get("banks"); b != "" {
		lr.banks = make(map[string]bool)
		for _, name := range strings.Split(b, ",") {
			lr.banks[name] = true
		}
	}
	return lr, nil
}

// serveLookup answers GET /m/lookup from the proxy's own matcher.
func (h *Handler) serveLookup(w http.ResponseWriter, r *http.Request, client string) string {
	lr, rerr := parseLookup(r.URL.Query())
	if rerr != nil {
		// HMA's 400 {"message"}: the question cannot be asked. policyserv
		// asks pdq "" for a picture /h/hash found below the quality
		// threshold and reads this as no bank matched, as it does from
		// HMA.
		return h.refuse(w, client, rerr)
	}
	if !h.ready() {
		writeNoVerdict(w, http.StatusServiceUnavailable, "index not yet ready")
		retryAfter(w, 0)
		return OutcomeUnavailable
	}
	v, err := h.m.Match(r.Context(), lr.q)
	if err != nil {
		msg := "lookup failed: the hash lists could not be consulted"
		switch {
		case r.Context().Err() != nil:
			msg = "lookup abandoned: the request was cancelled"
		case errors.Is(err, matcher.ErrUnavailable):
			// on_matcher_error closed: a remote backend is down, so no
			// verdict is given; the detail (URLs, addresses) goes to the
			// log only.
			msg = "hash lists unavailable: a matching backend could not be consulted, try again later"
			retryAfter(w, matcher.DefaultBreakerOpenTimeout)
		}
		h.warn(warnUnavailable, "hma lookup failed", zap.String("client", client), zap.String("signal_type", lr.st.name), zap.Error(err))
		writeNoVerdict(w, http.StatusServiceUnavailable, msg)
		return OutcomeUnavailable
	}
	h.eachLocalBank(r.Context(), &v, lr.q)
	h.alsoRemote(r.Context(), &v, lr.q)
	ans := lookupAnswer(&v, lr.banks)
	writeJSON(w, http.StatusOK, ans)
	if len(ans) > 0 {
		banks := make([]string, 0, len(ans))
		for b := range ans {
			banks = append(banks, b)
		}
		sort.Strings(banks)
		h.log.Info("hma lookup matched", zap.String("signal_type", lr.st.name), zap.Strings("banks", banks),
			// The first 8 characters, as the lookup API logs; the whole
			// hash stays out of logs that are shipped around.
			zap.String("signal_prefix", prefix(r.URL.Query().Get("signal"), 8)), zap.String("reason", v.Reason), zap.String("client", client))
		return OutcomeMatch
	}
	if v.Unscanned {
		// on_matcher_error open: {} as for no match, since the operator
		// chose availability; counted and logged so it is not silent.
		h.warn(warnUnscanned, "hma lookup answered no match without every backend consulted (on_matcher_error open)",
			zap.String("client", client), zap.String("signal_type", lr.st.name), zap.Strings("notes", v.Notes))
		return OutcomeUnscanned
	}
	return OutcomeNoMatch
}

// prefix returns at most the first n bytes of s.
func prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// remoteMatcher is the Guard's MatchRemotes.
type remoteMatcher interface {
	MatchRemotes(ctx context.Context, q matcher.Query) (matcher.Verdict, error)
}

// alsoRemote completes a verdict the local banks decided with the remote
// backends' matches. The Guard stops at a local match, which is all the
// proxy needs; HMA's /m/lookup names every bank holding the signal, and
// its clients choose banks of their own (policyserv counts only those in
// PS_HMA_FILTER_ENABLED_BANKS), so a local match must not hide a remote
// one. Matches are rare, so this costs a (cached) remote call only then.
// A remote that cannot answer changes nothing: the local match stands, as
// a match does in the Guard whatever the fail policy.
func (h *Handler) alsoRemote(ctx context.Context, v *matcher.Verdict, q matcher.Query) {
	rm, ok := h.m.(remoteMatcher)
	if !ok || !v.Match {
		return
	}
	for _, e := range v.Evidence {
		if !strings.HasPrefix(e.Source, "local:") {
			return // the remotes were asked already
		}
	}
	rv, err := rm.MatchRemotes(ctx, q)
	if err != nil || !rv.Match {
		return
	}
	v.Evidence = append(slices.Clip(v.Evidence), rv.Evidence...)
}

// eachBankMatcher is matcher.Local's MatchEachBank.
type eachBankMatcher interface {
	MatchEachBank(ctx context.Context, q matcher.Query) (matcher.Verdict, error)
}

// eachLocalBank replaces the local evidence of a match with every local
// bank's own closest entries. The Guard keeps the closest entries across
// all banks, a bounded list that one bank with many near entries (a
// learned bank holds a dozen forms per picture) can fill, and policyserv
// acts only on the banks it enables: a bank crowded out of the list would
// read as no match.
func (h *Handler) eachLocalBank(ctx context.Context, v *matcher.Verdict, q matcher.Query) {
	each, ok := h.local.(eachBankMatcher)
	if !ok || !v.Match {
		return
	}
	lv, err := each.MatchEachBank(ctx, q)
	if err != nil || !lv.Match {
		return
	}
	ev := lv.Evidence
	for _, e := range v.Evidence {
		if !strings.HasPrefix(e.Source, "local:") {
			ev = append(ev, e)
		}
	}
	v.Evidence = ev
}
