package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
)

// sampleTime is a whole second, as the ledger stores times.
var sampleTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

// sampleHash derives a PDQ hash from seed.
func sampleHash(seed string) pdq.Hash {
	s := sha256.Sum256([]byte(seed))
	var h pdq.Hash
	for i := range h {
		h[i] = binary.BigEndian.Uint64(s[8*i:])
	}
	return h
}

// sampleMediaID is a 24-character media ID, as Synapse and Dendrite make.
func sampleMediaID(i int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	s := sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i)))
	id := make([]byte, 24)
	for j := range id {
		id[j] = alphabet[int(s[j])%len(alphabet)]
	}
	return string(id)
}

// sampleRecord is the record of a still JPEG judged clean, with its
// stored-form PDQ and extra further forms ("frame N").
func sampleRecord(i, extra int) Record {
	seed := fmt.Sprint(i)
	q := matcher.Query{
		Has:        matcher.HasMD5 | matcher.HasSHA1 | matcher.HasSHA256 | matcher.HasPDQ,
		MD5:        [16]byte(sampleSum(seed, "md5")),
		SHA1:       [20]byte(sampleSum(seed, "sha1")),
		SHA256:     [32]byte(sampleSum(seed, "sha256")),
		PDQ:        sampleHash(seed),
		PDQQuality: 100,
		Kind:       matcher.KindImage,
	}
	for f := 0; f < extra; f++ {
		q.Forms = append(q.Forms, pdq.Form{
			Name:    "frame " + fmt.Sprint(f+2),
			Variant: pdq.VariantFrame,
			Hash:    sampleHash(seed + "/" + fmt.Sprint(f)),
			Quality: 90 + f%10,
		})
	}
	return Record{
		Key:       Key{Server: "matrix.example.org", ID: sampleMediaID(i)},
		Size:      int64(50_000 + i%1_000_000),
		Type:      "jpeg",
		Query:     q,
		FirstSeen: sampleTime.Add(time.Duration(i) * time.Second),
		LastSeen:  sampleTime.Add(time.Duration(i)*time.Second + 3*time.Hour),
		Verdict:   Clean,
		Banks:     "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	}
}

func sampleSum(seed, what string) []byte {
	s := sha256.Sum256([]byte(what + seed))
	return s[:]
}

// fullRecord has every field set, the lists included.
func fullRecord() Record {
	r := sampleRecord(7, 0)
	r.Uploader = "@alice:example.org"
	r.Verdict = Blocked
	r.Reason = "listed in local bank csam (pdq distance 12)"
	r.Type = "gif"
	r.Query.Dihedral = make([]pdq.Hash, 8)
	for i := range r.Query.Dihedral {
		r.Query.Dihedral[i] = sampleHash(fmt.Sprint("d", i))
	}
	for _, name := range []string{"frame 2", "displayed", "frame 3 on black", "quadrant 4", "frame 70 quadrant 1", "rotated -3°", "rotated 5°", "video frame at 12.5s", "window 2", "", "a  b", "frame 03", "1.25s", "page 1 image 2", "x"} {
		r.Query.Forms = append(r.Query.Forms, pdq.Form{Name: name, Variant: pdq.VariantQuadrant, Hash: sampleHash(name), Quality: 77})
	}
	r.Query.Forms = append(r.Query.Forms,
		pdq.Form{Name: "odd", Variant: "not-a-variant", Hash: sampleHash("odd"), Quality: -1},
		pdq.Form{Name: "loud", Variant: pdq.VariantNegative, Quality: 1000})
	r.Query.Embedded = []matcher.EmbeddedDigests{
		{Where: "pdf image object 12", MD5: [16]byte(sampleSum("e", "md5")), SHA1: [20]byte(sampleSum("e", "sha1")), SHA256: [32]byte(sampleSum("e", "sha256"))},
		{},
	}
	return r
}
