package matcher

// The CSV bank format: "type,hash[,label]" records with an optional header.

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strings"
)

func (b *bankBuilder) parseCSV(file string, r io.Reader) error {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	first := true
	lastOff := int64(-1)
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return err
			}
			b.lineProblem(file, pe.Line, "CSV: %v", pe.Err)
			// A CSV error always consumes input; stop rather than spin
			// should that ever not hold.
			if off := cr.InputOffset(); off == lastOff {
				return fmt.Errorf("CSV reader stuck at byte %d: %w", off, err)
			} else {
				lastOff = off
			}
			first = false
			continue
		}
		lastOff = cr.InputOffset()
		line, _ := cr.FieldPos(0)
		if first {
			first = false
			if isCSVHeader(rec) {
				continue
			}
		}
		if len(rec) < 2 || len(rec) > 3 {
			b.lineProblem(file, line, "want type,hash[,label], got %d fields", len(rec))
			continue
		}
		typ := strings.TrimSpace(rec[0])
		k, ok := parseKind([]byte(typ))
		if !ok {
			if len(typ) > 16 {
				typ = typ[:16]
			}
			b.lineProblem(file, line, "unknown hash type %q (want md5, sha1, sha256, pdq or video_md5)", typ)
			continue
		}
		var label []byte
		if len(rec) == 3 {
			label = []byte(strings.TrimSpace(rec[2]))
		}
		if _, msg := b.add(k, []byte(strings.TrimSpace(rec[1])), label); msg != "" {
			b.lineProblem(file, line, "%s", msg)
		}
	}
}

func isCSVHeader(rec []string) bool {
	want := [...]string{"type", "hash", "label"}
	if len(rec) < 2 || len(rec) > 3 {
		return false
	}
	for i, f := range rec {
		if !strings.EqualFold(strings.TrimSpace(f), want[i]) {
			return false
		}
	}
	return true
}
