package carve

import (
	"testing"
	"time"
)

// FuzzCarve feeds arbitrary bytes, seeded with every test container, to
// Carve without its recover: it must never panic, hang, or exceed its
// limits.
func FuzzCarve(f *testing.F) {
	for _, tc := range cases(f) {
		f.Add(tc.in)
	}
	f.Add([]byte{})
	f.Add([]byte("%PDF-1.4\n1 0 obj <</Length 2 0 R/Filter[/LZW/RL/A85/AHx]>>stream\nabc\nendstream"))
	f.Add([]byte("<svg><image href='data:,x'/></svg>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		watchdog := time.AfterFunc(10*time.Second, func() { panic("hang") })
		defer watchdog.Stop()
		checkLimits(t, data, Limits{MaxBytes: 8 << 20, MaxDepth: 3})
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("carving %d bytes took %v", len(data), d)
		}
	})
}
