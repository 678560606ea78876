//go:build race

package pdq

// raceOn lets CPU-bound exhaustive checks of standard-library behaviour run
// only without the race detector, which slows them 20-fold and has nothing
// to find in them.
const raceOn = true
