// Package ncmecxml reads NCMEC hash-sharing API v2 documents
// (<queryResult>, the answer of GET /v2/entries) as a stream: one entry at
// a time, in constant memory, whatever the document's size. It is the one
// reader of that format: the bank loader (matcher) reads NCMEC XML bank
// files with it and the direct importer (package ncmec) reads the API's
// pages with it.
//
// The document shape is NCMEC's, as python-threatexchange's client reads
// it (https://github.com/facebook/ThreatExchange/blob/main/python-threatexchange/threatexchange/exchanges/clients/ncmec/hash_api.py,
// NCMECEntryUpdate.from_xml and GetEntriesResponse.from_xml):
//
//	<queryResult xmlns="https://hashsharing.ncmec.org/hashsharing/v2">
//	  <images count=".." maxTimestamp="..">
//	    <image><member id="42">Name</member><timestamp>..</timestamp><id>..</id>
//	      <classification>A1</classification>
//	      <fingerprints><md5/><sha1/><pdna/><pdq/></fingerprints></image>
//	    <deletedImage><member id="42"/><id>..</id><timestamp>..</timestamp></deletedImage>
//	  </images>
//	  <videos> (video and deletedVideo, alike) </videos>
//	  <paging><next>/v2/entries?from=..&amp;to=..&amp;start=..&amp;size=..&amp;max=..</next></paging>
//	</queryResult>
//
// It does not import Caddy or any other mediaguard package.
package ncmecxml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Namespace is the XML namespace of NCMEC hash-sharing v2 documents.
// Elements of another namespace are skipped; unqualified ones are read
// (bank files saved by hand often drop the xmlns).
const Namespace = "https://hashsharing.ncmec.org/hashsharing/v2"

// MaxDepth and MaxText bound what the reader keeps, so that a hostile or
// corrupt document cannot make it grow without bound: elements nested
// deeper than MaxDepth are an error, and a field (id, classification,
// timestamp, member id, a fingerprint) longer than MaxText bytes marks its
// entry Overflow.
const (
	MaxDepth = 32
	MaxText  = 1024
	// MaxFingerprints is how many kept fingerprints one entry may have
	// before it is marked Overflow.
	MaxFingerprints = 16
	// maxNext bounds the paging link kept.
	maxNext = 4096
)

// Kind is the element an entry was read from.
type Kind uint8

// The entry elements: an entry (image, video) or a tombstone saying an
// earlier entry of that id was deleted (deletedImage, deletedVideo).
const (
	Image Kind = iota + 1
	Video
	DeletedImage
	DeletedVideo
)

// String is the element's name.
func (k Kind) String() string {
	switch k {
	case Image:
		return "image"
	case Video:
		return "video"
	case DeletedImage:
		return "deletedImage"
	case DeletedVideo:
		return "deletedVideo"
	}
	return "unknown"
}

// IsVideo is true for video and deletedVideo: videos and images have
// separate ids.
func (k Kind) IsVideo() bool { return k == Video || k == DeletedVideo }

// IsDeleted is true for the tombstones.
func (k Kind) IsDeleted() bool { return k == DeletedImage || k == DeletedVideo }

// Fingerprint is one kept fingerprint of an entry: md5, sha1 or pdq (the
// types a bank can hold; PhotoDNA's pdna and video fingerprints given as
// links are not kept).
type Fingerprint struct {
	// Name is "md5", "sha1" or "pdq".
	Name string
	// Value is the element's text, untrimmed.
	Value []byte
}

// Entry is one entry element. The reader reuses it and its slices for the
// next entry: copy what must outlive the callback.
type Entry struct {
	// Kind is the element.
	Kind Kind
	// Line and Offset locate the element's start in the document.
	Line   int
	Offset int64
	// Member is the id attribute of <member>: the NCMEC member (ESP) that
	// submitted the entry.
	Member []byte
	// ID, Classification and Timestamp are the texts of those children,
	// untrimmed; empty when absent.
	ID, Classification, Timestamp []byte
	// Fingerprints are the kept fingerprints, in document order.
	Fingerprints []Fingerprint
	// Overflow is set when a field was longer than MaxText or there were
	// more than MaxFingerprints fingerprints: what was kept is incomplete
	// and the entry should be refused.
	Overflow bool

	text *[]byte
}

// Document is what the reader saw outside the entries.
type Document struct {
	// Next is the text of <paging><next>, "" when the result has no
	// further page (it is the path of the next page, relative to the
	// API's base URL, as NCMEC gives it).
	Next string
	// Entries counts the entry elements read, tombstones included.
	Entries int
}

