//go:build !race

package pdq

const raceOn = false
