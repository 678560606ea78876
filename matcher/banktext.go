package matcher

// The text bank format: "TYPE HASH [label...]" lines with "#" comments.

import (
	"bufio"
	"bytes"
	"io"
	"slices"
	"unicode/utf8"
)

// maxLineLen bounds one text line; longer lines are reported and skipped
// without being buffered whole.
const maxLineLen = 64 << 10

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r' }

func (b *bankBuilder) parseText(file string, br *bufio.Reader, sizeHint int64) error {
	lineNo := 0
	reserved := sizeHint <= 0
	for {
		line, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			lineNo++
			b.lineProblem(file, lineNo, "line longer than %d bytes", maxLineLen)
			for err == bufio.ErrBufferFull {
				_, err = br.ReadSlice('\n')
			}
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			continue
		}
		if len(line) > 0 {
			lineNo++
			k, ok := b.textLine(file, lineNo, line)
			if ok && !reserved {
				// Bank files are usually one type with lines of one
				// length, so the first entry predicts the rest.
				reserved = true
				b.reserve(k, int(sizeHint/int64(len(line))))
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

// reserve makes room for about n more entries of kind k.
func (b *bankBuilder) reserve(k kind, n int) {
	n = min(n, 1<<28)
	switch k {
	case kMD5:
		b.md5 = slices.Grow(b.md5, n)
	case kVideoMD5:
		b.videoMD5 = slices.Grow(b.videoMD5, n)
	case kSHA1:
		b.sha1 = slices.Grow(b.sha1, n)
	case kSHA256:
		b.sha256 = slices.Grow(b.sha256, n)
	case kPDQ:
		b.pdq = slices.Grow(b.pdq, n)
	}
}

// textLine parses "TYPE HASH [label...] [# comment]" and reports the kind of
// an accepted entry.
func (b *bankBuilder) textLine(file string, lineNo int, line []byte) (kind, bool) {
	n := len(line)
	for n > 0 && (line[n-1] == '\n' || line[n-1] == '\r') {
		n--
	}
	line = line[:n]
	i := 0
	for i < n && isBlank(line[i]) {
		i++
	}
	if i == n || line[i] == '#' {
		return 0, false
	}
	j := i
	for j < n && !isBlank(line[j]) {
		j++
	}
	k, ok := parseKind(line[i:j])
	if !ok {
		tok := line[i:j]
		if len(tok) > 16 {
			tok = tok[:16]
		}
		b.lineProblem(file, lineNo, "unknown hash type %q (want md5, sha1, sha256, pdq or video_md5)", tok)
		return 0, false
	}
	i = j
	for i < n && isBlank(line[i]) {
		i++
	}
	j = i
	for j < n && !isBlank(line[j]) {
		j++
	}
	if i == j || line[i] == '#' {
		b.lineProblem(file, lineNo, "%s entry without a hash", kindTypes[k])
		return 0, false
	}
	hexs, rest := line[i:j], line[j:]
	// rest is empty or starts with a blank, so any "#" after a blank starts
	// a comment; one glued to a word ("case#12") is part of the label.
	for c := 1; c < len(rest); c++ {
		if rest[c] == '#' && isBlank(rest[c-1]) {
			rest = rest[:c]
			break
		}
	}
	label := bytes.TrimFunc(rest, func(r rune) bool { return r < utf8.RuneSelf && isBlank(byte(r)) })
	if _, msg := b.add(k, hexs, label); msg != "" {
		b.lineProblem(file, lineNo, "%s", msg)
		return 0, false
	}
	return k, true
}
