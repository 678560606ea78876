//go:build !unix

package mediaproxy

import "io"

// mapSpooled is unavailable here: spooled bodies are searched only up to
// max_download_buffer, copied.
func mapSpooled(io.ReadSeeker) ([]byte, func(), bool) { return nil, nil, false }
