package ncmec

// The bank file. It is mediaguard's text bank format (matcher/banktext.go):
//
//	# mediaguard-ncmec-sync v1 bank=NAME base=URL through=2024-05-01T12:00:00Z
//	md5 0123… ncmec:1001 A1 # member 42
//	sha1 89ab… ncmec:1001 A1 # member 42
//	pdq cdef… ncmec:1001 A1 # member 42
//	video_md5 4567… ncmec:2002 B2 # member 7
//
// chosen over NCMEC's own XML because it is what the bank loader reads
// fastest (a line per hash, no XML decoding: a million entries load in
// about a second rather than several), it holds all four hash types and
// a label per line, and it round-trips exactly: the label is the one the
// XML loader gives NCMEC entries ("ncmec:ID CLASSIFICATION"), and what a
// later sync needs to find an entry's lines again (its member) sits in
// the trailing comment, which the loader ignores. An entry's lines are
// consecutive. The header names the source and how far the file is
// synced; the sync refuses to overwrite a file without it.

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"
	"unsafe"

	"github.com/mediaguard/mediaguard/atomicfile"
)

const headerPrefix = "# mediaguard-ncmec-sync v1 "

// Counts is the number of hash lines per type in a bank file.
type Counts struct {
	MD5      int `json:"md5"`
	SHA1     int `json:"sha1"`
	PDQ      int `json:"pdq"`
	VideoMD5 int `json:"video_md5"`
}

// Total is the sum over the types.
func (c Counts) Total() int { return c.MD5 + c.SHA1 + c.PDQ + c.VideoMD5 }

// header is the bank file's first line.
type header struct {
	bank, base string
	through    time.Time // zero: nothing synced yet
}

func (h header) String() string {
	through := "-"
	if !h.through.IsZero() {
		through = h.through.UTC().Format(timeFormat)
	}
	return fmt.Sprintf("%sbank=%s base=%s through=%s", headerPrefix, h.bank, h.base, through)
}

// errNotOurs is a bank path holding a file the sync did not write.
var errNotOurs = errors.New("not written by mediaguard's NCMEC sync")

// readHeader reads path's header. ok is false when the file does not
// exist; an empty file reads as a header with nothing synced.
func readHeader(path string) (h header, ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return header{}, false, nil
	}
	if err != nil {
		return header{}, false, err
	}
	defer f.Close()
	line, err := bufio.NewReaderSize(f, 4096).ReadSlice('\n')
	if len(line) == 0 && err == io.EOF {
		return header{}, true, nil
	}
	h, perr := parseHeader(string(bytes.TrimRight(line, "\r\n")))
	if perr != nil {
		return header{}, true, fmt.Errorf("%s: %w (%v): refusing to overwrite it; move it away or choose another path", path, errNotOurs, perr)
	}
	return h, true, nil
}

func parseHeader(line string) (header, error) {
	rest, ok := strings.CutPrefix(line, headerPrefix)
	if !ok {
		return header{}, errors.New("no sync header on its first line")
	}
	var h header
	for _, f := range strings.Fields(rest) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "bank":
			h.bank = v
		case "base":
			h.base = v
		case "through":
			if v != "-" {
				t, err := time.Parse(timeFormat, v)
				if err != nil {
					return header{}, fmt.Errorf("header through=%q unreadable", v)
				}
				h.through = t
			}
		}
	}
	return h, nil
}

