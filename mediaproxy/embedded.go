package mediaproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"go.uber.org/zap"

	"github.com/mediaguard/mediaguard/hashing"
	"github.com/mediaguard/mediaguard/hashing/carve"
	"github.com/mediaguard/mediaguard/hashing/pdq"
	"github.com/mediaguard/mediaguard/matcher"
)

// Carving bounds: a body in memory is searched as it is, a spooled one
// through a read-only mapping of its file, so every body judged whole is
// searched without a copy. The bounds scale with the body, so that a
// container genuinely full of pictures is searched and judged whole; a
// body they do not cover is not judged clean (see scanEmbedded).
const (
	// carveMinBytes is the least inflating budget; a body gets twice its
	// size when that is more, up to carveMaxBytes.
	carveMinBytes = 32 << 20
	carveMaxBytes = 512 << 20
	// carveMaxDepth is how deep containers nest (a zip in a zip in a
	// pdf...); the byte budget bounds the work, not the depth.
	carveMaxDepth = 8
	// carveMaxParts bounds the embedded files whose exact digests are
	// taken.
	carveMaxParts = 4096
	// embeddedMinPixels is the least pixel budget for decoding the
	// embedded pictures of one body; a body gets embeddedPixelsPerByte a
	// byte when that is more. Photos compress to well under a byte a
	// pixel, so a container of photos fits; decoys crafted to be many
	// pixels in few bytes exhaust it, and the body is then judged
	// undecodable rather than clean.
	embeddedMinPixels     = 128_000_000
	embeddedPixelsPerByte = 32
	// embeddedMinCost is what a picture costs whatever its size, so that
	// thousands of tiny ones are bounded too.
	embeddedMinCost = 64 << 10
)

// carveLimits are the carving bounds for a body of n bytes.
func carveLimits(n int) carve.Limits {
	return carve.Limits{MaxBytes: min(max(carveMinBytes, 2*int64(n)), carveMaxBytes), MaxParts: carveMaxParts, MaxDepth: carveMaxDepth}
}

// memBody is a body held in memory: a reader that also hands out its
// bytes, so that searching it for embedded files needs no copy.
type memBody struct {
	*bytes.Reader
	b []byte
}

func newMemBody(b []byte) memBody { return memBody{bytes.NewReader(b), b} }

// scanEmbedded looks inside the body for files a viewer or player would
// show (a JPEG inside a PDF, an SVG's data: URI, an MP3's cover art, a
// Matroska attachment, a ZIP entry, an image after the end of another)
// and adds their exact digests and, for images, their PDQ forms to q. A
// carved candidate that does not decode is ignored: it only ever adds
// evidence, so random bytes are never refused because of it. One that is
// crafted (pdq.ErrCrafted: a picture whose look depends on the decoder)
// is not random bytes, and leaves the body incomplete.
//
// Every picture carved is decoded and hashed, under a pixel budget in
// proportion to the body. When the search or the decoding could not
// cover everything that may be a picture (budgets exhausted, containers
// nested too deep), incomplete says why: the listed picture may be what
// was left, so the caller treats the body as undecodable, never clean.
func (p *Proxy) scanEmbedded(ctx context.Context, r io.ReadSeeker, q *matcher.Query) (incomplete string) {
	var data []byte
	if m, inMemory := r.(memBody); inMemory {
		data = m.b
	} else if mapped, release, ok := mapSpooled(r); ok {
		data = mapped
		defer release()
	} else {
		size, err := r.Seek(0, io.SeekEnd)
		if err != nil || size == 0 || size > p.cfg.MaxDownloadBuffer {
			r.Seek(0, io.SeekStart)
			return ""
		}
		data = make([]byte, size)
		_, err = r.Seek(0, io.SeekStart)
		if err == nil {
			_, err = io.ReadFull(r, data)
		}
		r.Seek(0, io.SeekStart)
		if err != nil {
			return ""
		}
	}
	found := carve.Search(data, carveLimits(len(data)))
	parts := found.Parts
	if found.Incomplete != "" {
		incomplete = "embedded files not all searched: " + found.Incomplete
	}
	// Larger pictures first: if the budget runs out, the body is not
	// clean anyway, and the large ones are the likelier listed photos.
	sort.SliceStable(parts, func(i, j int) bool { return len(parts[i].Data) > len(parts[j].Data) })
	budget := max(int64(embeddedMinPixels), embeddedPixelsPerByte*int64(len(data)))
	left := 0
	for _, part := range parts {
		dg := hashing.DigestBytes(part.Data)
		q.Embedded = append(q.Embedded, matcher.EmbeddedDigests{Where: part.Where, MD5: dg.MD5, SHA1: dg.SHA1, SHA256: dg.SHA256})
		if ctx.Err() != nil {
			continue
		}
		pr := bytes.NewReader(part.Data)
		format, weak := imageByBytes(pr)
		if format == "" {
			continue
		}
		pixels := declaredPixels(pr)
		cost := max(pixels, embeddedMinCost)
		if pixels == 0 {
			cost = max(int64(p.cfg.MaxPixels), embeddedMinCost)
		}
		if cost > budget {
			// A weak picture (its header does not parse strictly) may
			// still be one a browser shows: a JPEG whose height is in a
			// DNL segment, junk between its segments. Once the budget is
			// spent, it is left unhashed like any other, never clean.
			left++
			continue
		}
		budget -= cost
		big := pixels == 0 || pixels > smallImagePixels
		if !p.acquireHashSlot(ctx, big) {
			return incomplete
		}
		res, err := p.hashImage(ctxBudget(ctx, format, pixels), pr)
		p.releaseHashSlot(big)
		if errors.Is(err, pdq.ErrCrafted) {
			// Not random bytes: a picture some viewer shows, built so
			// that what it shows depends on the decoder. Skipping it
			// would let one poisoned block carry a listed picture
			// inside a PDF or an archive.
			if incomplete == "" {
				incomplete = fmt.Sprintf("embedded picture (%s) is crafted: %v", part.Where, err)
			}
			continue
		}
		if err != nil {
			if !weak && ctx.Err() == nil {
				p.log.Debug("embedded image not decodable; its exact digests still count", zap.String("where", part.Where), zap.Error(err))
			}
			continue
		}
		q.Forms = appendEmbeddedForms(q.Forms, part.Where, res)
	}
	if left > 0 && incomplete == "" {
		incomplete = fmt.Sprintf("%d embedded pictures left unhashed: the decoding budget of %d pixels for a %d-byte body ran out", left, max(int64(embeddedMinPixels), embeddedPixelsPerByte*int64(len(data))), len(data))
	}
	return incomplete
}

// appendEmbeddedForms adds the forms of a picture found at where inside
// the body: its stored hash is the embedded variant, and each of its own
// forms keeps its kind (a quadrant of an embedded picture is a quadrant),
// named after where it was found.
func appendEmbeddedForms(forms []pdq.Form, where string, res pdq.Result) []pdq.Form {
	forms = append(forms, pdq.Form{Name: where, Variant: pdq.VariantEmbedded, Hash: res.Hash, Quality: res.Quality})
	for _, f := range res.Forms {
		forms = append(forms, pdq.Form{Name: where + " " + f.Name, Variant: f.Variant, Hash: f.Hash, Quality: f.Quality})
	}
	return forms
}
