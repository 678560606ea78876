package pdq

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
)

// Hash is a 256-bit PDQ hash. Hash[0] holds the most significant 64 bits, so
// the hex form is the four words printed in order; this is the big-endian hex
// of the reference's 256-bit integer Σ bitₖ·2ᵏ.
type Hash [4]uint64

// HexLen is the length of a hash in hex.
const HexLen = 64

// ErrBadHex is wrapped by ParseHex for anything that is not 64 hex digits.
var ErrBadHex = errors.New("pdq: hash must be 64 hex digits")

// Bit reports bit k (0..255) as the reference numbers them: bit k of the
// 256-bit integer.
func (h Hash) Bit(k int) bool {
	return h[3-k>>6]>>(uint(k)&63)&1 == 1
}

// setBit sets bit k.
func (h *Hash) setBit(k int) {
	h[3-k>>6] |= 1 << (uint(k) & 63)
}

// String returns the 64-character lowercase hex form.
func (h Hash) String() string {
	var b [HexLen]byte
	h.appendHex(b[:0])
	return string(b[:])
}

// AppendHex appends the hex form to dst.
func (h Hash) AppendHex(dst []byte) []byte { return h.appendHex(dst) }

func (h Hash) appendHex(dst []byte) []byte {
	const digits = "0123456789abcdef"
	for _, w := range h {
		for s := 60; s >= 0; s -= 4 {
			dst = append(dst, digits[w>>uint(s)&0xf])
		}
	}
	return dst
}

// MarshalText implements encoding.TextMarshaler (JSON as a hex string).
func (h Hash) MarshalText() ([]byte, error) { return h.appendHex(make([]byte, 0, HexLen)), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHex(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// ParseHex parses 64 hex digits, either case. Anything else is an error that
// wraps ErrBadHex, so bank loaders can report the line.
func ParseHex(s string) (Hash, error) {
	var h Hash
	if len(s) != HexLen {
		return h, fmt.Errorf("%w (got %d characters)", ErrBadHex, len(s))
	}
	var buf [32]byte
	if _, err := hex.Decode(buf[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: %v", ErrBadHex, err)
	}
	for i := range h {
		for j := 0; j < 8; j++ {
			h[i] = h[i]<<8 | uint64(buf[i*8+j])
		}
	}
	return h, nil
}

// Distance is the Hamming distance between two hashes (0..256).
func Distance(a, b Hash) int {
	return bits.OnesCount64(a[0]^b[0]) + bits.OnesCount64(a[1]^b[1]) +
		bits.OnesCount64(a[2]^b[2]) + bits.OnesCount64(a[3]^b[3])
}

// IsZero reports whether every bit is 0: the hash of an image too small to
// hash, which must never be matched.
func (h Hash) IsZero() bool { return h == Hash{} }
