package hub

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestDedupe(t *testing.T) {
	now := time.Unix(1000, 0)
	d := newDedupe(2*time.Minute, 3)
	d.now = func() time.Time { return now }
	ctx := context.Background()
	calls := 0
	pub := func(offset uint64) func() (publishResult, error) {
		return func() (publishResult, error) { calls++; return publishResult{Offset: offset}, nil }
	}

	res, dup, err := d.do(ctx, "r", "a", pub(1))
	if err != nil || dup || res.Offset != 1 {
		t.Fatalf("first: %v %v %v", res, dup, err)
	}
	res, dup, _ = d.do(ctx, "r", "a", pub(2))
	if !dup || res.Offset != 1 || calls != 1 {
		t.Fatalf("repeat: %v dup=%v calls=%d; want the original offset, no second publish", res, dup, calls)
	}
	// Same id, another room: a different publish.
	if res, dup, _ = d.do(ctx, "other", "a", pub(7)); dup || res.Offset != 7 {
		t.Fatalf("other room: %v %v", res, dup)
	}
	// After the window the id is forgotten.
	now = now.Add(2*time.Minute + time.Second)
	if res, dup, _ = d.do(ctx, "r", "a", pub(3)); dup || res.Offset != 3 {
		t.Fatalf("after the window: %v %v", res, dup)
	}
	// A failed publish is not remembered: the retry runs.
	boom := errors.New("boom")
	if _, _, err := d.do(ctx, "r", "f", func() (publishResult, error) { return publishResult{}, boom }); err != boom {
		t.Fatalf("failure: %v", err)
	}
	if res, dup, _ = d.do(ctx, "r", "f", pub(4)); dup || res.Offset != 4 {
		t.Fatalf("retry after failure: %v %v", res, dup)
	}
	// At most max ids: the oldest goes first.
	for i, id := range []string{"x", "y", "z"} {
		d.do(ctx, "m", id, pub(uint64(10+i)))
	}
	if _, dup, _ = d.do(ctx, "r", "a", pub(5)); dup {
		t.Fatal("the oldest id was kept beyond the bound")
	}
	if _, dup, _ = d.do(ctx, "m", "z", pub(6)); !dup {
		t.Fatal("the newest id was forgotten")
	}
	if n := d.size(); n > 3 {
		t.Fatalf("size %d over the bound", n)
	}
}

func TestDedupeConcurrentRepeatWaits(t *testing.T) {
	d := newDedupe(time.Minute, 10)
	release := make(chan struct{})
	started := make(chan struct{})
	done := make(chan publishResult)
	go func() {
		res, _, _ := d.do(context.Background(), "r", "id", func() (publishResult, error) {
			close(started)
			<-release
			return publishResult{Offset: 9}, nil
		})
		done <- res
	}()
	<-started
	repeat := make(chan publishResult)
	go func() {
		res, dup, _ := d.do(context.Background(), "r", "id", func() (publishResult, error) {
			t.Error("the repeat published again")
			return publishResult{}, nil
		})
		if !dup {
			t.Error("the repeat was not flagged as a duplicate")
		}
		repeat <- res
	}()
	close(release)
	if a, b := <-done, <-repeat; a.Offset != 9 || b.Offset != 9 {
		t.Fatalf("offsets %d and %d, want 9", a.Offset, b.Offset)
	}
}
