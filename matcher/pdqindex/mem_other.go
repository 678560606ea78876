//go:build !linux

package pdqindex

// pdqMapHuge allocates on the heap where huge pages are not managed here.
func pdqMapHuge(size int) (mapped, block []byte) { return nil, nil }

func pdqUnmap(mapped []byte) {}
