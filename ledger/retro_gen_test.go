package ledger

// Generated ledgers and bank changes for the retro-scan's benchmark and
// property test: a realistic mix of records, and bank lines planted to hit
// chosen records at chosen distances.

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
)

// genBanks is the bank fingerprint the generated records were judged
// against.
const genBanks = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// genRecord is record i of a generated ledger (seed picks the ledger):
//
//   - 75% still images (jpeg, png, webp): exact digests and the stored
//     form's PDQ, quality 50..100, no further forms;
//   - 10% still images with 1..3 further forms (displayed, composited on
//     white, a frame);
//   - 4% animations and videos with 4..12 frames;
//   - 3% still images whose PDQ quality is under the matcher's minimum;
//   - 6% unscannable files (exact digests only);
//   - 1% PDFs with one or two embedded images' digests and their PDQs as
//     forms;
//   - 1% already blocked.
//
// Every record has a 24-character media ID on one of three servers, an
// uploader for a third of them, first and last seen times.
func genRecord(i int, seed uint64) Record {
	rng := rand.New(rand.NewPCG(uint64(i), seed))
	r := Record{
		Key:       Key{Server: genServers[i%len(genServers)], ID: genMediaID(rng)},
		Size:      int64(1000 + rng.IntN(8<<20)),
		FirstSeen: sampleTime.Add(time.Duration(i) * time.Second),
		Verdict:   Clean,
		Banks:     genBanks,
	}
	r.LastSeen = r.FirstSeen.Add(time.Duration(rng.IntN(1e6)) * time.Second)
	if rng.IntN(3) == 0 {
		r.Uploader = fmt.Sprintf("@user%d:%s", rng.IntN(50000), r.Key.Server)
	}
	q := &r.Query
	q.Has = matcher.HasMD5 | matcher.HasSHA1 | matcher.HasSHA256
	fill(rng, q.MD5[:])
	fill(rng, q.SHA1[:])
	fill(rng, q.SHA256[:])
	still := func() {
		q.Has |= matcher.HasPDQ
		q.Kind = matcher.KindImage
		q.PDQ = genHash(rng)
		q.PDQQuality = 50 + rng.IntN(51)
		r.Type = []string{"jpeg", "png", "webp"}[rng.IntN(3)]
	}
	switch p := rng.IntN(100); {
	case p < 75:
		still()
	case p < 85:
		still()
		for f := range 1 + rng.IntN(3) {
			name := []string{"displayed", "on white", fmt.Sprint("frame ", f+2)}[f]
			q.Forms = append(q.Forms, pdq.Form{Name: name, Variant: variantOf(name), Hash: genHash(rng), Quality: 50 + rng.IntN(51)})
		}
	case p < 89:
		still()
		video := rng.IntN(2) == 0
		if video {
			r.Type, q.Kind = "mp4", matcher.KindVideo
			q.Has &^= matcher.HasPDQ
			q.PDQ, q.PDQQuality = pdq.Hash{}, 0
		} else {
			r.Type = "gif"
		}
		for f := range 4 + rng.IntN(9) {
			name := fmt.Sprint("frame ", f+2)
			if video {
				name = fmt.Sprintf("video frame at %d.%ds", f, rng.IntN(10))
			}
			q.Forms = append(q.Forms, pdq.Form{Name: name, Variant: variantOf(name), Hash: genHash(rng), Quality: 40 + rng.IntN(61)})
		}
	case p < 92:
		still()
		q.PDQQuality = rng.IntN(matcher.DefaultMinPDQQuality)
	case p < 98:
		r.Verdict, q.Kind = Unscannable, matcher.KindFile
		r.Type = []string{"", "pdf", "zip", "mp3"}[rng.IntN(4)]
	case p < 99:
		r.Type, q.Kind = "pdf", matcher.KindFile
		for e := range 1 + rng.IntN(2) {
			d := matcher.EmbeddedDigests{Where: fmt.Sprintf("pdf image object %d", 3+e)}
			fill(rng, d.MD5[:])
			fill(rng, d.SHA1[:])
			fill(rng, d.SHA256[:])
			q.Embedded = append(q.Embedded, d)
			name := fmt.Sprintf("page 1 image %d", e+1)
			q.Forms = append(q.Forms, pdq.Form{Name: name, Variant: pdq.VariantEmbedded, Hash: genHash(rng), Quality: 50 + rng.IntN(51)})
		}
	default:
		still()
		r.Verdict, r.Reason = Blocked, "listed in local bank OLD (pdq distance 3)"
	}
	return r
}

