package matcher

// Owned banks: bank files mediaguard itself writes (what it learns from
// the moderators' quarantines, what they confirm), as opposed to the
// operator's lists, which it only reads.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/mediaguard/mediaguard/atomicfile"
)

// OwnedHeader starts the first line of every owned bank file. An existing
// file that does not start with it is an operator's and is never
// rewritten.
const OwnedHeader = "# mediaguard-owned bank"

// OwnedEntry is one hash of an owned bank.
type OwnedEntry struct {
	// Type is the hash type (md5, sha1, sha256, pdq or video_md5).
	Type HashType
	// Hash is the hash in lower-case hex.
	Hash string
}

// OwnedBankConfig configures OpenOwnedBank.
type OwnedBankConfig struct {
	// Path is the bank file, read as a text bank (`TYPE HASH label`
	// lines) by the bank of the same path that a Local matcher loads.
	Path string
	// Writer names what writes the bank (e.g. "learn_quarantines"), for
	// the header line that tells a reader not to edit the file.
	Writer string
	// OnWrite, when set, is called after each write, once the new file is
	// in place: it reloads the Local matcher reading Path (Local.Reload),
	// so the new entries match at once rather than at the next poll of
	// the bank files.
	OnWrite func()
}

// OwnedBank is a bank file mediaguard writes: entries grouped under keys
// (the key is every entry's label, e.g. the media that an entry was
// learned from), so that what one key added can be removed again exactly,
// while an entry that another key also holds stays. Changes are made in
// memory (Put, Remove) and written by Commit, which replaces the whole
// file atomically and durably (atomicfile) and reloads the matcher.
//
// The file stays an ordinary text bank: the matcher loads it like any
// other, with its label naming the key in verdicts and notices. Exactly
// one OwnedBank may write a path at a time (a server shares one across
// config reloads). Its methods are safe for concurrent use.
type OwnedBank struct {
	cfg OwnedBankConfig

	mu     sync.Mutex
	groups map[string][]OwnedEntry
	order  []string // keys in the order they were first put, for a stable file
	dirty  bool
}

// OpenOwnedBank reads the owned bank at cfg.Path, creating it (with only
// its header) when it does not exist, so that a Local configured with the
// same path can load it. An existing non-empty file must have been
// written by an OwnedBank: an operator's bank is refused rather than
// rewritten, and so is a line that is not an entry this type writes.
func OpenOwnedBank(cfg OwnedBankConfig) (*OwnedBank, error) {
	if cfg.Path == "" {
		return nil, errors.New("matcher: owned bank: no path")
	}
	b := &OwnedBank{cfg: cfg, groups: map[string][]OwnedEntry{}}
	f, err := os.Open(cfg.Path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		b.dirty = true
		if err := b.write(); err != nil {
			return nil, err
		}
		return b, nil
	case err != nil:
		return nil, fmt.Errorf("matcher: owned bank: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("matcher: owned bank %s: not a regular file", cfg.Path)
	}
	if err := b.read(f); err != nil {
		return nil, fmt.Errorf("matcher: owned bank %s: %w", cfg.Path, err)
	}
	return b, nil
}

// read parses a file this type wrote.
func (b *OwnedBank) read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	lineNo := 0
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return fmt.Errorf("line %d: longer than %d bytes", lineNo+1, br.Size())
		}
		if len(line) > 0 {
			lineNo++
			s := strings.TrimRight(string(line), "\r\n")
			if lineNo == 1 && !strings.HasPrefix(s, OwnedHeader) {
				if strings.TrimSpace(s) == "" && err == io.EOF {
					return nil // an empty file is adopted
				}
				return fmt.Errorf("line 1 is not %q: this bank was not written by mediaguard, and it will not rewrite an operator's list; point the bank at a new file", OwnedHeader)
			}
			if err := b.readLine(s); err != nil {
				return fmt.Errorf("line %d: %w", lineNo, err)
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

// readLine takes one `TYPE HASH KEY` line; blank and comment lines are
// skipped (Commit writes only the header back).
func (b *OwnedBank) readLine(s string) error {
	t := strings.TrimSpace(s)
	if t == "" || t[0] == '#' {
		return nil
	}
	typ, rest, _ := strings.Cut(t, " ")
	hash, key, _ := strings.Cut(strings.TrimLeft(rest, " "), " ")
	key = strings.TrimSpace(key)
	e, err := NewOwnedEntry(HashType(strings.ToLower(typ)), hash)
	if err != nil {
		return err
	}
	if err := CheckOwnedKey(key); err != nil {
		return err
	}
	b.put(key, []OwnedEntry{e})
	return nil
}

// NewOwnedEntry validates a hash as a bank file would and returns it
// normalised to lower-case hex.
func NewOwnedEntry(t HashType, hexHash string) (OwnedEntry, error) {
	k, ok := parseKind([]byte(t))
	if !ok {
		return OwnedEntry{}, fmt.Errorf("unknown hash type %q", t)
	}
	if len(hexHash) != kindHexLen[k] {
		return OwnedEntry{}, fmt.Errorf("%s hash must be %d hex digits, got %d", t, kindHexLen[k], len(hexHash))
	}
	var d [32]byte
	if !decodeHex(d[:len(hexHash)/2], []byte(hexHash)) {
		return OwnedEntry{}, fmt.Errorf("%s hash is not hexadecimal", t)
	}
	if k == kPDQ && d == [32]byte{} {
		return OwnedEntry{}, errors.New("pdq hash is all zeros")
	}
	return OwnedEntry{Type: kindTypes[k], Hash: strings.ToLower(hexHash)}, nil
}

// CheckOwnedKey says why key cannot name entries of an owned bank: it is
// written as their label, so it must be a label a bank file reads back
// whole (no "#", which may start a comment, and no surrounding blanks).
func CheckOwnedKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty key")
	case strings.ContainsRune(key, '#'):
		return fmt.Errorf("key %q contains '#'", key)
	case strings.TrimSpace(key) != key:
		return fmt.Errorf("key %q has surrounding blanks", key)
	}
	if msg := checkLabel([]byte(key)); msg != "" {
		return fmt.Errorf("key %q: %s", key, msg)
	}
	if strings.ContainsRune(key, '\t') {
		return fmt.Errorf("key %q contains a tab", key)
	}
	return nil
}

