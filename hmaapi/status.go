package hmaapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"

	"github.com/mediaguard/mediaguard/matcher"
)

// bankInfo is one entry of GET /c/banks, as HMA's curation blueprint
// answers it: {"matching_enabled_ratio":1.0,"name":"TEST_BANK"} (keys in
// Flask's sorted order, the ratio printed as a Python float).
type bankInfo struct {
	Ratio json.Number `json:"matching_enabled_ratio"`
	Name  string      `json:"name"`
}

// Python prints a float ratio as 1.0 and 0.0; Go's encoding of 1 would
// be "1". json.Number keeps the text.
const (
	ratioOn  = json.Number("1.0")
	ratioOff = json.Number("0.0")
)

// serveBanks answers GET /c/banks: the local banks in their configured
// order (a disabled bank matches nothing: ratio 0.0), then the banks the
// remote backends are restricted to (HMA's `banks A B`). A remote HMA
// asked about all its banks has banks only it can list.
func (h *Handler) serveBanks(w http.ResponseWriter, r *http.Request, _ string) string {
	out := []bankInfo{}
	seen := map[string]bool{}
	if h.local != nil {
		for _, b := range h.local.Status() {
			ratio := ratioOn
			if !b.Enabled {
				ratio = ratioOff
			}
			out = append(out, bankInfo{Ratio: ratio, Name: b.Name})
			seen[b.Name] = true
		}
	}
	if h.remote != nil {
		rb := h.remote.RemoteBanks()
		names := make([]string, 0, len(rb))
		for name := range rb {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			for _, b := range rb[name] {
				if !seen[b] {
					seen[b] = true
					out = append(out, bankInfo{Ratio: ratioOn, Name: b})
				}
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return OutcomeOK
}

// indexStatus is one signal type's entry of GET /m/index/status (HMA's
// index_status: {"built_to":…,"present":…,"size":…}).
type indexStatus struct {
	// BuiltTo is when the newest bank holding entries of the type was
	// loaded (Unix seconds; HMA: the newest item its index holds), -1
	// when no bank holds any.
	BuiltTo int64 `json:"built_to"`
	// Present: the index exists. mediaguard's banks are indexed as they
	// load, so it always does.
	Present bool `json:"present"`
	// Size is the entries of the type over the enabled banks.
	Size int `json:"size"`
}

// serveIndexStatus answers GET /m/index/status[?signal_type=T] for the
// local banks: by default HMA's signal types (pdq, video_md5); md5, sha1
// and sha256 when asked for by name. An unknown type is HMA's "No such
// signal type" 400.
func (h *Handler) serveIndexStatus(w http.ResponseWriter, r *http.Request, client string) string {
	types := hmaSignalTypes
	if v := r.URL.Query(); v.Has("signal_type") {
		t := v.Get("signal_type")
		if _, ok := signalTypes[t]; !ok {
			return h.refuse(w, client, badRequest(fmt.Sprintf("No such signal type '%s'", clip(t, 64))))
		}
		types = []string{t}
	}
	var banks []matcher.BankStatus
	if h.local != nil {
		banks = h.local.Status()
	}
	out := make(map[string]indexStatus, len(types))
	for _, t := range types {
		st := indexStatus{BuiltTo: -1, Present: true}
		for _, b := range banks {
			if !b.Enabled {
				continue
			}
			n := countOf(b.Counts, t)
			st.Size += n
			if n > 0 && !b.LoadedAt.IsZero() {
				st.BuiltTo = max(st.BuiltTo, b.LoadedAt.Unix())
			}
		}
		out[t] = st
	}
	writeJSON(w, http.StatusOK, out)
	return OutcomeOK
}

// countOf is a bank's entries of one signal type.
func countOf(c matcher.Counts, t string) int {
	switch t {
	case SignalPDQ:
		return c.PDQ
	case SignalVideoMD5:
		return c.VideoMD5
	case SignalMD5:
		return c.MD5
	case SignalSHA1:
		return c.SHA1
	case SignalSHA256:
		return c.SHA256
	}
	return 0
}

// ready reports whether every enabled local bank has a version loaded.
// The banks load before the handler is built, so this holds from the
// start; it is HMA's index_cache_is_ready, kept so that probes and
// clients can ask it as they ask HMA.
func (h *Handler) ready() bool {
	if h.local == nil {
		return true
	}
	for _, b := range h.local.Status() {
		if b.Enabled && b.LoadedAt.IsZero() {
			return false
		}
	}
	return true
}

// Health answers, as HMA's app.py words them (src/OpenMediaMatch/app.py
// in https://github.com/facebook/ThreatExchange/tree/main/hasher-matcher-actioner).
const (
	textAlive     = "I-AM-ALIVE"
	textOK        = "OK"
	textReady     = "READY"
	textNotLoaded = "INDEX-NOT-LOADED"
)

// serveLive answers /livez: 200 "OK" whenever the process serves HTTP.
// HMA's liveness never looks at the index, and says why: a liveness
// probe failing while a large index loads would have the pod restarted
// in a loop.
func (h *Handler) serveLive(w http.ResponseWriter, r *http.Request, _ string) string {
	writeText(w, http.StatusOK, textOK)
	return OutcomeOK
}

// serveReady answers /readyz: 200 "READY" once the banks are loaded, 503
// "INDEX-NOT-LOADED" before.
func (h *Handler) serveReady(w http.ResponseWriter, r *http.Request, _ string) string {
	if !h.ready() {
		writeText(w, http.StatusServiceUnavailable, textNotLoaded)
		return OutcomeUnavailable
	}
	writeText(w, http.StatusOK, textReady)
	return OutcomeOK
}

// serveStatus answers HMA's older combined check, /status: 200
// "I-AM-ALIVE", or 503 "INDEX-NOT-LOADED" before the banks are loaded.
func (h *Handler) serveStatus(w http.ResponseWriter, r *http.Request, _ string) string {
	if !h.ready() {
		writeText(w, http.StatusServiceUnavailable, textNotLoaded)
		return OutcomeUnavailable
	}
	writeText(w, http.StatusOK, textAlive)
	return OutcomeOK
}
