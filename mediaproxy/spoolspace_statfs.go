//go:build linux || darwin || freebsd || dragonfly

package mediaproxy

import "golang.org/x/sys/unix"

// SpoolSpace reports the filesystem holding the spool directory: the
// bytes still available to this (unprivileged) process and the
// filesystem's size. A full spool filesystem refuses uploads with 503,
// so its free space is worth watching beside the bytes spooled.
func (p *Proxy) SpoolSpace() (avail, size uint64, err error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p.cfg.TempDir, &st); err != nil {
		return 0, 0, err
	}
	// The field types differ between systems (int64 on Linux, uint32 on
	// macOS); the values are never negative.
	bsize := uint64(st.Bsize)
	return uint64(st.Bavail) * bsize, uint64(st.Blocks) * bsize, nil
}
