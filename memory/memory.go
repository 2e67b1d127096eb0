// Package memory implements switchboard.Store in memory: the store for tests
// and for servers that run without a data directory. It keeps the semantics
// of the durable stores (offsets, epochs, retention, cursors) but nothing
// survives the process: every room gets a new epoch in the next process.
package memory

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-io/switchboard"
)

var _ switchboard.Store = (*Store)(nil)

// StoreOptions configures a Store. The zero value (and nil) uses every
// default.
type StoreOptions struct {
	// Retention bounds what each room keeps. Nil means
	// switchboard.DefaultRetention; a non-nil zero Retention keeps
	// everything.
	Retention *switchboard.Retention
}

// Store is an in-memory switchboard.Store. Its methods are safe for
// concurrent use. Appends to different rooms do not contend with each other
// (one lock per room); Read shares its room's lock with other readers.
type Store struct {
	ret switchboard.Retention

	mu     sync.RWMutex // guards logs and closed
	logs   map[string]*roomLog
	closed bool

	cmu    sync.Mutex                      // guards byRoom and bySub
	byRoom map[string]map[string]*position // room → subscriber → position
	bySub  map[string]map[string]*position // subscriber → room → the same position

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type roomLog struct {
	mu     sync.RWMutex
	epoch  string
	first  uint64 // offset of events[0]; last+1 when empty
	last   uint64
	bytes  int64
	events []switchboard.StoredEvent
}

// NewStore returns an empty Store. When the retention has a MaxAge it starts
// a goroutine that drops expired events; Close stops it.
func NewStore(opts *StoreOptions) *Store {
	if opts == nil {
		opts = &StoreOptions{}
	}
	ret := switchboard.DefaultRetention
	if opts.Retention != nil {
		ret = *opts.Retention
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		ret:    ret,
		logs:   make(map[string]*roomLog),
		byRoom: make(map[string]map[string]*position),
		bySub:  make(map[string]map[string]*position),
		cancel: cancel,
	}
	if ret.MaxAge > 0 {
		s.wg.Add(1)
		go s.trimLoop(ctx)
	}
	return s
}

// trimInterval is how often the age trimmer runs for maxAge: a tenth of it,
// between 10 ms and a minute.
func trimInterval(maxAge time.Duration) time.Duration {
	return min(max(maxAge/10, 10*time.Millisecond), time.Minute)
}

func (s *Store) trimLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(trimInterval(s.ret.MaxAge))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s.mu.RLock()
			logs := make([]*roomLog, 0, len(s.logs))
			for _, l := range s.logs {
				logs = append(logs, l)
			}
			s.mu.RUnlock()
			cutoff := now.Add(-s.ret.MaxAge)
			for _, l := range logs {
				l.mu.Lock()
				n := 0
				for n < len(l.events) && l.events[n].Time.Before(cutoff) {
					n++
				}
				l.drop(n)
				l.mu.Unlock()
			}
		}
	}
}

