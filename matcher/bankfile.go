package matcher

// Bank files: what format a file is in (DetectFormat), the entry points that
// read files and directories into a Bank (ParseBank, LoadBank, parseFile),
// and the signature that tells when a bank path changed (fileSig).

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Format is the syntax of a bank file.
type Format int

// Bank file formats. FormatAuto sniffs the content and uses the file name's
// extension only when the content is ambiguous (empty or comments only).
const (
	// FormatAuto detects the format; LoadBank always uses it.
	FormatAuto Format = iota
	// FormatText is one entry per line: "TYPE HASH [label...]", with "#"
	// comments.
	FormatText
	// FormatCSV is "type,hash[,label]" records with an optional header.
	FormatCSV
	// FormatNCMEC is an NCMEC hash-sharing API v2 XML document.
	FormatNCMEC
)

// String names the format as logs and errors spell it.
func (f Format) String() string {
	switch f {
	case FormatText:
		return "text"
	case FormatCSV:
		return "csv"
	case FormatNCMEC:
		return "ncmec-xml"
	}
	return "auto"
}

// Problem is one bank file entry that was rejected and skipped.
type Problem struct {
	// File is the path of the bank file.
	File string `json:"file"`
	// Line is the 1-based line number (0 when unknown).
	Line int `json:"line,omitempty"`
	// Offset is the byte offset of an XML entry (0 for line formats).
	Offset int64 `json:"offset,omitempty"`
	// ID is the NCMEC entry id, for XML entries that have one.
	ID string `json:"id,omitempty"`
	// Msg says what is wrong.
	Msg string `json:"msg"`
}

// String formats the problem as "file:line: msg", with the NCMEC id and
// byte offset when known.
func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		fmt.Fprintf(&b, ":%d", p.Line)
	}
	if p.ID != "" || p.Offset > 0 {
		b.WriteString(" (")
		if p.ID != "" {
			fmt.Fprintf(&b, "entry %q", p.ID)
			if p.Offset > 0 {
				b.WriteString(", ")
			}
		}
		if p.Offset > 0 {
			fmt.Fprintf(&b, "byte %d", p.Offset)
		}
		b.WriteString(")")
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	return b.String()
}

// Counts is the number of distinct entries per hash type.
type Counts struct {
	MD5      int `json:"md5"`
	SHA1     int `json:"sha1"`
	SHA256   int `json:"sha256"`
	PDQ      int `json:"pdq"`
	VideoMD5 int `json:"video_md5"`
}

// Total is the sum over all types.
func (c Counts) Total() int { return c.MD5 + c.SHA1 + c.SHA256 + c.PDQ + c.VideoMD5 }

func (c *Counts) add(o Counts) {
	c.MD5 += o.MD5
	c.SHA1 += o.SHA1
	c.SHA256 += o.SHA256
	c.PDQ += o.PDQ
	c.VideoMD5 += o.VideoMD5
}

// DetectFormat picks a bank file's format from its first bytes (head, a few
// KiB suffice) and, when those are ambiguous, its name's extension.
func DetectFormat(name string, head []byte) Format {
	head = bytes.TrimPrefix(head, utf8BOM)
	if t := bytes.TrimLeft(head, " \t\r\n"); len(t) > 0 && t[0] == '<' {
		return FormatNCMEC
	}
	// The first entry line decides: CSV has a comma before any blank.
	for len(head) > 0 {
		line := head
		if i := bytes.IndexByte(head, '\n'); i >= 0 {
			line, head = head[:i], head[i+1:]
		} else {
			head = nil
		}
		line = bytes.TrimLeft(line, " \t\r")
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		if line[0] == '"' {
			return FormatCSV
		}
		if i := bytes.IndexAny(line, ", \t"); i >= 0 && line[i] == ',' {
			return FormatCSV
		}
		return FormatText
	}
	switch strings.ToLower(filepath.Ext(name)) {
	case ".csv":
		return FormatCSV
	case ".xml":
		return FormatNCMEC
	}
	return FormatText
}

var utf8BOM = []byte{0xef, 0xbb, 0xbf}

