package hmaapi

import (
	"encoding/hex"
	"errors"
	"strings"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
)

// Signal type names, as HMA spells them. HMA 1.1.7 enables pdq and
// video_md5 (its GET /c/signal_type); md5, sha1 and sha256 are
// mediaguard's extensions: HMA has no exact image hash signal type, and
// its NCMEC importer drops NCMEC's image MD5 and SHA-1, which mediaguard's
// banks keep.
const (
	SignalPDQ      = "pdq"
	SignalVideoMD5 = "video_md5"
	SignalMD5      = "md5"
	SignalSHA1     = "sha1"
	SignalSHA256   = "sha256"
)

// hmaSignalTypes are the signal types HMA itself has, in the order its
// GET /m/index/status lists them.
var hmaSignalTypes = []string{SignalPDQ, SignalVideoMD5}

// signalType is what a lookup of one signal type needs.
type signalType struct {
	name string
	// digits is the length of the hex signal.
	digits int
	// exact types answer "distance":"-", HMA's printed similarity of an
	// exact match (python-threatexchange's TrivialSignalTypeIndex).
	exact bool
	// what names the hash in HMA's "invalid signal" message.
	what string
}

var signalTypes = map[string]signalType{
	SignalPDQ:      {name: SignalPDQ, digits: 64, what: "PDQ"},
	SignalVideoMD5: {name: SignalVideoMD5, digits: 32, exact: true, what: "MD5"},
	SignalMD5:      {name: SignalMD5, digits: 32, exact: true, what: "MD5"},
	SignalSHA1:     {name: SignalSHA1, digits: 40, exact: true, what: "SHA1"},
	SignalSHA256:   {name: SignalSHA256, digits: 64, exact: true, what: "SHA256"},
}

// errInvalidSignal is a signal that is not a hash of its type; its text is
// HMA's message after "invalid signal: ".
var errInvalidSignal = errors.New("invalid signal")

// query turns a signal into the matcher query a lookup asks. PDQ is taken
// as it is: python-threatexchange's PdqSignal.validate_signal_str accepts
// only ^[0-9a-f]{64}$ (HMA 1.1.7 answers uppercase with 400). The exact
// types are stripped and lower-cased first, as its VideoMD5Signal does
// (signal_type/md5.py in
// https://github.com/facebook/ThreatExchange/tree/main/python-threatexchange).
// A PDQ signal carries no quality: HMA's /h/hash already answered "" for
// one below its threshold, so it is looked up as full quality.
func (st signalType) query(signal string) (matcher.Query, error) {
	var q matcher.Query
	if st.name == SignalPDQ {
		if !isLowerHex(signal, 64) {
			return q, errors.New("invalid PDQ hash")
		}
		h, err := pdq.ParseHex(signal)
		if err != nil {
			return q, errors.New("invalid PDQ hash")
		}
		q.Has, q.PDQ, q.PDQQuality, q.Kind = matcher.HasPDQ, h, 100, matcher.KindImage
		return q, nil
	}
	s := strings.ToLower(strings.TrimSpace(signal))
	if !isLowerHex(s, st.digits) {
		return q, errors.New("not a valid " + st.what + " hash")
	}
	switch st.name {
	case SignalVideoMD5, SignalMD5:
		hex.Decode(q.MD5[:], []byte(s))
		q.Has = matcher.HasMD5
		// HMA backends are asked video_md5 only for videos; an image MD5
		// is for local banks and lookup services.
		if st.name == SignalVideoMD5 {
			q.Kind = matcher.KindVideo
		}
	case SignalSHA1:
		hex.Decode(q.SHA1[:], []byte(s))
		q.Has = matcher.HasSHA1
	case SignalSHA256:
		hex.Decode(q.SHA256[:], []byte(s))
		q.Has = matcher.HasSHA256
	}
	return q, nil
}

// isLowerHex reports whether s is exactly n lowercase hex digits.
func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
