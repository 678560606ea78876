//go:build !(linux || darwin || freebsd || dragonfly)

package mediaproxy

import "errors"

// SpoolSpace is not measured here (no statfs with these fields); metrics leave it out.
func (p *Proxy) SpoolSpace() (avail, size uint64, err error) {
	return 0, 0, errors.New("mediaproxy: spool filesystem space is measured on Linux, macOS, FreeBSD and DragonFly only")
}
