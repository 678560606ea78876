//go:build !linux

package jpegx

func threadCPU() int64 { return 0 }