// drop removes the n oldest events. l.mu must be held.
func (l *roomLog) drop(n int) {
	if n == 0 {
		return
	}
	for _, e := range l.events[:n] {
		l.bytes -= int64(len(e.Data))
	}
	clear(l.events[:n]) // release the data to the GC
	l.events = l.events[n:]
	l.first += uint64(n)
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var (
	errNoEvents   = errors.New("memory: append of no events")
	errEmptyName  = errors.New("memory: empty room or subscriber name")
	errBadLimit   = errors.New("memory: read limit must be positive")
	errNilContext = errors.New("memory: nil context")
)

func (s *Store) check(ctx context.Context) error {
	if ctx == nil {
		return errNilContext
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return nil
}

// log returns room's log, creating it if create is set; nil without one.
func (s *Store) log(room string, create bool) (*roomLog, error) {
	s.mu.RLock()
	l, closed := s.logs[room], s.closed
	s.mu.RUnlock()
	if closed {
		return nil, switchboard.ErrStoreClosed
	}
	if l != nil || !create {
		return l, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, switchboard.ErrStoreClosed
	}
	if l = s.logs[room]; l == nil {
		l = &roomLog{epoch: newEpoch(), first: 1}
		s.logs[room] = l
	}
	return l, nil
}

// Append implements switchboard.Store. It copies the events' data; events
// with a zero Time get the current time. Appending no events is an error.
func (s *Store) Append(ctx context.Context, room string, events []switchboard.StoredEvent) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if room == "" {
		return 0, errEmptyName
	}
	if len(events) == 0 {
		return 0, errNoEvents
	}
	l, err := s.log(room, true)
	if err != nil {
		return 0, err
	}
	// Copy the data into one allocation, outside the lock.
	size := 0
	for _, e := range events {
		size += len(e.Data)
	}
	buf := make([]byte, 0, size)
	now := time.Now().Round(0)
	stored := make([]switchboard.StoredEvent, len(events))
	for i, e := range events {
		start := len(buf)
		buf = append(buf, e.Data...)
		stored[i].Data = buf[start:len(buf):len(buf)]
		if e.Time.IsZero() {
			stored[i].Time = now
		} else {
			stored[i].Time = e.Time.Round(0)
		}
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	first := l.last + 1
	for i := range stored {
		stored[i].Offset = first + uint64(i)
		l.bytes += int64(len(stored[i].Data))
	}
	l.events = append(l.events, stored...)
	l.last += uint64(len(stored))
	n := 0
	if s.ret.MaxEvents > 0 && len(l.events) > s.ret.MaxEvents {
		n = len(l.events) - s.ret.MaxEvents
	}
	if s.ret.MaxBytes > 0 {
		b := l.bytes
		for _, e := range l.events[:n] {
			b -= int64(len(e.Data))
		}
		for n < len(l.events) && b > s.ret.MaxBytes {
			b -= int64(len(l.events[n].Data))
			n++
		}
	}
	l.drop(n)
	return first, nil
}

// Read implements switchboard.Store. The events returned are copies the
// caller may keep and modify. A limit below 1 is an error.
func (s *Store) Read(ctx context.Context, room string, from uint64, limit int) ([]switchboard.StoredEvent, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if limit < 1 {
		return nil, errBadLimit
	}
	l, err := s.log(room, false)
	if err != nil || l == nil {
		return nil, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	from = max(from, l.first)
	if from > l.last {
		return nil, nil
	}
	evs := l.events[from-l.first:]
	evs = evs[:min(len(evs), limit)]
	size := 0
	for _, e := range evs {
		size += len(e.Data)
	}
	buf := make([]byte, 0, size)
	out := make([]switchboard.StoredEvent, len(evs))
	for i, e := range evs {
		start := len(buf)
		buf = append(buf, e.Data...)
		out[i] = switchboard.StoredEvent{Offset: e.Offset, Time: e.Time, Data: buf[start:len(buf):len(buf)]}
	}
	return out, nil
}

// Info implements switchboard.Store.
func (s *Store) Info(ctx context.Context, room string) (switchboard.LogInfo, bool, error) {
	if err := s.check(ctx); err != nil {
		return switchboard.LogInfo{}, false, err
	}
	l, err := s.log(room, false)
	if err != nil || l == nil {
		return switchboard.LogInfo{}, false, err
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return switchboard.LogInfo{First: l.first, Last: l.last, Epoch: l.epoch, Count: len(l.events), Bytes: l.bytes}, true, nil
}

// Rooms implements switchboard.Store; the rooms come sorted.
func (s *Store) Rooms(ctx context.Context) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, switchboard.ErrStoreClosed
	}
	rooms := make([]string, 0, len(s.logs))
	for r := range s.logs {
		rooms = append(rooms, r)
	}
	slices.Sort(rooms)
	return rooms, nil
}

func (s *Store) lockCursors(ctx context.Context) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	s.cmu.Lock()
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		s.cmu.Unlock()
		return switchboard.ErrStoreClosed
	}
	return nil
}

