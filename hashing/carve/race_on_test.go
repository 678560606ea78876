//go:build race

package carve

// raceOn keeps the tests that inflate tens of megabytes to their cheaper
// variants under the race detector, which slows inflation tenfold and has
// nothing to find in it.
const raceOn = true
