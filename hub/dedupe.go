package hub

import (
	"context"
	"sync"
	"time"
)

// MaxIDLen is the longest publish id accepted.
const MaxIDLen = 128

// publishResult is what a publish answers, and what a duplicate of it
// answers again.
type publishResult struct {
	Offset uint64 // 0 for a room that is not durable
}

// dedupe remembers the ids of recent publishes per room, so that a
// publisher retrying with the same id gets the first answer instead of
// publishing twice. It keeps each id for the window, and at most max ids
// (the oldest are forgotten first).
type dedupe struct {
	window time.Duration
	max    int
	now    func() time.Time

	mu    sync.Mutex
	m     map[dedupeKey]*dedupeEntry
	order []*dedupeEntry // by creation time; head is order[head]
	head  int
}

type dedupeKey struct{ room, id string }

type dedupeEntry struct {
	key  dedupeKey
	at   time.Time
	done chan struct{} // closed once res and err are set
	res  publishResult
	err  error
}

func newDedupe(window time.Duration, max int) *dedupe {
	return &dedupe{window: window, max: max, now: time.Now, m: make(map[dedupeKey]*dedupeEntry)}
}

// do runs publish once per (room, id) within the window. A repeated id
// waits for the first call's answer and returns it with dup true; if the
// first call failed, the repeat returns its error too (and a later repeat
// runs again).
func (d *dedupe) do(ctx context.Context, room, id string, publish func() (publishResult, error)) (res publishResult, dup bool, err error) {
	key := dedupeKey{room, id}
	now := d.now()
	d.mu.Lock()
	d.pruneLocked(now)
	if e := d.m[key]; e != nil && now.Sub(e.at) < d.window {
		d.mu.Unlock()
		select {
		case <-e.done:
			return e.res, true, e.err
		case <-ctx.Done():
			return publishResult{}, true, ctx.Err()
		}
	}
	e := &dedupeEntry{key: key, at: now, done: make(chan struct{})}
	d.m[key] = e
	d.order = append(d.order, e)
	d.mu.Unlock()

	e.res, e.err = publish()
	close(e.done)
	if e.err != nil {
		d.mu.Lock()
		if d.m[key] == e {
			delete(d.m, key)
		}
		d.mu.Unlock()
	}
	return e.res, false, e.err
}

// pruneLocked forgets expired ids and the oldest ones over max.
func (d *dedupe) pruneLocked(now time.Time) {
	for d.head < len(d.order) {
		e := d.order[d.head]
		if now.Sub(e.at) < d.window && len(d.order)-d.head <= d.max {
			break
		}
		if d.m[e.key] == e {
			delete(d.m, e.key)
		}
		d.order[d.head] = nil
		d.head++
	}
	// Compact once the dead prefix dominates.
	if d.head > 1024 && d.head*2 > len(d.order) {
		d.order = append([]*dedupeEntry(nil), d.order[d.head:]...)
		d.head = 0
	}
}

// size returns the number of ids remembered.
func (d *dedupe) size() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.m)
}