// Path is the bank file.
func (b *OwnedBank) Path() string { return b.cfg.Path }

// Has reports whether key holds entries.
func (b *OwnedBank) Has(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.groups[key]
	return ok
}

// Entries returns a copy of key's entries, nil when it holds none.
func (b *OwnedBank) Entries(key string) []OwnedEntry {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.groups[key])
}

// KeyWith returns a key holding e, if any (the first put).
func (b *OwnedBank) KeyWith(e OwnedEntry) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, k := range b.order {
		if slices.Contains(b.groups[k], e) {
			return k, true
		}
	}
	return "", false
}

// Len is the number of keys.
func (b *OwnedBank) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.groups)
}

// EntryCount is the number of entries over every key (an entry two keys
// hold counts twice; the loaded bank holds it once).
func (b *OwnedBank) EntryCount() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, es := range b.groups {
		n += len(es)
	}
	return n
}

// Put adds entries under key (in memory until Commit); entries key
// already holds are not repeated. It validates the key and entries.
func (b *OwnedBank) Put(key string, entries []OwnedEntry) error {
	if err := CheckOwnedKey(key); err != nil {
		return fmt.Errorf("matcher: owned bank: %w", err)
	}
	if len(entries) == 0 {
		return fmt.Errorf("matcher: owned bank: no entries for %q", key)
	}
	for i, e := range entries {
		ne, err := NewOwnedEntry(e.Type, e.Hash)
		if err != nil {
			return fmt.Errorf("matcher: owned bank: %w", err)
		}
		entries[i] = ne
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.put(key, entries)
	return nil
}

func (b *OwnedBank) put(key string, entries []OwnedEntry) {
	have, ok := b.groups[key]
	if !ok {
		b.order = append(b.order, key)
	}
	for _, e := range entries {
		if !slices.Contains(have, e) {
			have = append(have, e)
			b.dirty = true
		}
	}
	b.groups[key] = have
}

// Remove drops every entry key holds (in memory until Commit) and reports
// whether it held any. An entry another key also holds stays in the file.
func (b *OwnedBank) Remove(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.groups[key]; !ok {
		return false
	}
	delete(b.groups, key)
	b.order = slices.DeleteFunc(b.order, func(k string) bool { return k == key })
	b.dirty = true
	return true
}

// Commit writes the changes since the last Commit, if any, replacing the
// file atomically and durably, then calls OnWrite. It reports whether it
// wrote. On error the file keeps its previous content and the changes
// stay pending for the next Commit.
func (b *OwnedBank) Commit() (bool, error) {
	b.mu.Lock()
	if !b.dirty {
		b.mu.Unlock()
		return false, nil
	}
	err := b.write()
	b.mu.Unlock()
	if err != nil {
		return false, err
	}
	if b.cfg.OnWrite != nil {
		b.cfg.OnWrite()
	}
	return true, nil
}

// write replaces the file with the groups; mu is held (or b is not
// shared yet).
func (b *OwnedBank) write() error {
	var buf bytes.Buffer
	writer := b.cfg.Writer
	if writer == "" {
		writer = "mediaguard"
	}
	fmt.Fprintf(&buf, "%s: written by %s; do not edit, every change replaces this file\n", OwnedHeader, writer)
	for _, k := range b.order {
		for _, e := range b.groups[k] {
			buf.WriteString(string(e.Type))
			buf.WriteByte(' ')
			buf.WriteString(e.Hash)
			buf.WriteByte(' ')
			buf.WriteString(k)
			buf.WriteByte('\n')
		}
	}
	// 0600: labels name media, and an operator's list is not the
	// world's business either.
	if err := atomicfile.WriteBytes(b.cfg.Path, 0o600, buf.Bytes()); err != nil {
		return fmt.Errorf("matcher: owned bank: %w", err)
	}
	b.dirty = false
	return nil
}

// isOwnedFile reports whether path is an owned bank's file, which
// mediaguard empties on purpose (every key removed) and always replaces
// whole: an empty reload of it is no half-written file.
func isOwnedFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, len(OwnedHeader))
	_, err = io.ReadFull(f, head)
	return err == nil && string(head) == OwnedHeader
}
