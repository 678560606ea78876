package picture

import (
	"io"
	"sort"
)

// ICO and CUR: a directory of images; viewers show the largest. Each entry
// is a PNG or a headerless BMP (DIB) with a 1-bit AND mask after its pixels.

type icoEntry struct {
	w, h, bpp int
	off, size int
}

func parseICODir(head []byte) []icoEntry {
	if len(head) < 6 {
		return nil
	}
	n := int(le16(head[4:]))
	var es []icoEntry
	for i := 0; i < n && 6+16*i+16 <= len(head); i++ {
		b := head[6+16*i:]
		e := icoEntry{w: int(b[0]), h: int(b[1]), bpp: int(le16(b[6:])), size: int(le32(b[8:])), off: int(le32(b[12:]))}
		if e.w == 0 {
			e.w = 256
		}
		if e.h == 0 {
			e.h = 256
		}
		es = append(es, e)
	}
	// Largest first, then deepest colour, as Chromium picks.
	sort.SliceStable(es, func(i, j int) bool {
		ai, aj := es[i].w*es[i].h, es[j].w*es[j].h
		if ai != aj {
			return ai > aj
		}
		return es[i].bpp > es[j].bpp
	})
	return es
}

func icoEntryData(data []byte, e icoEntry) []byte {
	if e.off < 6 || e.off >= len(data) {
		return nil
	}
	end := len(data)
	if e.size > 0 && e.off+e.size < end && e.off+e.size > e.off {
		end = e.off + e.size
	}
	return data[e.off:end]
}

func decodeICO(data []byte, l *limits) (*Picture, error) {
	es := parseICODir(data)
	if len(es) == 0 {
		return nil, corruptf("ico", "empty directory")
	}
	var firstErr error
	// Try the largest entry; should it be unreadable, the next ones.
	for i, e := range es {
		if i >= 8 {
			break
		}
		b := icoEntryData(data, e)
		if b == nil {
			continue
		}
		var pic *Picture
		var err error
		if Sniff(b) == "png" {
			pic, err = decodePNG(b, l)
		} else {
			var d *dib
			d, err = parseDIB(b, true)
			if err == nil {
				px := b[min(d.headerEnd, len(b)):]
				pic, err = d.decodePixels(px, l, px)
			}
		}
		if err == nil {
			return pic, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	if firstErr == nil {
		firstErr = corruptf("ico", "no readable entry")
	}
	return nil, firstErr
}

func configICO(r io.ReadSeeker, head []byte) (int, int, error) {
	es := parseICODir(head)
	if len(es) == 0 {
		return 0, 0, corruptf("ico", "empty directory")
	}
	e := es[0]
	if _, err := r.Seek(int64(e.off), io.SeekCurrent); err != nil {
		return e.w, e.h, nil
	}
	b := make([]byte, 64)
	n, _ := io.ReadFull(r, b)
	b = b[:n]
	if Sniff(b) == "png" {
		return configPNG(b)
	}
	if d, err := parseDIB(b, true); err == nil {
		return d.w, d.h, nil
	}
	return e.w, e.h, nil
}