var genServers = []string{"matrix.example.org", "example.com", "chat.example.net"}

func genMediaID(rng *rand.Rand) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	id := make([]byte, 24)
	for j := range id {
		id[j] = alphabet[rng.IntN(len(alphabet))]
	}
	return string(id)
}

func fill(rng *rand.Rand, b []byte) {
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
}

func genHash(rng *rand.Rand) pdq.Hash {
	var h pdq.Hash
	for i := range h {
		h[i] = rng.Uint64()
	}
	return h
}

// flipBits returns h with d distinct bits flipped: a hash at distance d.
func flipBits(rng *rand.Rand, h pdq.Hash, d int) pdq.Hash {
	for _, b := range rng.Perm(256)[:d] {
		h[b/64] ^= 1 << (b % 64)
	}
	return h
}

func distance(a, b pdq.Hash) int {
	n := 0
	for i := range a {
		n += bits.OnesCount64(a[i] ^ b[i])
	}
	return n
}

// genChange returns nPDQ PDQ and nExact exact bank lines that a bank
// gains, planted to hit (and to just miss) some of the records in
// targets, the rest random. Planted PDQ lines are a target's stored PDQ
// or one of its forms at distances 0 to the threshold and just beyond;
// planted exact lines its MD5, SHA-1, SHA-256, an embedded file's digest,
// or its MD5 as video_md5. Which of them match is for the linear scan to
// say: a low-quality PDQ or an already blocked record is planted too.
func genChange(rng *rand.Rand, targets []Record, nPDQ, nExact int) []string {
	var pdqLines, exactLines []string
	th := matcher.DefaultPDQThreshold
	dists := []int{0, 1, 7, 16, th - 1, th, th, th + 1, th + 2, 48}
	for i, r := range targets {
		q := &r.Query
		hashes := []pdq.Hash{}
		if q.Has&matcher.HasPDQ != 0 {
			hashes = append(hashes, q.PDQ)
		}
		for _, f := range q.Forms {
			hashes = append(hashes, f.Hash)
		}
		if len(hashes) > 0 && len(pdqLines) < nPDQ && i%2 == 0 {
			h := flipBits(rng, hashes[rng.IntN(len(hashes))], dists[rng.IntN(len(dists))])
			pdqLines = append(pdqLines, fmt.Sprintf("pdq %s planted-%d", h, i))
			continue
		}
		if len(exactLines) >= nExact {
			continue
		}
		var line string
		switch k := rng.IntN(5); {
		case len(q.Embedded) > 0 && k < 2:
			e := q.Embedded[rng.IntN(len(q.Embedded))]
			line = []string{"md5 " + hex.EncodeToString(e.MD5[:]), "sha1 " + hex.EncodeToString(e.SHA1[:]), "sha256 " + hex.EncodeToString(e.SHA256[:])}[rng.IntN(3)]
		case k == 0:
			line = "md5 " + hex.EncodeToString(q.MD5[:])
		case k == 1:
			line = "sha1 " + hex.EncodeToString(q.SHA1[:])
		case k == 2:
			line = "video_md5 " + hex.EncodeToString(q.MD5[:])
		default:
			line = "sha256 " + hex.EncodeToString(q.SHA256[:])
		}
		exactLines = append(exactLines, fmt.Sprintf("%s planted-%d", line, i))
	}
	for len(pdqLines) < nPDQ {
		pdqLines = append(pdqLines, fmt.Sprintf("pdq %s new-%d", genHash(rng), len(pdqLines)))
	}
	for len(exactLines) < nExact {
		var d [32]byte
		fill(rng, d[:])
		line := []string{"md5 " + hex.EncodeToString(d[:16]), "sha1 " + hex.EncodeToString(d[:20]), "sha256 " + hex.EncodeToString(d[:])}[len(exactLines)%3]
		exactLines = append(exactLines, fmt.Sprintf("%s new-%d", line, len(exactLines)))
	}
	return append(pdqLines, exactLines...)
}

