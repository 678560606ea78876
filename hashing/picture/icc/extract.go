package icc

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// FromJPEG returns the ICC profile of a JPEG: the APP2 "ICC_PROFILE\x00"
// segments before the first scan, concatenated in the order of their
// sequence numbers. As with libjpeg's reader, which viewers use, the
// profile is nil when none is there or the chunks are inconsistent: a
// count that differs between chunks, a sequence number out of range, a
// duplicate or a missing chunk.
func FromJPEG(data []byte) []byte {
	if len(data) < 4 || data[0] != 0xFF || data[1] != 0xD8 {
		return nil
	}
	var chunks [256][]byte
	count, seen, total := 0, 0, 0
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xFF { // stray byte between segments: skip it
			i++
			continue
		}
		marker := data[i+1]
		switch {
		case marker == 0xFF: // fill byte
			i++
			continue
		case marker == 0x01 || marker == 0xD8 || marker >= 0xD0 && marker <= 0xD7: // no length
			i += 2
			continue
		case marker == 0xDA || marker == 0xD9: // start of scan, end of image
			i = len(data)
			continue
		}
		n := int(binary.BigEndian.Uint16(data[i+2:]))
		if n < 2 || i+2+n > len(data) {
			break
		}
		seg := data[i+4 : i+2+n]
		i += 2 + n
		if marker != 0xE2 || len(seg) < 14 || string(seg[:12]) != "ICC_PROFILE\x00" {
			continue
		}
		seq, cnt := int(seg[12]), int(seg[13])
		if count == 0 {
			count = cnt
		}
		if cnt != count || seq < 1 || seq > count || chunks[seq] != nil {
			return nil
		}
		chunks[seq] = seg[14:]
		seen++
		total += len(seg) - 14
	}
	if count == 0 || seen != count || total > MaxSize {
		return nil
	}
	out := make([]byte, 0, total)
	for _, c := range chunks[1 : count+1] {
		out = append(out, c...)
	}
	return out
}

// FromPNG returns the ICC profile of a PNG: the iCCP chunk's zlib stream
// inflated, nil if there is none, if it comes after PLTE or IDAT, if its
// CRC is wrong (libpng discards such an ancillary chunk) or if it does not
// inflate cleanly to at most MaxSize bytes.
func FromPNG(data []byte) []byte {
	if len(data) < 8 || string(data[:8]) != "\x89PNG\r\n\x1a\n" {
		return nil
	}
	for i := 8; i+12 <= len(data); {
		n := binary.BigEndian.Uint32(data[i:])
		if uint64(n) > uint64(len(data)-i-12) {
			return nil
		}
		typ := string(data[i+4 : i+8])
		body := data[i+8 : i+8+int(n)]
		crc := binary.BigEndian.Uint32(data[i+8+int(n):])
		i += 12 + int(n)
		switch typ {
		case "PLTE", "IDAT", "IEND":
			return nil
		case "iCCP":
		default:
			continue
		}
		if crc32.ChecksumIEEE(data[i-12-int(n)+4:i-4]) != crc {
			continue
		}
		// Profile name (1-79 bytes), NUL, compression method 0, zlib data.
		nul := bytes.IndexByte(body, 0)
		if nul < 1 || nul > 79 || nul+2 > len(body) || body[nul+1] != 0 {
			continue
		}
		zr, err := zlib.NewReader(bytes.NewReader(body[nul+2:]))
		if err != nil {
			continue
		}
		prof, err := io.ReadAll(io.LimitReader(zr, MaxSize+1))
		if err != nil || len(prof) > MaxSize || len(prof) == 0 {
			continue
		}
		return prof
	}
	return nil
}

// FromWebP returns the ICC profile of a WebP: the ICCP chunk of an extended
// (VP8X) file whose header flags an ICC profile, as libwebp's demuxer
// reports it; nil otherwise.
func FromWebP(data []byte) []byte {
	if len(data) < 30 || string(data[:4]) != "RIFF" || string(data[8:12]) != "WEBP" {
		return nil
	}
	end := len(data)
	if riff := uint64(binary.LittleEndian.Uint32(data[4:])) + 8; riff < uint64(end) {
		end = int(riff)
	}
	if string(data[12:16]) != "VP8X" || binary.LittleEndian.Uint32(data[16:]) < 10 || data[20]&0x20 == 0 {
		return nil
	}
	for i := 12; i+8 <= end; {
		n := uint64(binary.LittleEndian.Uint32(data[i+4:]))
		if n > uint64(end-i-8) {
			return nil
		}
		if string(data[i:i+4]) == "ICCP" {
			if n == 0 || n > MaxSize {
				return nil
			}
			return append([]byte(nil), data[i+8:i+8+int(n)]...)
		}
		i += 8 + int(n) + int(n&1)
	}
	return nil
}
