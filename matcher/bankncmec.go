package matcher

// The NCMEC hash-sharing API v2 XML bank format, tombstones included. The
// document is read by ncmecxml, the one reader of that format (the direct
// importer, package ncmec, reads the API's pages with it too).

import (
	"bytes"
	"io"

	"github.com/mediaguard/mediaguard/matcher/ncmecxml"
)

// NCMECNamespace is the XML namespace of NCMEC hash-sharing v2 documents.
const NCMECNamespace = ncmecxml.Namespace

type ncmecKey struct {
	video bool
	id    string
}

func (b *bankBuilder) parseNCMEC(file string, r io.Reader) error {
	_, err := ncmecxml.Read(r, func(e *ncmecxml.Entry) error {
		b.ncmecEntry(file, e)
		return nil
	})
	return err
}

func (b *bankBuilder) ncmecEntry(file string, e *ncmecxml.Entry) {
	id := string(bytes.TrimSpace(e.ID))
	prob := func(msg string) {
		b.problem(Problem{File: file, Line: e.Line, Offset: e.Offset, ID: id, Msg: msg})
	}
	name := e.Kind.String()
	if e.Overflow {
		prob("<" + name + "> has oversized or too many fields; skipped")
		return
	}
	if id == "" {
		prob("<" + name + "> without <id>; skipped")
		return
	}
	if msg := checkLabel([]byte(id)); msg != "" || len(id) > 64 {
		id = ""
		prob("<" + name + "> has an unusable <id>; skipped")
		return
	}
	video := e.Kind.IsVideo()
	key := ncmecKey{video: video, id: id}
	if e.Kind.IsDeleted() {
		for _, p := range b.ncmec[key] {
			switch p.k {
			case kMD5:
				b.md5[p.i].ref = deletedRef
			case kVideoMD5:
				b.videoMD5[p.i].ref = deletedRef
			case kSHA1:
				b.sha1[p.i].ref = deletedRef
			case kSHA256:
				b.sha256[p.i].ref = deletedRef
			case kPDQ:
				b.pdqRefs[p.i] = deletedRef
			}
			b.tombstoned++
		}
		delete(b.ncmec, key)
		return
	}
	label := make([]byte, 0, 6+len(id)+1+len(e.Classification))
	label = append(label, "ncmec:"...)
	label = append(label, id...)
	if c := bytes.TrimSpace(e.Classification); len(c) > 0 {
		label = append(label, ' ')
		label = append(label, c...)
	}
	for _, fp := range e.Fingerprints {
		val := bytes.TrimSpace(fp.Value)
		if len(val) == 0 {
			continue // NCMEC leaves fingerprints it lacks empty
		}
		var k kind
		switch {
		case !video && fp.Name == "md5":
			k = kMD5
		case !video && fp.Name == "sha1":
			k = kSHA1
		case !video && fp.Name == "pdq":
			k = kPDQ
		case video && fp.Name == "md5":
			k = kVideoMD5
		default:
			continue // no bank type for it (video sha1, video pdq)
		}
		// The label is never empty, so a PDQ entry here always has its
		// pdqRefs slot, which tombstones overwrite.
		pos, msg := b.add(k, val, label)
		if msg != "" {
			prob(msg)
			continue
		}
		if b.ncmec == nil {
			b.ncmec = make(map[ncmecKey][]entryPos)
		}
		b.ncmec[key] = append(b.ncmec[key], pos)
	}
}