// genBaseBank is a bank as it stood before the change: n random lines of
// each kind.
func genBaseBank(rng *rand.Rand, n int) []string {
	var lines []string
	for i := range n {
		var d [32]byte
		fill(rng, d[:])
		lines = append(lines,
			fmt.Sprintf("pdq %s old-%d", genHash(rng), i),
			[]string{"md5 " + hex.EncodeToString(d[:16]), "sha1 " + hex.EncodeToString(d[:20]), "sha256 " + hex.EncodeToString(d[:])}[i%3]+fmt.Sprintf(" old-%d", i))
	}
	return lines
}

// serviceChange builds the retro-scan's question as the service does: a
// real Local loads the bank file holding base, the file gains added and is
// reloaded, and the BankChange its OnChange hook reports becomes
// Local.RetroMatcher(change.Added) (service.retroMatchers). It returns the
// Change for Book.Retro (incremental: From is the fingerprint before) and
// the Local.
func serviceChange(tb testing.TB, base, added []string, id string, dihedral bool) (Change, *matcher.Local) {
	tb.Helper()
	dir := tb.TempDir()
	path := filepath.Join(dir, "bank.txt")
	if err := os.WriteFile(path, []byte(strings.Join(base, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	changes := make(chan matcher.BankChange, 4)
	local, err := matcher.NewLocal(matcher.LocalConfig{
		Banks:          []matcher.BankConfig{{Name: "NEW", Path: path}},
		Dihedral:       dihedral,
		ReloadInterval: -1,
		OnChange:       func(c matcher.BankChange) { changes <- c },
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { local.Close() })
	from := local.Fingerprint()
	if err := os.WriteFile(path, []byte(strings.Join(append(append([]string{}, base...), added...), "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	os.Chtimes(path, future, future)
	if err := local.Reload(); err != nil {
		tb.Fatal(err)
	}
	var c matcher.BankChange
	select {
	case c = <-changes:
	default:
		tb.Fatal("the reload reported no change")
	}
	if got := c.Added.Counts().Total(); got != len(added) {
		tb.Fatalf("the change added %d entries, want %d", got, len(added))
	}
	rm := local.RetroMatcher(c.Added)
	return Change{
		ID: id, From: from, To: c.Fingerprint,
		Added: func(q *matcher.Query) (matcher.Verdict, bool) {
			if !rm.Matches(q) {
				return matcher.Verdict{}, false
			}
			return rm.Match(q), true
		},
		Full: func(q *matcher.Query) (matcher.Verdict, bool) {
			v, err := local.Match(context.Background(), *q)
			return v, err == nil && v.Match
		},
	}, local
}

// linearLocal is the reference: a Local holding only the added lines,
// asked about each record on its own.
func linearLocal(tb testing.TB, added []string, dihedral bool) *matcher.Local {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "added.txt")
	if err := os.WriteFile(path, []byte(strings.Join(added, "\n")+"\n"), 0o600); err != nil {
		tb.Fatal(err)
	}
	l, err := matcher.NewLocal(matcher.LocalConfig{Banks: []matcher.BankConfig{{Name: "NEW", Path: path}}, Dihedral: dihedral, ReloadInterval: -1})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}

// linearHit is the reference's answer for one record: what a retro-scan
// must find (a blocked record is not re-blocked), with the verdict.
func linearHit(l *matcher.Local, r *Record) (matcher.Verdict, bool) {
	if r.Verdict == Blocked {
		return matcher.Verdict{}, false
	}
	v, err := l.Match(context.Background(), r.Query)
	return v, err == nil && v.Match
}
