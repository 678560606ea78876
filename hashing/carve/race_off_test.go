//go:build !race

package carve

const raceOn = false
