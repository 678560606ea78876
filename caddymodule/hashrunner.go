package caddymodule

import (
	"sync"

	"github.com/mediaguard/mediaguard/hashing/sched"
)

// hashRunner is the process's one hashing Runner: its niced threads and
// worker processes outlive configuration reloads (they cannot be handed
// back), so every configuration's proxy shares it. Holding state across
// reloads is the adapter's job; the plain packages hold none.
var hashRunner = sync.OnceValue(func() *sched.Runner { return sched.NewRunner(nil) })