// position is a subscriber's position in a room.
type position struct {
	cursor uint64
	acked  []uint64
}

// SetCursor implements switchboard.Store. It stores a sorted copy of acked
// without duplicates, dropping the offsets not above cursor.
func (s *Store) SetCursor(ctx context.Context, room, subscriber string, cursor uint64, acked []uint64) error {
	if room == "" || subscriber == "" {
		return errEmptyName
	}
	if err := s.lockCursors(ctx); err != nil {
		return err
	}
	defer s.cmu.Unlock()
	subs := s.byRoom[room]
	if subs == nil {
		subs = make(map[string]*position)
		s.byRoom[room] = subs
	}
	p := subs[subscriber]
	if p == nil {
		p = &position{}
		subs[subscriber] = p
		rooms := s.bySub[subscriber]
		if rooms == nil {
			rooms = make(map[string]*position)
			s.bySub[subscriber] = rooms
		}
		rooms[room] = p
	} else if cursor < p.cursor {
		return nil
	}
	p.cursor = cursor
	p.acked = switchboard.NormalizeAcked(cursor, acked)
	return nil
}

func (p *position) sub(room, subscriber string) switchboard.Subscription {
	return switchboard.Subscription{Room: room, Subscriber: subscriber, Cursor: p.cursor, Acked: slices.Clone(p.acked)}
}

// Cursor implements switchboard.Store.
func (s *Store) Cursor(ctx context.Context, room, subscriber string) (switchboard.Subscription, bool, error) {
	if err := s.lockCursors(ctx); err != nil {
		return switchboard.Subscription{}, false, err
	}
	defer s.cmu.Unlock()
	p := s.byRoom[room][subscriber]
	if p == nil {
		return switchboard.Subscription{}, false, nil
	}
	return p.sub(room, subscriber), true, nil
}

// DeleteCursor implements switchboard.Store. Deleting a subscription that
// does not exist is not an error.
func (s *Store) DeleteCursor(ctx context.Context, room, subscriber string) error {
	if err := s.lockCursors(ctx); err != nil {
		return err
	}
	defer s.cmu.Unlock()
	if subs := s.byRoom[room]; subs != nil {
		delete(subs, subscriber)
		if len(subs) == 0 {
			delete(s.byRoom, room)
		}
	}
	if rooms := s.bySub[subscriber]; rooms != nil {
		delete(rooms, room)
		if len(rooms) == 0 {
			delete(s.bySub, subscriber)
		}
	}
	return nil
}

// Subscriptions implements switchboard.Store; they come sorted by room.
func (s *Store) Subscriptions(ctx context.Context, subscriber string) ([]switchboard.Subscription, error) {
	if err := s.lockCursors(ctx); err != nil {
		return nil, err
	}
	defer s.cmu.Unlock()
	var out []switchboard.Subscription
	for room, p := range s.bySub[subscriber] {
		out = append(out, p.sub(room, subscriber))
	}
	slices.SortFunc(out, func(a, b switchboard.Subscription) int { return cmp.Compare(a.Room, b.Room) })
	return out, nil
}

// Subscribers implements switchboard.Store; they come sorted by subscriber.
func (s *Store) Subscribers(ctx context.Context, room string) ([]switchboard.Subscription, error) {
	if err := s.lockCursors(ctx); err != nil {
		return nil, err
	}
	defer s.cmu.Unlock()
	var out []switchboard.Subscription
	for sub, p := range s.byRoom[room] {
		out = append(out, p.sub(room, sub))
	}
	slices.SortFunc(out, func(a, b switchboard.Subscription) int { return cmp.Compare(a.Subscriber, b.Subscriber) })
	return out, nil
}

// Close stops the age trimmer and makes every later call return
// switchboard.ErrStoreClosed (Close included). The data is dropped.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return switchboard.ErrStoreClosed
	}
	s.closed = true
	s.logs = nil
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}