// Read reads one document from r and calls fn for every entry element, in
// document order. An error from fn ends the read and is returned as is.
// The error is also non-nil when r fails, when the document is not well
// formed XML, and when its root is not an NCMEC <queryResult>.
func Read(r io.Reader, fn func(*Entry) error) (Document, error) {
	var doc Document
	d := xml.NewDecoder(r)
	stack := make([]string, 0, 8)
	var e Entry
	var next []byte
	var nextText *[]byte
	inEntry, sawRoot := false, false
	for {
		off := d.InputOffset()
		tok, err := d.Token()
		if err == io.EOF {
			if !sawRoot {
				// An empty or prolog-only document is an error, not an
				// empty result.
				return doc, errors.New("no XML root element: not an NCMEC <queryResult> document")
			}
			doc.Next = string(next)
			return doc, nil
		}
		if err != nil {
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return doc, fmt.Errorf("XML syntax near line %d: %w", se.Line, err)
			}
			// A read error (a connection cut short, say): the document is
			// incomplete, not malformed.
			return doc, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := t.Name.Local
			if t.Name.Space != "" && t.Name.Space != Namespace {
				// Foreign elements are kept on the stack only to balance
				// it; an empty name matches nothing below.
				name = ""
			}
			if len(stack) == 0 {
				if sawRoot || name != "queryResult" {
					return doc, fmt.Errorf("root element is <%s>, not an NCMEC <queryResult>", t.Name.Local)
				}
				sawRoot = true
			}
			if len(stack) >= MaxDepth {
				return doc, fmt.Errorf("elements nested deeper than %d", MaxDepth)
			}
			stack = append(stack, name)
			nextText = nil
			if !inEntry {
				if len(stack) == 3 && stack[0] == "queryResult" {
					if k := entryKind(stack[1], name); k != 0 {
						inEntry = true
						e.reset(k)
						e.Offset = off
						e.Line, _ = d.InputPos()
					} else if stack[1] == "paging" && name == "next" {
						next = next[:0]
						nextText = &next
					}
				}
				continue
			}
			e.text = nil
			switch rel := len(stack) - e.depth(); {
			case rel == 1 && name == "id":
				e.ID = e.ID[:0]
				e.text = &e.ID
			case rel == 1 && name == "classification":
				e.Classification = e.Classification[:0]
				e.text = &e.Classification
			case rel == 1 && name == "timestamp":
				e.Timestamp = e.Timestamp[:0]
				e.text = &e.Timestamp
			case rel == 1 && name == "member":
				e.Member = e.Member[:0]
				for _, a := range t.Attr {
					if a.Name.Local == "id" && a.Name.Space == "" {
						if len(a.Value) > MaxText {
							e.Overflow = true
						} else {
							e.Member = append(e.Member[:0], a.Value...)
						}
					}
				}
			case rel == 2 && stack[e.depth()] == "fingerprints" && (name == "md5" || name == "sha1" || name == "pdq"):
				if len(e.Fingerprints) >= MaxFingerprints {
					e.Overflow = true
					break
				}
				if len(e.Fingerprints) < cap(e.Fingerprints) {
					e.Fingerprints = e.Fingerprints[:len(e.Fingerprints)+1]
					fp := &e.Fingerprints[len(e.Fingerprints)-1]
					fp.Name, fp.Value = name, fp.Value[:0]
				} else {
					e.Fingerprints = append(e.Fingerprints, Fingerprint{Name: name})
				}
				e.text = &e.Fingerprints[len(e.Fingerprints)-1].Value
			}
		case xml.CharData:
			switch {
			case inEntry && e.text != nil:
				if len(*e.text)+len(t) > MaxText {
					e.Overflow = true
				} else {
					*e.text = append(*e.text, t...)
				}
			case nextText != nil:
				if len(next)+len(t) > maxNext {
					return doc, fmt.Errorf("<paging><next> longer than %d bytes", maxNext)
				}
				next = append(next, t...)
			}
		case xml.EndElement:
			nextText = nil
			if inEntry {
				e.text = nil
				if len(stack) == 3 {
					inEntry = false
					doc.Entries++
					if err := fn(&e); err != nil {
						return doc, err
					}
				}
			}
			stack = stack[:len(stack)-1]
		}
	}
}

// depth is the stack depth of an entry element: queryResult, images or
// videos, the entry.
func (e *Entry) depth() int { return 3 }

func (e *Entry) reset(k Kind) {
	e.Kind = k
	e.Member, e.ID, e.Classification, e.Timestamp = e.Member[:0], e.ID[:0], e.Classification[:0], e.Timestamp[:0]
	e.Fingerprints, e.text, e.Overflow = e.Fingerprints[:0], nil, false
}

func entryKind(parent, name string) Kind {
	switch {
	case parent == "images" && name == "image":
		return Image
	case parent == "images" && name == "deletedImage":
		return DeletedImage
	case parent == "videos" && name == "video":
		return Video
	case parent == "videos" && name == "deletedVideo":
		return DeletedVideo
	}
	return 0
}
