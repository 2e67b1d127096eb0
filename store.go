package switchboard

import (
	"context"
	"errors"
	"slices"
	"time"
)

// Store keeps the logs of durable rooms and the cursors of their
// subscribers. Implementations: memory.Store (tests, non-durable mode) and
// bolt.Store (embedded, on disk). Every method is safe for concurrent use.
//
// Guarantees an implementation gives:
//   - Offsets of a room start at 1 and increase by one per event, with no
//     holes, in the order Append calls were confirmed.
//   - Append returns only once the events are stored per the store's sync
//     policy (a publisher confirm): an event whose Append returned survives
//     a crash of the process (and, with fsync, of the machine).
//   - Read returns events in offset order and never returns an event whose
//     stored checksum does not match (ErrCorrupt instead).
//   - Epoch changes only when a room's history is lost (the log was
//     recreated); a subscriber holding offsets of another epoch cannot
//     resume exactly.
type Store interface {
	// Append adds events to the end of room's log, creating the log, and
	// returns the offset of the first one. Appending no events is an error.
	// Empty room and subscriber names are refused everywhere. If ctx ends
	// while the write waits for its commit, ctx.Err() is returned and the
	// events may or may not be stored; an already-ended ctx changes nothing.
	Append(ctx context.Context, room string, events []StoredEvent) (first uint64, err error)
	// Read returns up to limit (≥ 1) events of room with offset >= from,
	// oldest first. Events trimmed by retention are skipped: compare the
	// first offset returned (or LogInfo.First) with from to detect a gap. A
	// room without a log reads as empty.
	Read(ctx context.Context, room string, from uint64, limit int) ([]StoredEvent, error)
	// Info describes room's log; ok is false if the room has no log.
	Info(ctx context.Context, room string) (info LogInfo, ok bool, err error)
	// Rooms lists the rooms that have a log, sorted.
	Rooms(ctx context.Context) ([]string, error)

	// SetCursor records subscriber's position in room, creating the
	// subscription if needed: every event up to and including cursor is
	// acknowledged, and so are the offsets in acked (all above cursor:
	// events acknowledged out of order, at most a few hundred). Cursors only
	// move forward: a call with a cursor lower than the stored one is
	// ignored, acked included; otherwise acked (in any order) replaces the
	// stored set, kept sorted without duplicates or offsets ≤ cursor. A
	// subscription may exist for a room that has no log yet.
	SetCursor(ctx context.Context, room, subscriber string, cursor uint64, acked []uint64) error
	// Cursor returns subscriber's position in room; ok is false without a
	// subscription.
	Cursor(ctx context.Context, room, subscriber string) (sub Subscription, ok bool, err error)
	// DeleteCursor ends subscriber's subscription to room; ending one that
	// does not exist is not an error.
	DeleteCursor(ctx context.Context, room, subscriber string) error
	// Subscriptions returns the rooms subscriber is subscribed to, with
	// their cursors.
	Subscriptions(ctx context.Context, subscriber string) ([]Subscription, error)
	// Subscribers returns the subscribers of room with their cursors.
	Subscribers(ctx context.Context, room string) ([]Subscription, error)

	// Close flushes and releases the store; closing it again returns
	// ErrStoreClosed.
	Close() error
}

// NormalizeAcked returns what a Store keeps of SetCursor's acked: the
// offsets above cursor, sorted, without duplicates; nil when none.
func NormalizeAcked(cursor uint64, acked []uint64) []uint64 {
	var out []uint64
	for _, o := range acked {
		if o > cursor {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// AsyncAppender is implemented by stores that can confirm appends without
// a goroutine waiting for each one (bolt.Store). AppendAsync queues events
// like Append and returns at once, before the commit; done is called once
// with Append's results when the events are stored per the sync policy (or
// were not). Appends queued one after another by one goroutine are
// committed in that order, so their offsets increase in call order. done
// runs on the store's committer: it must not block or call the store.
// Namespace.PublishAsync uses it to let one connection have many publishes
// waiting for the same group commit.
type AsyncAppender interface {
	AppendAsync(ctx context.Context, room string, events []StoredEvent, done func(first uint64, err error))
}

// StoreWatcher is implemented by stores that several servers share (Redis):
// Watch calls fn with a room's name each time any server appended to it,
// until ctx ends, and returns then. A Server whose Store implements it
// watches from NewServer to Close, so that durable deliveries on every node
// start as soon as any node published. Missing a call only delays delivery
// until the next publish or reconnect.
type StoreWatcher interface {
	Watch(ctx context.Context, fn func(room string)) error
}

// StoredEvent is one event of a durable room's log. Data is opaque to the
// store (the server keeps an encoded event in it).
type StoredEvent struct {
	Offset uint64    // set by the store on Append
	Time   time.Time // set by the store on Append when zero
	Data   []byte
}

// LogInfo describes a durable room's log.
type LogInfo struct {
	First uint64 // offset of the oldest event kept; Last+1 when empty
	Last  uint64 // offset of the newest event ever appended; 0 if none
	Epoch string // changes only when history was lost
	Count int    // events kept
	Bytes int64  // bytes of Data kept
}

// Subscription is a subscriber's position in one room.
type Subscription struct {
	Room       string
	Subscriber string
	Cursor     uint64   // every offset up to this one is acknowledged; 0 before any
	Acked      []uint64 // offsets above Cursor acknowledged out of order, ascending
}

// Retention bounds what a store keeps of each room's log. Zero fields mean
// no bound of that kind. The oldest events go first; an event larger than
// MaxBytes is stored, confirmed and trimmed at once. A log emptied by
// retention keeps its Last offset and Epoch.
type Retention struct {
	MaxAge    time.Duration
	MaxEvents int
	MaxBytes  int64
}

// DefaultRetention is what stores keep when given no Retention: a day, a
// million events and 1 GiB per room, whichever bound is reached first.
var DefaultRetention = Retention{MaxAge: 24 * time.Hour, MaxEvents: 1_000_000, MaxBytes: 1 << 30}

var (
	// ErrCorrupt is returned (wrapped, naming the file and record) when
	// stored data fails its checksum.
	ErrCorrupt = errors.New("store: corrupt data")
	// ErrStoreClosed is returned by a closed store.
	ErrStoreClosed = errors.New("store: closed")
)