// parseFile parses one file into b. It returns an error when the file cannot
// be read or parsed at all, or yields no entry but has problems; individual
// bad entries are recorded in b and skipped.
//
// sizeHint, the file's size if known (else 0), lets the text parser size its
// slices once: growing a ten-million-entry slice by appending copies it many
// times over, which was a third of the load time.
func (b *bankBuilder) parseFile(file string, r io.Reader, format Format, sizeHint int64) error {
	if l, ok := r.(interface{ Len() int }); ok && sizeHint <= 0 {
		sizeHint = int64(l.Len())
	}
	// A buffer of maxLineLen is what bounds a line; a smaller input cannot
	// hold a longer line, so small files (and fuzz inputs) get a small one.
	bufSize := maxLineLen
	if sizeHint > 0 && sizeHint+16 < maxLineLen {
		bufSize = int(sizeHint) + 16
	}
	br := bufio.NewReaderSize(r, bufSize)
	if head, _ := br.Peek(3); bytes.Equal(head, utf8BOM) {
		br.Discard(3)
	}
	if format == FormatAuto {
		head, err := br.Peek(4096)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return fmt.Errorf("%s: %w", file, err)
		}
		format = DetectFormat(file, head)
	}
	good, probs := b.good, b.nProblems
	var err error
	switch format {
	case FormatText:
		err = b.parseText(file, br, sizeHint)
	case FormatCSV:
		err = b.parseCSV(file, br)
	case FormatNCMEC:
		err = b.parseNCMEC(file, br)
	default:
		err = fmt.Errorf("unknown bank format %d", format)
	}
	if err != nil {
		return fmt.Errorf("%s (%s): %w", file, format, err)
	}
	if b.good == good && b.nProblems > probs {
		first := ""
		if probs < len(b.problems) {
			first = "; first: " + b.problems[probs].String()
		}
		return fmt.Errorf("%s (%s): no valid entries, %d problems%s", file, format, b.nProblems-probs, first)
	}
	return nil
}

// ParseBank parses one bank file's content into a Bank called name. file
// names the content in problems and errors. Bad entries are skipped and
// listed in Bank.Problems; the error is for content that cannot be read or
// parsed at all, or that holds no valid entry but has problems.
func ParseBank(name, file string, r io.Reader, format Format) (*Bank, error) {
	var b bankBuilder
	if err := b.parseFile(file, r, format, 0); err != nil {
		return nil, err
	}
	return b.build(name, file), nil
}

// LoadBank loads the bank called name from path: a file, or a directory
// whose regular files are read in name order as one bank (so NCMEC pages
// saved one per file keep their tombstones working across pages). Hidden
// files and names ending in "~", ".tmp", ".part" or ".swp" are skipped, as
// writers use them for files not yet complete.
func LoadBank(name, path string) (*Bank, error) {
	bk, _, err := loadBank(name, path)
	return bk, err
}

// errChanged reports a bank file that changed while it was read; the load
// is retried rather than trusting a possibly half-written file.
var errChanged = errors.New("file changed while loading")

// loadBank loads path and returns the signature the loaded content had.
func loadBank(name, path string) (*Bank, fileSig, error) {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var before, after fileSig
		before, err = statSig(path)
		if err != nil {
			return nil, nil, err
		}
		var b bankBuilder
		for _, f := range before {
			if err = b.parsePath(f.name); err != nil {
				return nil, nil, err
			}
		}
		after, err = statSig(path)
		if err != nil {
			return nil, nil, err
		}
		if before.equal(after) {
			return b.build(name, path), before, nil
		}
		err = fmt.Errorf("%s: %w", path, errChanged)
		if attempt < 2 {
			time.Sleep(time.Duration(attempt+1) * 50 * time.Millisecond)
		}
	}
	return nil, nil, err
}

func (b *bankBuilder) parsePath(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	return b.parseFile(file, f, FormatAuto, size)
}

// fileSig identifies the content of a bank path cheaply: per file its name,
// size, mtime and identity (inode), so that both in-place rewrites and
// atomic renames are noticed.
type fileSig []fileStamp

type fileStamp struct {
	name string
	info os.FileInfo
}

func (s fileSig) equal(o fileSig) bool {
	if len(s) != len(o) || s == nil != (o == nil) {
		return false
	}
	for i := range s {
		a, b := s[i], o[i]
		if a.name != b.name || a.info.Size() != b.info.Size() ||
			!a.info.ModTime().Equal(b.info.ModTime()) || !os.SameFile(a.info, b.info) {
			return false
		}
	}
	return true
}

func skipBankFile(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".part") ||
		strings.HasSuffix(name, ".swp")
}

// statSig stats path (and, for a directory, its bank files). The result is
// never nil on success, so an empty directory differs from "never loaded".
func statSig(path string) (fileSig, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file", path)
		}
		return fileSig{{name: path, info: fi}}, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, err
	}
	sig := make(fileSig, 0, len(ents))
	for _, de := range ents {
		if skipBankFile(de.Name()) {
			continue
		}
		full := filepath.Join(path, de.Name())
		fi, err := os.Stat(full)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed since ReadDir; the next poll sees the change
			}
			return nil, err
		}
		if fi.Mode().IsRegular() {
			sig = append(sig, fileStamp{name: full, info: fi})
		}
	}
	slices.SortFunc(sig, func(a, b fileStamp) int { return strings.Compare(a.name, b.name) })
	return sig, nil
}
