package sched

import (
	"context"
	"testing"
	"time"
)

// TestLanesKeepOneForSmallPictures: with every general lane held by big
// pictures, a small one still gets the last lane, and a big one waits.
func TestLanesKeepOneForSmallPictures(t *testing.T) {
	l := NewLanes(2)
	ctx := context.Background()
	for range 2 {
		if !l.Acquire(ctx, true) {
			t.Fatal("a big picture got no lane while lanes were free")
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if l.Acquire(short, true) {
		t.Fatal("a third big picture got a lane: the small pictures' lane is gone")
	}
	if !l.Acquire(ctx, false) {
		t.Fatal("a small picture got no lane")
	}
	if l.Waiting() != 0 {
		t.Fatalf("%d waiting after the waits ended", l.Waiting())
	}
	if l.Busy() != 3 || l.Size() != 3 {
		t.Fatalf("%d of %d lanes busy; want all 3", l.Busy(), l.Size())
	}
	l.Release(false)
	l.Release(true)
	if !l.Acquire(ctx, true) {
		t.Fatal("a released lane was not given again")
	}
}
