package mediaproxy

import (
	"bytes"
	"context"
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
// searched without a copy; at most maxEmbeddedImages
// of the files found are decoded (their exact digests are all matched).
const (
	maxEmbeddedImages = 8
	carveMaxBytes     = 32 << 20
)

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
// evidence, so random bytes are never refused because of it.
func (p *Proxy) scanEmbedded(ctx context.Context, r io.ReadSeeker, q *matcher.Query) {
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
			return
		}
		data = make([]byte, size)
		_, err = r.Seek(0, io.SeekStart)
		if err == nil {
			_, err = io.ReadFull(r, data)
		}
		r.Seek(0, io.SeekStart)
		if err != nil {
			return
		}
	}
	parts := carve.Carve(data, carve.Limits{MaxBytes: carveMaxBytes, MaxParts: 256})
	// Larger pictures first: a listed photo hides behind many tiny decoys
	// more easily than behind large ones, and only pictures that decode
	// count toward the bound.
	sort.SliceStable(parts, func(i, j int) bool { return len(parts[i].Data) > len(parts[j].Data) })
	decoded, tried := 0, 0
	for _, part := range parts {
		dg := hashing.DigestBytes(part.Data)
		q.Embedded = append(q.Embedded, matcher.EmbeddedDigests{Where: part.Where, MD5: dg.MD5, SHA1: dg.SHA1, SHA256: dg.SHA256})
		if decoded >= maxEmbeddedImages || tried >= 2*maxEmbeddedImages || ctx.Err() != nil {
			continue
		}
		pr := bytes.NewReader(part.Data)
		format, weak := imageByBytes(pr)
		if format == "" {
			continue
		}
		tried++
		pixels := declaredPixels(pr)
		big := pixels == 0 || pixels > smallImagePixels
		if !p.acquireHashSlot(ctx, big) {
			return
		}
		res, err := p.hashImage(ctxBudget(ctx, format, pixels), pr)
		p.releaseHashSlot(big)
		if err != nil {
			if !weak && ctx.Err() == nil {
				p.log.Debug("embedded image not decodable; its exact digests still count", zap.String("where", part.Where), zap.Error(err))
			}
			continue
		}
		decoded++
		q.Forms = appendEmbeddedForms(q.Forms, part.Where, res)

	}
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
