package matcher

// The NCMEC hash-sharing API v2 XML bank format, tombstones included.

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// NCMECNamespace is the XML namespace of NCMEC hash-sharing v2 documents.
const NCMECNamespace = "https://hashsharing.ncmec.org/hashsharing/v2"

// maxXMLDepth and maxXMLText bound what the NCMEC parser keeps per element,
// so a hostile or corrupt document cannot make it grow without bound.
const (
	maxXMLDepth = 32
	maxXMLText  = 1024
)

type ncmecKey struct {
	video bool
	id    string
}

// xmlEntry is the NCMEC element being read. It is reused across entries so
// that a large document parses in constant memory beyond the bank itself.
type xmlEntry struct {
	name     string // image, video, deletedImage, deletedVideo
	depth    int    // stack depth of the entry element
	line     int
	off      int64
	id       []byte
	class    []byte
	fps      []xmlFP
	text     *[]byte
	overflow bool
}

type xmlFP struct {
	name string
	val  []byte
}

func (b *bankBuilder) parseNCMEC(file string, r io.Reader) error {
	d := xml.NewDecoder(r)
	stack := make([]string, 0, 8)
	var e xmlEntry
	inEntry, sawRoot := false, false
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			if !sawRoot {
				// An empty or prolog-only file is an error, not an
				// empty bank.
				return errors.New("no XML root element")
			}
			return nil
		}
		if err != nil {
			line, _ := d.InputPos()
			return fmt.Errorf("XML syntax near line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if t.Name.Space != "" && t.Name.Space != NCMECNamespace {
				// Foreign elements are kept on the stack only to balance
				// it; an empty name matches nothing below.
				name = ""
			}
			if len(stack) == 0 {
				if sawRoot || name != "queryResult" {
					return fmt.Errorf("root element is <%s>, not an NCMEC <queryResult>", t.Name.Local)
				}
				sawRoot = true
			}
			if len(stack) >= maxXMLDepth {
				return fmt.Errorf("elements nested deeper than %d", maxXMLDepth)
			}
			stack = append(stack, name)
			if !inEntry {
				if len(stack) == 3 && stack[0] == "queryResult" && isEntryElem(stack[1], name) {
					inEntry = true
					e.name, e.depth, e.off = name, len(stack), off
					e.line, _ = d.InputPos()
					e.id, e.class, e.fps, e.text, e.overflow = e.id[:0], e.class[:0], e.fps[:0], nil, false
				}
				continue
			}
			e.text = nil
			switch rel := len(stack) - e.depth; {
			case rel == 1 && name == "id":
				e.id = e.id[:0]
				e.text = &e.id
			case rel == 1 && name == "classification":
				e.class = e.class[:0]
				e.text = &e.class
			case rel == 2 && stack[e.depth] == "fingerprints" && (name == "md5" || name == "sha1" || name == "pdq"):
				if len(e.fps) >= 16 {
					e.overflow = true
					break
				}
				if len(e.fps) < cap(e.fps) {
					e.fps = e.fps[:len(e.fps)+1]
					e.fps[len(e.fps)-1].name = name
					e.fps[len(e.fps)-1].val = e.fps[len(e.fps)-1].val[:0]
				} else {
					e.fps = append(e.fps, xmlFP{name: name})
				}
				e.text = &e.fps[len(e.fps)-1].val
			}
		case xml.CharData:
			if inEntry && e.text != nil {
				if len(*e.text)+len(t) > maxXMLText {
					e.overflow = true
				} else {
					*e.text = append(*e.text, t...)
				}
			}
		case xml.EndElement:
			if inEntry {
				e.text = nil
				if len(stack) == e.depth {
					inEntry = false
					b.ncmecEntry(file, &e)
				}
			}
			stack = stack[:len(stack)-1]
		}
	}
}

func isEntryElem(parent, name string) bool {
	switch parent {
	case "images":
		return name == "image" || name == "deletedImage"
	case "videos":
		return name == "video" || name == "deletedVideo"
	}
	return false
}

func (b *bankBuilder) ncmecEntry(file string, e *xmlEntry) {
	id := string(bytes.TrimSpace(e.id))
	prob := func(msg string) {
		b.problem(Problem{File: file, Line: e.line, Offset: e.off, ID: id, Msg: msg})
	}
	if e.overflow {
		prob("<" + e.name + "> has oversized or too many fields; skipped")
		return
	}
	if id == "" {
		prob("<" + e.name + "> without <id>; skipped")
		return
	}
	if msg := checkLabel([]byte(id)); msg != "" || len(id) > 64 {
		id = ""
		prob("<" + e.name + "> has an unusable <id>; skipped")
		return
	}
	video := e.name == "video" || e.name == "deletedVideo"
	key := ncmecKey{video: video, id: id}
	if e.name == "deletedImage" || e.name == "deletedVideo" {
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
	label := make([]byte, 0, 6+len(id)+1+len(e.class))
	label = append(label, "ncmec:"...)
	label = append(label, id...)
	if c := bytes.TrimSpace(e.class); len(c) > 0 {
		label = append(label, ' ')
		label = append(label, c...)
	}
	for _, fp := range e.fps {
		val := bytes.TrimSpace(fp.val)
		if len(val) == 0 {
			continue // NCMEC leaves fingerprints it lacks empty
		}
		var k kind
		switch {
		case !video && fp.name == "md5":
			k = kMD5
		case !video && fp.name == "sha1":
			k = kSHA1
		case !video && fp.name == "pdq":
			k = kPDQ
		case video && fp.name == "md5":
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
