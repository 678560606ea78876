//go:build !linux

package icc

import "time"

func threadCPU() time.Duration { return 0 }
