//go:build race

package caddymodule

// raceOn: the race detector slows the WebAssembly AVIF/HEIC decoders
// some twenty-fold in the hashing workers (test binaries are their own
// workers); the end-to-end corpus leaves those two forms to mediaproxy's
// TestImageBypassCorpus there.
const raceOn = true
