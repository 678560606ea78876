// Package pdqindex is the exact PDQ similarity index: it finds every banked
// PDQ hash within a Hamming distance of a query, with the results of a
// linear scan, by multi-index hashing (Index, Build, LinearSearch). It owns
// the index's layout and cost model, its off-heap memory on transparent
// huge pages (mem*.go) and its AVX-512 kernels (vector*.go).
//
// It knows hashes and distances only: banks, labels, thresholds as policy
// and verdicts belong to package matcher, which builds one Index per bank.
// It must not import matcher or Caddy.
package pdqindex