// writeAtomic writes path's new content with atomicfile (temporary file,
// fsync, rename, directory fsync): until the rename the old file is
// untouched; after a crash either the old or the new content is in place,
// never a mix, and the loader (which skips hidden names ending in .tmp)
// never reads the temporary. A new file is 0600; a replaced one keeps its
// mode. Bank files are hundreds of megabytes, so writes go through a
// larger buffer than atomicfile's own.
func writeAtomic(path string, write func(*bufio.Writer) error) error {
	return atomicfile.Write(path, 0o600, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 1<<20)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// EnsureBank creates an empty bank file (a header saying nothing is
// synced yet) at path when there is none, so that the matcher, which
// refuses a bank it cannot load, can start before the first sync. An
// existing file is left alone.
func EnsureBank(cfg Config) error {
	base, err := cfg.base()
	if err != nil {
		return err
	}
	if _, err := os.Lstat(cfg.Path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return writeAtomic(cfg.Path, func(w *bufio.Writer) error {
		_, err := fmt.Fprintf(w, "%s\n%s", header{bank: cfg.Name, base: base.String()}, fileNotice)
		return err
	})
}

const fileNotice = "# NCMEC hash-sharing entries, written by mediaguard's NCMEC sync, which rewrites this file whole: do not edit.\n" +
	"# TYPE HASH ncmec:ID [CLASSIFICATION] # member MEMBER_ID\n"

// merged is what a merge wrote.
type merged struct {
	counts  Counts
	entries int
}

// merge writes the new bank: the old file's lines of entries the window
// does not change (all of them, unless fresh), then the window's entries.
// Lines of the old file that are not the sync's own (an operator's
// addition despite the notice) are kept as they are; its comments are
// not.
func merge(w *bufio.Writer, old string, fresh bool, h header, win *window) (merged, error) {
	var m merged
	if _, err := fmt.Fprintf(w, "%s\n%s", h, fileNotice); err != nil {
		return m, err
	}
	if !fresh {
		if err := copyOld(w, old, win, &m); err != nil {
			return m, err
		}
	}
	var line []byte
	for i, r := range win.recs {
		if r.flags&deleted != 0 || r.flags&(hasMD5|hasSHA1|hasPDQ) == 0 {
			continue
		}
		k := win.keys[i]
		m.entries++
		label := func(typ string, digest []byte) {
			line = append(line[:0], typ...)
			line = append(line, ' ')
			line = hex.AppendEncode(line, digest)
			line = append(line, " ncmec:"...)
			line = append(line, k.id...)
			if c := win.classes[r.class]; c != "" {
				line = append(line, ' ')
				line = append(line, c...)
			}
			if k.member != "" {
				line = append(line, " # member "...)
				line = append(line, k.member...)
			}
			line = append(line, '\n')
			w.Write(line)
		}
		switch {
		case k.video:
			if r.flags&hasMD5 != 0 {
				label("video_md5", r.md5[:])
				m.counts.VideoMD5++
			}
		default:
			if r.flags&hasMD5 != 0 {
				label("md5", r.md5[:])
				m.counts.MD5++
			}
			if r.flags&hasSHA1 != 0 {
				label("sha1", r.sha1[:])
				m.counts.SHA1++
			}
			if r.flags&hasPDQ != 0 {
				label("pdq", r.pdq[:])
				m.counts.PDQ++
			}
		}
	}
	return m, nil
}

// copyOld streams the old bank's lines into w, leaving out those of the
// entries win changes. It holds one line at a time and allocates nothing
// per line.
func copyOld(w *bufio.Writer, old string, win *window, m *merged) error {
	f, err := os.Open(old)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var prevID, prevMember []byte
	prevVideo, started := false, false
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// Not a line the sync wrote; an operator's, kept whole.
			w.Write(line)
			for err == bufio.ErrBufferFull {
				line, err = br.ReadSlice('\n')
				w.Write(line)
			}
			line = nil
		}
		if len(line) > 0 {
			l := parseLine(line)
			switch {
			case l.comment:
			case !l.ours:
				w.Write(line)
			default:
				if _, changed := win.idx[l.key]; !changed {
					w.Write(line)
					switch l.typ {
					case "md5":
						m.counts.MD5++
					case "sha1":
						m.counts.SHA1++
					case "pdq":
						m.counts.PDQ++
					case "video_md5":
						m.counts.VideoMD5++
					}
					// An entry's lines are consecutive: a new key is a
					// new entry.
					if !started || l.key.video != prevVideo || l.key.id != string(prevID) || l.key.member != string(prevMember) {
						m.entries++
						prevID = append(prevID[:0], l.key.id...)
						prevMember = append(prevMember[:0], l.key.member...)
						prevVideo, started = l.key.video, true
					}
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// bankLine is one line of a bank file as the sync reads it back.
type bankLine struct {
	comment bool // blank or a comment
	ours    bool // a line the sync wrote: TYPE HASH ncmec:ID ...
	typ     string
	// key's strings share the line's memory: valid only as long as the
	// line is, and never to be kept (copyOld only looks them up).
	key key
}

// parseLine reads a line the sync wrote, without allocating: millions of
// them are read back at every commit.
func parseLine(line []byte) bankLine {
	i, typ := field(line, 0)
	if len(typ) == 0 || typ[0] == '#' {
		return bankLine{comment: true}
	}
	var l bankLine
	switch string(typ) {
	case "md5":
		l.typ = "md5"
	case "sha1":
		l.typ = "sha1"
	case "pdq":
		l.typ = "pdq"
	case "video_md5":
		l.typ = "video_md5"
	default:
		return bankLine{}
	}
	i, hash := field(line, i)
	i, label := field(line, i)
	id, ok := bytes.CutPrefix(label, []byte("ncmec:"))
	if len(hash) == 0 || !ok || len(id) == 0 {
		return bankLine{}
	}
	l.ours = true
	l.key.video = l.typ == "video_md5"
	l.key.id = unsafeString(id)
	// The member is in the trailing comment: "# member M".
	for {
		var f []byte
		if i, f = field(line, i); len(f) == 0 {
			break
		}
		if string(f) != "#" {
			continue
		}
		j, word := field(line, i)
		if string(word) != "member" {
			continue
		}
		if _, mem := field(line, j); len(mem) > 0 {
			l.key.member = unsafeString(mem)
		}
		break
	}
	return l
}

// field returns the index after the next blank-separated word of line
// from i, and the word (empty at the end).
func field(line []byte, i int) (int, []byte) {
	for i < len(line) && isBlank(line[i]) {
		i++
	}
	j := i
	for j < len(line) && !isBlank(line[j]) {
		j++
	}
	return j, line[i:j]
}

func isBlank(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// unsafeString is b as a string without a copy. Only for lookups: the
// string changes when b's memory is reused.
func unsafeString(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}
