//go:build !race

package caddymodule

const raceOn = false
