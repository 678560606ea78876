package matcher

// Content fingerprints: what a stored verdict was reached against.

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/bits"

	"github.com/mediaguard/mediaguard/hashing/pdq"
)

// contentSum is an order-independent digest of a bank's entries: per
// entry two 64-bit mixes of its kind and digest, summed. Sums need no
// sorting (a bank of ten million entries is digested in the loop that
// builds its maps) and are equal for equal entries in any order. It is a
// checksum, not a commitment: bank files are the operator's, so nothing
// is gained by resisting crafted collisions.
type contentSum [2]uint64

// kindSeeds separate the kinds, so that an md5 and a video_md5 entry of
// the same digest count differently.
var kindSeeds = [...]uint64{
	kMD5: 0x243f6a8885a308d3, kSHA1: 0x13198a2e03707344, kSHA256: 0xa4093822299f31d0,
	kPDQ: 0x082efa98ec4e6c89, kVideoMD5: 0x452821e638d01377,
}

// mix64 is a multiply-fold mix of four words under a seed.
func mix64(seed, a, b, c, d uint64) uint64 {
	h1, l1 := bits.Mul64(a^seed^0xa0761d6478bd642f, b^0xe7037ed1a0b428db)
	h2, l2 := bits.Mul64(c^seed^0x8ebc6af09c88c6e3, d^0x589965cc75374cc3)
	h3, l3 := bits.Mul64(h1^l1^seed, bits.RotateLeft64(h2^l2, 29)^0x1d8e4e27c47d124f)
	return h3 ^ l3
}

func (s *contentSum) add(k kind, a, b, c, d uint64) {
	seed := kindSeeds[k]
	s[0] += mix64(seed, a, b, c, d)
	s[1] += mix64(^seed, a, b, c, d)
}

func (s *contentSum) addPDQ(h *pdq.Hash) { s.add(kPDQ, h[0], h[1], h[2], h[3]) }

func words16(k [16]byte) (a, b, c, d uint64) {
	return binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:]), 0, 0
}

func words20(k [20]byte) (a, b, c, d uint64) {
	return binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:16]), uint64(binary.LittleEndian.Uint32(k[16:])), 0
}

func words32(k [32]byte) (a, b, c, d uint64) {
	return binary.LittleEndian.Uint64(k[:8]), binary.LittleEndian.Uint64(k[8:16]),
		binary.LittleEndian.Uint64(k[16:24]), binary.LittleEndian.Uint64(k[24:])
}

// fingerprintVersion changes whenever what goes into a fingerprint does,
// so that a fingerprint stored by an older build never equals a new one.
const fingerprintVersion = "mediaguard-local-banks-v1"

// fingerprint digests what decides a Local's verdicts: the matching
// settings and, in order, every active bank's name and entries (not its
// path, load time or labels: a label names an entry, it does not decide
// whether media matches it).
func (l *Local) fingerprint(active []*Bank) string {
	h := sha256.New()
	var buf [8]byte
	num := func(v uint64) {
		binary.BigEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	h.Write([]byte(fingerprintVersion))
	num(uint64(l.threshold))
	num(uint64(l.minQuality))
	if l.dihedral {
		num(1)
	} else {
		num(0)
	}
	num(uint64(len(active)))
	for _, b := range active {
		num(uint64(len(b.name)))
		h.Write([]byte(b.name))
		if b.report {
			// Only when set, so that the fingerprints of enforcing
			// banks stay what they were before modes existed.
			h.Write([]byte("report"))
		}
		c := b.counts
		for _, n := range []int{c.MD5, c.SHA1, c.SHA256, c.PDQ, c.VideoMD5} {
			num(uint64(n))
		}
		for _, sum := range b.sums {
			num(sum[0])
			num(sum[1])
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// Fingerprint is a digest of what the verdicts of the banks in use depend
// on: the enabled, loaded banks' names and entries in order, the PDQ
// threshold, the minimum PDQ quality and dihedral matching. It is equal in
// every process whose banks hold the same entries under the same
// settings, whatever the files' paths or times, and changes with any entry
// added or removed (labels excepted: they describe entries, they do not
// decide matches), so a verdict stored with it is known to be current
// while it is unchanged. Computed at each load, it costs a load to read.
func (l *Local) Fingerprint() string { return l.state.Load().fp }
