// Package storetest is the test suite and the benchmarks every
// switchboard.Store must pass: memory.Store, bolt.Store and later the Redis
// store run the same tests. Each test opens its own store through the
// caller's OpenFunc; persistent stores also give a ReopenFunc, and then the
// suite checks what survives a restart.
//
// Use it from the implementation's tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, open, reopen)
//	}
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
)

// OpenFunc returns a new, empty store that keeps what r allows. The suite
// closes every store it opens (a Close error other than
// switchboard.ErrStoreClosed fails the test).
type OpenFunc func(tb testing.TB, r switchboard.Retention) switchboard.Store

// ReopenFunc closes s, a store that OpenFunc or ReopenFunc returned, and
// opens the same store again with the same retention, as a restarted
// process would.
type ReopenFunc func(tb testing.TB, s switchboard.Store) switchboard.Store

// waitLimit bounds every wait for background work (the age trimmer);
// reaching it fails the test.
const waitLimit = 10 * time.Second

// keepAll is a retention that keeps everything.
var keepAll = switchboard.Retention{}

// Run runs the suite. reopen is nil for stores that keep nothing across a
// restart (memory); otherwise the durability tests run too.
func Run(t *testing.T, open OpenFunc, reopen ReopenFunc) {
	h := &harness{open: open, reopen: reopen}
	t.Run("Offsets", h.testOffsets)
	t.Run("AppendCopiesData", h.testAppendCopiesData)
	t.Run("AppendNothing", h.testAppendNothing)
	t.Run("Read", h.testRead)
	t.Run("Info", h.testInfo)
	t.Run("Rooms", h.testRooms)
	t.Run("ConcurrentAppends", h.testConcurrentAppends)
	t.Run("AppendAsync", h.testAppendAsync)
	t.Run("Cursors", h.testCursors)
	t.Run("Subscriptions", h.testSubscriptions)
	t.Run("RetentionByCount", h.testRetentionByCount)
	t.Run("RetentionByBytes", h.testRetentionByBytes)
	t.Run("RetentionByAge", h.testRetentionByAge)
	t.Run("Epoch", h.testEpoch)
	t.Run("Context", h.testContext)
	t.Run("Close", h.testClose)
	t.Run("Reopen", func(t *testing.T) {
		if reopen == nil {
			t.Skip("store keeps nothing across a restart")
		}
		h.testReopen(t)
	})
	t.Run("ReopenAfterConcurrentAppends", func(t *testing.T) {
		if reopen == nil {
			t.Skip("store keeps nothing across a restart")
		}
		h.testReopenAfterConcurrentAppends(t)
	})
}

type harness struct {
	open   OpenFunc
	reopen ReopenFunc
}

// store opens a store that the test closes at its end.
func (h *harness) store(t testing.TB, r switchboard.Retention) *handle {
	hd := &handle{h: h, t: t, s: h.open(t, r)}
	t.Cleanup(func() {
		if err := hd.s.Close(); err != nil && !errors.Is(err, switchboard.ErrStoreClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return hd
}

// handle is the store under test, replaced on reopen.
type handle struct {
	h *harness
	t testing.TB
	s switchboard.Store
}

func (hd *handle) restart() {
	hd.s = hd.h.reopen(hd.t, hd.s)
}

var ctx = context.Background()

func ev(data string) switchboard.StoredEvent { return switchboard.StoredEvent{Data: []byte(data)} }

func evs(data ...string) []switchboard.StoredEvent {
	out := make([]switchboard.StoredEvent, len(data))
	for i, d := range data {
		out[i] = ev(d)
	}
	return out
}

func (hd *handle) append(room string, data ...string) uint64 {
	hd.t.Helper()
	first, err := hd.s.Append(ctx, room, evs(data...))
	if err != nil {
		hd.t.Fatalf("Append(%q, %d events): %v", room, len(data), err)
	}
	return first
}

func (hd *handle) read(room string, from uint64, limit int) []switchboard.StoredEvent {
	hd.t.Helper()
	got, err := hd.s.Read(ctx, room, from, limit)
	if err != nil {
		hd.t.Fatalf("Read(%q, %d, %d): %v", room, from, limit, err)
	}
	return got
}

func (hd *handle) info(room string) switchboard.LogInfo {
	hd.t.Helper()
	info, ok, err := hd.s.Info(ctx, room)
	if err != nil || !ok {
		hd.t.Fatalf("Info(%q) = %+v, %v, %v; want a log", room, info, ok, err)
	}
	return info
}

// checkEvents fails unless got are the events at offsets first, first+1, …
// with the given data.
func checkEvents(t testing.TB, got []switchboard.StoredEvent, first uint64, data ...string) {
	t.Helper()
	var gotData []string
	for _, e := range got {
		gotData = append(gotData, string(e.Data))
	}
	if len(got) != len(data) {
		t.Fatalf("got %d events %q, want %d %q", len(got), gotData, len(data), data)
	}
	for i, e := range got {
		if e.Offset != first+uint64(i) || string(e.Data) != data[i] {
			t.Fatalf("event %d = offset %d %q, want offset %d %q (all: %q)", i, e.Offset, e.Data, first+uint64(i), data[i], gotData)
		}
		if e.Time.IsZero() {
			t.Fatalf("event %d has no time", e.Offset)
		}
	}
}

func (h *harness) testOffsets(t *testing.T) {
	s := h.store(t, keepAll)
	if first := s.append("a", "a1"); first != 1 {
		t.Fatalf("first offset of a new room = %d, want 1", first)
	}
	if first := s.append("a", "a2", "a3", "a4"); first != 2 {
		t.Fatalf("first offset of the second append = %d, want 2", first)
	}
	if first := s.append("b", "b1"); first != 1 {
		t.Fatalf("offsets are per room: first offset of room b = %d, want 1", first)
	}
	if first := s.append("a", "a5"); first != 5 {
		t.Fatalf("first offset after 4 events = %d, want 5", first)
	}
	checkEvents(t, s.read("a", 1, 100), 1, "a1", "a2", "a3", "a4", "a5")
	checkEvents(t, s.read("b", 1, 100), 1, "b1")

	// Time: set by the store when zero, kept when given.
	before := time.Now()
	given := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	first, err := s.s.Append(ctx, "c", []switchboard.StoredEvent{{Data: []byte("now")}, {Data: []byte("given"), Time: given}})
	if err != nil || first != 1 {
		t.Fatalf("Append = %d, %v", first, err)
	}
	got := s.read("c", 1, 10)
	checkEvents(t, got, 1, "now", "given")
	if got[0].Time.Before(before.Add(-time.Second)) || got[0].Time.After(time.Now().Add(time.Second)) {
		t.Errorf("zero Time became %v, want about %v", got[0].Time, before)
	}
	if !got[1].Time.Equal(given) {
		t.Errorf("given Time came back as %v, want %v", got[1].Time, given)
	}

	// Empty and binary data come back as stored.
	bin := []byte{0, 1, 2, 0xff, '\n', 0}
	if _, err := s.s.Append(ctx, "d", []switchboard.StoredEvent{{Data: nil}, {Data: bin}}); err != nil {
		t.Fatal(err)
	}
	got = s.read("d", 1, 10)
	if len(got) != 2 || len(got[0].Data) != 0 || !bytes.Equal(got[1].Data, bin) {
		t.Fatalf("Read = %+v, want an empty event and %v", got, bin)
	}
}

func (h *harness) testAppendCopiesData(t *testing.T) {
	s := h.store(t, keepAll)
	buf := []byte("original")
	if _, err := s.s.Append(ctx, "r", []switchboard.StoredEvent{{Data: buf}}); err != nil {
		t.Fatal(err)
	}
	copy(buf, "CHANGED!")
	got := s.read("r", 1, 1)
	checkEvents(t, got, 1, "original")
	copy(got[0].Data, "mutated!")
	checkEvents(t, s.read("r", 1, 1), 1, "original")
}

func (h *harness) testAppendNothing(t *testing.T) {
	s := h.store(t, keepAll)
	if _, err := s.s.Append(ctx, "r", nil); err == nil {
		t.Fatal("Append of no events succeeded, want an error")
	}
	if info, ok, err := s.s.Info(ctx, "r"); ok || err != nil {
		t.Fatalf("Info after an empty append = %+v, %v, %v; want no log", info, ok, err)
	}
	if _, err := s.s.Append(ctx, "", evs("x")); err == nil {
		t.Fatal("Append to the empty room name succeeded, want an error")
	}
	if err := s.s.SetCursor(ctx, "r", "", 1, nil); err == nil {
		t.Fatal("SetCursor for the empty subscriber name succeeded, want an error")
	}
	if err := s.s.SetCursor(ctx, "", "sub", 1, nil); err == nil {
		t.Fatal("SetCursor for the empty room name succeeded, want an error")
	}
}

func (h *harness) testRead(t *testing.T) {
	s := h.store(t, keepAll)
	var data []string
	for i := 1; i <= 20; i++ {
		data = append(data, fmt.Sprintf("e%d", i))
	}
	s.append("r", data...)

	checkEvents(t, s.read("r", 0, 100), 1, data...) // from 0 reads from the start
	checkEvents(t, s.read("r", 1, 5), 1, data[:5]...)
	checkEvents(t, s.read("r", 6, 5), 6, data[5:10]...)
	checkEvents(t, s.read("r", 18, 100), 18, data[17:]...)
	checkEvents(t, s.read("r", 20, 1), 20, "e20")
	if got := s.read("r", 21, 10); len(got) != 0 {
		t.Fatalf("Read past the end = %d events, want none", len(got))
	}
	if got := s.read("r", 1<<62, 10); len(got) != 0 {
		t.Fatalf("Read far past the end = %d events, want none", len(got))
	}
	if got := s.read("none", 1, 10); len(got) != 0 {
		t.Fatalf("Read of a room without a log = %d events, want none", len(got))
	}
	if _, err := s.s.Read(ctx, "r", 1, 0); err == nil {
		t.Fatal("Read with limit 0 succeeded, want an error")
	}

	// Paging through the log with the last offset seen.
	var all []switchboard.StoredEvent
	for from := uint64(1); ; {
		page := s.read("r", from, 7)
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
		from = page[len(page)-1].Offset + 1
	}
	checkEvents(t, all, 1, data...)
}

func (h *harness) testInfo(t *testing.T) {
	s := h.store(t, keepAll)
	if info, ok, err := s.s.Info(ctx, "r"); ok || err != nil {
		t.Fatalf("Info of a room without a log = %+v, %v, %v; want ok false", info, ok, err)
	}
	s.append("r", "abc", "de")
	info := s.info("r")
	if info.First != 1 || info.Last != 2 || info.Count != 2 || info.Bytes != 5 || info.Epoch == "" {
		t.Fatalf("Info = %+v, want First 1, Last 2, Count 2, Bytes 5 and an epoch", info)
	}
	s.append("r", "fghij")
	info2 := s.info("r")
	if info2.First != 1 || info2.Last != 3 || info2.Count != 3 || info2.Bytes != 10 || info2.Epoch != info.Epoch {
		t.Fatalf("Info = %+v, want First 1, Last 3, Count 3, Bytes 10, epoch %q", info2, info.Epoch)
	}
}

func (h *harness) testRooms(t *testing.T) {
	s := h.store(t, keepAll)
	rooms, err := s.s.Rooms(ctx)
	if err != nil || len(rooms) != 0 {
		t.Fatalf("Rooms of an empty store = %q, %v", rooms, err)
	}
	for _, r := range []string{"b", "a", "room/with/slashes", "ünïcode", "c"} {
		s.append(r, "x")
	}
	// A subscription alone does not make a log.
	if err := s.s.SetCursor(ctx, "subscribed-only", "sub", 0, nil); err != nil {
		t.Fatal(err)
	}
	rooms, err = s.s.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rooms)
	want := []string{"a", "b", "c", "room/with/slashes", "ünïcode"}
	if !slices.Equal(rooms, want) {
		t.Fatalf("Rooms = %q, want %q", rooms, want)
	}
}

// appendConcurrently runs writers goroutines that each append perWriter
// times (batches of 1 to 3 events) to rooms (writer i to rooms[i%len]).
// It checks each writer saw its offsets increase and returns, per room,
// the data stored at each offset as the writers saw it acknowledged.
func appendConcurrently(t testing.TB, s switchboard.Store, rooms []string, writers, perWriter int) map[string]map[uint64]string {
	t.Helper()
	var (
		mu    sync.Mutex
		acked = make(map[string]map[uint64]string)
		wg    sync.WaitGroup
	)
	for _, r := range rooms {
		acked[r] = make(map[uint64]string)
	}
	errs := make(chan error, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			room := rooms[w%len(rooms)]
			var last uint64
			for i := 0; i < perWriter; i++ {
				n := 1 + (w+i)%3
				batch := make([]string, n)
				for j := range batch {
					batch[j] = fmt.Sprintf("w%d-%d-%d", w, i, j)
				}
				first, err := s.Append(ctx, room, evs(batch...))
				if err != nil {
					errs <- fmt.Errorf("writer %d: Append: %w", w, err)
					return
				}
				if first <= last {
					errs <- fmt.Errorf("writer %d: append %d got offset %d after %d", w, i, first, last)
					return
				}
				last = first + uint64(n) - 1
				mu.Lock()
				for j, d := range batch {
					if prev, dup := acked[room][first+uint64(j)]; dup {
						errs <- fmt.Errorf("room %s offset %d given twice: %q and %q", room, first+uint64(j), prev, d)
					}
					acked[room][first+uint64(j)] = d
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return acked
}

// checkAcked fails unless every room holds exactly the acknowledged events,
// offsets 1..n without holes.
func checkAcked(t testing.TB, s switchboard.Store, acked map[string]map[uint64]string) {
	t.Helper()
	for room, want := range acked {
		got, err := s.Read(ctx, room, 1, len(want)+10)
		if err != nil {
			t.Fatalf("Read(%q): %v", room, err)
		}
		if len(got) != len(want) {
			t.Fatalf("room %s holds %d events, %d were acknowledged", room, len(got), len(want))
		}
		for i, e := range got {
			if e.Offset != uint64(i+1) {
				t.Fatalf("room %s: event %d has offset %d, want %d (a hole)", room, i, e.Offset, i+1)
			}
			if string(e.Data) != want[e.Offset] {
				t.Fatalf("room %s offset %d = %q, acknowledged as %q", room, e.Offset, e.Data, want[e.Offset])
			}
		}
		info, ok, err := s.Info(ctx, room)
		if err != nil || !ok || info.Last != uint64(len(want)) || info.Count != len(want) {
			t.Fatalf("Info(%q) = %+v, %v, %v; want Last = Count = %d", room, info, ok, err, len(want))
		}
	}
}

func (h *harness) testConcurrentAppends(t *testing.T) {
	s := h.store(t, keepAll)
	acked := appendConcurrently(t, s.s, []string{"one", "two", "three"}, 24, 40)
	checkAcked(t, s.s, acked)
}

// testAppendAsync checks AsyncAppender where the store has it: appends
// queued one after another from one goroutine (and another goroutine's
// beside them) get increasing offsets in call order, done is called once
// each, and what was confirmed reads back; the errors of Append come
// through done.
func (h *harness) testAppendAsync(t *testing.T) {
	hd := h.store(t, keepAll)
	async, ok := hd.s.(switchboard.AsyncAppender)
	if !ok {
		t.Skip("the store does not implement switchboard.AsyncAppender")
	}
	const n = 500
	type result struct {
		i     int
		first uint64
		err   error
	}
	results := make(chan result, 2*n)
	var wg sync.WaitGroup
	for _, room := range []string{"async-a", "async-b"} {
		wg.Go(func() {
			for i := range n {
				async.AppendAsync(ctx, room, evs(fmt.Sprintf("%s-%d", room, i)), func(first uint64, err error) {
					results <- result{i, first, err}
				})
			}
		})
	}
	wg.Wait()
	for range 2 * n {
		select {
		case r := <-results:
			if r.err != nil {
				t.Fatalf("AppendAsync #%d: %v", r.i, r.err)
			}
			if r.first != uint64(r.i)+1 {
				t.Fatalf("AppendAsync #%d confirmed offset %d, want %d (call order)", r.i, r.first, r.i+1)
			}
		case <-time.After(waitLimit):
			t.Fatalf("done not called for every append within %v", waitLimit)
		}
	}
	for _, room := range []string{"async-a", "async-b"} {
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprintf("%s-%d", room, i)
		}
		checkEvents(t, hd.read(room, 1, 2*n), 1, want...)
	}

	errs := make(chan error, 2)
	async.AppendAsync(ctx, "async-a", nil, func(_ uint64, err error) { errs <- err })
	async.AppendAsync(ctx, "", evs("x"), func(_ uint64, err error) { errs <- err })
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("AppendAsync of no events or to an empty room name: no error")
		}
	}
	if err := hd.s.Close(); err != nil {
		t.Fatal(err)
	}
	async.AppendAsync(ctx, "async-a", evs("late"), func(_ uint64, err error) { errs <- err })
	if err := <-errs; !errors.Is(err, switchboard.ErrStoreClosed) {
		t.Errorf("AppendAsync on a closed store: %v, want ErrStoreClosed", err)
	}
}

func (hd *handle) cursor(room, sub string) (switchboard.Subscription, bool) {
	hd.t.Helper()
	c, ok, err := hd.s.Cursor(ctx, room, sub)
	if err != nil {
		hd.t.Fatalf("Cursor(%q, %q): %v", room, sub, err)
	}
	return c, ok
}

func (hd *handle) setCursor(room, sub string, cursor uint64, acked ...uint64) {
	hd.t.Helper()
	if err := hd.s.SetCursor(ctx, room, sub, cursor, acked); err != nil {
		hd.t.Fatalf("SetCursor(%q, %q, %d, %v): %v", room, sub, cursor, acked, err)
	}
}

func checkSub(t testing.TB, got switchboard.Subscription, room, sub string, cursor uint64, acked ...uint64) {
	t.Helper()
	if got.Room != room || got.Subscriber != sub || got.Cursor != cursor || !slices.Equal(got.Acked, acked) {
		t.Fatalf("subscription = %+v, want room %q subscriber %q cursor %d acked %v", got, room, sub, cursor, acked)
	}
}

func (h *harness) testCursors(t *testing.T) {
	s := h.store(t, keepAll)
	if c, ok := s.cursor("r", "alice"); ok {
		t.Fatalf("Cursor without a subscription = %+v, ok; want ok false", c)
	}
	s.setCursor("r", "alice", 0)
	c, ok := s.cursor("r", "alice")
	if !ok {
		t.Fatal("SetCursor(0) did not create the subscription")
	}
	checkSub(t, c, "r", "alice", 0)

	s.setCursor("r", "alice", 5)
	c, _ = s.cursor("r", "alice")
	checkSub(t, c, "r", "alice", 5)

	s.setCursor("r", "alice", 3, 4, 7) // lower: ignored, acked included
	c, _ = s.cursor("r", "alice")
	checkSub(t, c, "r", "alice", 5)

	s.setCursor("r", "alice", 5, 7, 9) // same cursor: acked replaced
	c, _ = s.cursor("r", "alice")
	checkSub(t, c, "r", "alice", 5, 7, 9)

	s.setCursor("r", "alice", 8, 10) // forward: acked replaced, 7 and 9 gone
	c, _ = s.cursor("r", "alice")
	checkSub(t, c, "r", "alice", 8, 10)

	s.setCursor("r", "alice", 10)
	c, _ = s.cursor("r", "alice")
	checkSub(t, c, "r", "alice", 10)

	// The cursor is per room and per subscriber.
	if _, ok := s.cursor("r", "bob"); ok {
		t.Fatal("bob has a cursor he never set")
	}
	if _, ok := s.cursor("other", "alice"); ok {
		t.Fatal("alice has a cursor in a room she never subscribed to")
	}

	if err := s.s.DeleteCursor(ctx, "r", "alice"); err != nil {
		t.Fatal(err)
	}
	if c, ok := s.cursor("r", "alice"); ok {
		t.Fatalf("Cursor after DeleteCursor = %+v, ok", c)
	}
	if err := s.s.DeleteCursor(ctx, "r", "alice"); err != nil {
		t.Fatalf("DeleteCursor of a missing subscription: %v", err)
	}
	// After a delete the subscription starts again from scratch.
	s.setCursor("r", "alice", 2)
	c, _ = s.cursor("r", "alice")
	checkSub(t, c, "r", "alice", 2)

	// Many acked offsets, out of order on input, come back ascending.
	var many []uint64
	for i := 300; i > 0; i-- {
		many = append(many, uint64(100+i*2))
	}
	s.setCursor("r", "carol", 100, many...)
	c, _ = s.cursor("r", "carol")
	want := slices.Clone(many)
	slices.Sort(want)
	checkSub(t, c, "r", "carol", 100, want...)
}

func (h *harness) testSubscriptions(t *testing.T) {
	s := h.store(t, keepAll)
	for _, sub := range []string{"u1", "u2", "u3"} {
		for i, room := range []string{"r1", "r2"} {
			s.setCursor(room, sub, uint64(10*i+len(sub)))
		}
	}
	s.setCursor("r3", "u1", 7, 9)

	subs, err := s.s.Subscriptions(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(subs, func(a, b switchboard.Subscription) int { return strings.Compare(a.Room, b.Room) })
	if len(subs) != 3 {
		t.Fatalf("Subscriptions(u1) = %+v, want 3", subs)
	}
	checkSub(t, subs[0], "r1", "u1", 2)
	checkSub(t, subs[1], "r2", "u1", 12)
	checkSub(t, subs[2], "r3", "u1", 7, 9)

	members, err := s.s.Subscribers(ctx, "r2")
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(members, func(a, b switchboard.Subscription) int { return strings.Compare(a.Subscriber, b.Subscriber) })
	if len(members) != 3 {
		t.Fatalf("Subscribers(r2) = %+v, want 3", members)
	}
	for i, sub := range []string{"u1", "u2", "u3"} {
		checkSub(t, members[i], "r2", sub, 12)
	}

	if err := s.s.DeleteCursor(ctx, "r2", "u2"); err != nil {
		t.Fatal(err)
	}
	members, _ = s.s.Subscribers(ctx, "r2")
	if len(members) != 2 || members[0].Subscriber == "u2" || members[1].Subscriber == "u2" {
		t.Fatalf("Subscribers(r2) after deleting u2 = %+v", members)
	}
	subs, _ = s.s.Subscriptions(ctx, "u2")
	if len(subs) != 1 || subs[0].Room != "r1" {
		t.Fatalf("Subscriptions(u2) after leaving r2 = %+v, want r1 only", subs)
	}
	if subs, err := s.s.Subscriptions(ctx, "nobody"); err != nil || len(subs) != 0 {
		t.Fatalf("Subscriptions(nobody) = %+v, %v", subs, err)
	}
	if subs, err := s.s.Subscribers(ctx, "empty"); err != nil || len(subs) != 0 {
		t.Fatalf("Subscribers(empty) = %+v, %v", subs, err)
	}
	// A subscriber whose name is a prefix of another's is listed apart.
	s.setCursor("r9", "u", 1)
	if subs, _ := s.s.Subscriptions(ctx, "u"); len(subs) != 1 || subs[0].Room != "r9" {
		t.Fatalf("Subscriptions(u) = %+v, want r9 only", subs)
	}
}

// checkRetained fails unless room keeps exactly offsets first..last with
// data[offset-1].
func checkRetained(t testing.TB, s *handle, room string, first, last uint64, data []string) {
	t.Helper()
	info := s.info(room)
	var bytes int64
	for _, d := range data[first-1 : last] {
		bytes += int64(len(d))
	}
	if info.First != first || info.Last != last || info.Count != int(last-first+1) || info.Bytes != bytes {
		t.Fatalf("Info = %+v, want First %d Last %d Count %d Bytes %d", info, first, last, last-first+1, bytes)
	}
	// Reading from before the first kept offset skips the gap.
	checkEvents(t, s.read(room, 1, len(data)+1), first, data[first-1:last]...)
}

func (h *harness) testRetentionByCount(t *testing.T) {
	s := h.store(t, switchboard.Retention{MaxEvents: 10})
	var data []string
	for i := 1; i <= 25; i++ {
		data = append(data, fmt.Sprintf("e%d", i))
		s.append("r", data[i-1])
	}
	checkRetained(t, s, "r", 16, 25, data)
	// A batch larger than the bound keeps its newest events.
	var batch []string
	for i := 26; i <= 40; i++ {
		batch = append(batch, fmt.Sprintf("e%d", i))
	}
	data = append(data, batch...)
	if first := s.append("r", batch...); first != 26 {
		t.Fatalf("Append after trimming returned %d, want 26", first)
	}
	checkRetained(t, s, "r", 31, 40, data)
	// Rooms are bounded separately.
	s.append("other", "x")
	checkRetained(t, s, "other", 1, 1, []string{"x"})
}

func (h *harness) testRetentionByBytes(t *testing.T) {
	s := h.store(t, switchboard.Retention{MaxBytes: 100})
	var data []string
	for i := 0; i < 30; i++ {
		d := fmt.Sprintf("%010d", i) // 10 bytes
		data = append(data, d)
		s.append("r", d)
	}
	checkRetained(t, s, "r", 21, 30, data) // 10 × 10 bytes
	// A 35-byte event pushes out four 10-byte ones (60 + 35 = 95).
	big := "0123456789012345678901234567890123X"
	data = append(data, big)
	s.append("r", big)
	checkRetained(t, s, "r", 25, 31, data)
	// An event over the bound is stored and at once trimmed: the log keeps
	// its offsets and is empty.
	huge := string(make([]byte, 101))
	data = append(data, huge)
	if first := s.append("r", huge); first != 32 {
		t.Fatalf("Append of an oversized event = %d, want 32", first)
	}
	info := s.info("r")
	if info.First != 33 || info.Last != 32 || info.Count != 0 || info.Bytes != 0 {
		t.Fatalf("Info after an oversized event = %+v, want an empty log at 33", info)
	}
	if got := s.read("r", 1, 100); len(got) != 0 {
		t.Fatalf("Read of an emptied log = %d events", len(got))
	}
	if first := s.append("r", "next"); first != 33 {
		t.Fatalf("Append after emptying = %d, want 33", first)
	}
}

func (h *harness) testRetentionByAge(t *testing.T) {
	const maxAge = 300 * time.Millisecond
	s := h.store(t, switchboard.Retention{MaxAge: maxAge})
	old := time.Now().Add(-time.Hour)
	if _, err := s.s.Append(ctx, "r", []switchboard.StoredEvent{{Data: []byte("old"), Time: old}, {Data: []byte("old2"), Time: old}}); err != nil {
		t.Fatal(err)
	}
	s.append("r", "new1", "new2")
	epoch := s.info("r").Epoch

	// The old events go soon; the new ones stay about maxAge.
	deadline := time.Now().Add(waitLimit)
	for s.info("r").First != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("events an hour old still kept after %v: %+v", waitLimit, s.info("r"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	start := time.Now()
	checkEvents(t, s.read("r", 1, 10), 3, "new1", "new2")
	for s.info("r").Count != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("events older than MaxAge %v still kept after %v: %+v", maxAge, waitLimit, s.info("r"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if waited := time.Since(start); waited < maxAge/2 {
		t.Errorf("new events were dropped after %v, before MaxAge %v", waited, maxAge)
	}
	info := s.info("r")
	if info.First != 5 || info.Last != 4 || info.Bytes != 0 || info.Epoch != epoch {
		t.Fatalf("Info of a log emptied by age = %+v, want First 5 Last 4 Bytes 0 epoch %q", info, epoch)
	}
	if first := s.append("r", "again"); first != 5 {
		t.Fatalf("Append after the age trim = %d, want 5", first)
	}
	if s.info("r").Epoch != epoch {
		t.Fatal("epoch changed though no history was lost")
	}
}

func (h *harness) testEpoch(t *testing.T) {
	s := h.store(t, keepAll)
	s.append("a", "1")
	s.append("b", "1")
	ea, eb := s.info("a").Epoch, s.info("b").Epoch
	if ea == "" || eb == "" || ea == eb {
		t.Fatalf("epochs %q and %q: want two different, non-empty ones", ea, eb)
	}
	s.append("a", "2", "3")
	if e := s.info("a").Epoch; e != ea {
		t.Fatalf("epoch changed from %q to %q on append", ea, e)
	}
	// Another store (a new history) gives another epoch.
	s2 := h.store(t, keepAll)
	s2.append("a", "1")
	if e := s2.info("a").Epoch; e == ea {
		t.Fatalf("a new store reused epoch %q", e)
	}
}

func (h *harness) testContext(t *testing.T) {
	s := h.store(t, keepAll)
	s.append("r", "kept")
	s.setCursor("r", "sub", 1)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	_, err := s.s.Append(cctx, "r", evs("not stored"))
	check("Append", err)
	_, err = s.s.Read(cctx, "r", 1, 10)
	check("Read", err)
	_, _, err = s.s.Info(cctx, "r")
	check("Info", err)
	_, err = s.s.Rooms(cctx)
	check("Rooms", err)
	check("SetCursor", s.s.SetCursor(cctx, "r", "sub", 5, nil))
	_, _, err = s.s.Cursor(cctx, "r", "sub")
	check("Cursor", err)
	check("DeleteCursor", s.s.DeleteCursor(cctx, "r", "sub"))
	_, err = s.s.Subscriptions(cctx, "sub")
	check("Subscriptions", err)
	_, err = s.s.Subscribers(cctx, "r")
	check("Subscribers", err)

	// A cancelled call changed nothing.
	checkEvents(t, s.read("r", 1, 10), 1, "kept")
	c, ok := s.cursor("r", "sub")
	if !ok {
		t.Fatal("a cancelled DeleteCursor deleted the subscription")
	}
	checkSub(t, c, "r", "sub", 1)

	// A deadline that passes while appending either stores the events or
	// reports the deadline; the log stays contiguous either way.
	dctx, cancel := context.WithTimeout(ctx, time.Microsecond)
	defer cancel()
	for i := 0; i < 20; i++ {
		if _, err := s.s.Append(dctx, "r", evs("maybe")); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Append past a deadline: %v", err)
		}
	}
	got := s.read("r", 1, 100)
	for i, e := range got {
		if e.Offset != uint64(i+1) {
			t.Fatalf("hole at %d after cancelled appends", i+1)
		}
	}
}

func (h *harness) testClose(t *testing.T) {
	s := h.store(t, keepAll)
	s.append("r", "x")
	s.setCursor("r", "sub", 1)
	if err := s.s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	check := func(name string, err error) {
		t.Helper()
		if !errors.Is(err, switchboard.ErrStoreClosed) {
			t.Errorf("%s on a closed store: %v, want ErrStoreClosed", name, err)
		}
	}
	_, err := s.s.Append(ctx, "r", evs("y"))
	check("Append", err)
	_, err = s.s.Read(ctx, "r", 1, 10)
	check("Read", err)
	_, _, err = s.s.Info(ctx, "r")
	check("Info", err)
	_, err = s.s.Rooms(ctx)
	check("Rooms", err)
	check("SetCursor", s.s.SetCursor(ctx, "r", "sub", 2, nil))
	_, _, err = s.s.Cursor(ctx, "r", "sub")
	check("Cursor", err)
	check("DeleteCursor", s.s.DeleteCursor(ctx, "r", "sub"))
	_, err = s.s.Subscriptions(ctx, "sub")
	check("Subscriptions", err)
	_, err = s.s.Subscribers(ctx, "r")
	check("Subscribers", err)
	check("second Close", s.s.Close())

	// Close while appends are in flight: each either succeeds or says the
	// store is closed, and none hangs.
	s2 := h.store(t, keepAll)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				if _, err := s2.s.Append(ctx, "r", evs("z")); err != nil {
					if !errors.Is(err, switchboard.ErrStoreClosed) {
						t.Errorf("Append during Close: %v", err)
					}
					return
				}
			}
		}()
	}
	time.Sleep(5 * time.Millisecond)
	if err := s2.s.Close(); err != nil {
		t.Errorf("Close during appends: %v", err)
	}
	wg.Wait()
}

func (h *harness) testReopen(t *testing.T) {
	s := h.store(t, keepAll)
	s.append("a", "a1", "a2")
	s.append("a", "a3")
	given := time.Date(2031, 5, 6, 7, 8, 9, 10, time.UTC)
	if _, err := s.s.Append(ctx, "b", []switchboard.StoredEvent{{Data: []byte{0, 1, 2}, Time: given}}); err != nil {
		t.Fatal(err)
	}
	s.setCursor("a", "alice", 2, 3)
	s.setCursor("b", "alice", 1)
	s.setCursor("a", "bob", 0)
	s.setCursor("x", "carol", 4) // subscription to a room without a log
	infoA, infoB := s.info("a"), s.info("b")
	timesA := s.read("a", 1, 10)

	s.restart()

	if got := s.info("a"); got != infoA {
		t.Fatalf("Info(a) after reopen = %+v, want %+v", got, infoA)
	}
	if got := s.info("b"); got != infoB {
		t.Fatalf("Info(b) after reopen = %+v, want %+v", got, infoB)
	}
	gotA := s.read("a", 1, 10)
	checkEvents(t, gotA, 1, "a1", "a2", "a3")
	for i := range gotA {
		if !gotA[i].Time.Equal(timesA[i].Time) {
			t.Fatalf("event a/%d time %v after reopen, was %v", i+1, gotA[i].Time, timesA[i].Time)
		}
	}
	gotB := s.read("b", 1, 10)
	if len(gotB) != 1 || !bytes.Equal(gotB[0].Data, []byte{0, 1, 2}) || !gotB[0].Time.Equal(given) {
		t.Fatalf("Read(b) after reopen = %+v", gotB)
	}
	rooms, err := s.s.Rooms(ctx)
	slices.Sort(rooms)
	if err != nil || !slices.Equal(rooms, []string{"a", "b"}) {
		t.Fatalf("Rooms after reopen = %q, %v", rooms, err)
	}
	c, ok := s.cursor("a", "alice")
	if !ok {
		t.Fatal("cursor lost on reopen")
	}
	checkSub(t, c, "a", "alice", 2, 3)
	subs, err := s.s.Subscriptions(ctx, "alice")
	if err != nil || len(subs) != 2 {
		t.Fatalf("Subscriptions(alice) after reopen = %+v, %v", subs, err)
	}
	members, err := s.s.Subscribers(ctx, "a")
	if err != nil || len(members) != 2 {
		t.Fatalf("Subscribers(a) after reopen = %+v, %v", members, err)
	}
	if c, ok := s.cursor("x", "carol"); !ok || c.Cursor != 4 {
		t.Fatalf("Cursor(x, carol) after reopen = %+v, %v", c, ok)
	}
	// The log goes on where it was, in the same epoch.
	if first := s.append("a", "a4"); first != 4 {
		t.Fatalf("Append after reopen = %d, want 4", first)
	}
	if e := s.info("a").Epoch; e != infoA.Epoch {
		t.Fatalf("epoch changed across a clean reopen: %q → %q", infoA.Epoch, e)
	}
	// A second restart keeps the deletes done in between.
	if err := s.s.DeleteCursor(ctx, "a", "bob"); err != nil {
		t.Fatal(err)
	}
	s.restart()
	if _, ok := s.cursor("a", "bob"); ok {
		t.Fatal("a deleted subscription came back after reopen")
	}
	checkEvents(t, s.read("a", 1, 10), 1, "a1", "a2", "a3", "a4")
}

func (h *harness) testReopenAfterConcurrentAppends(t *testing.T) {
	s := h.store(t, keepAll)
	acked := appendConcurrently(t, s.s, []string{"p", "q"}, 16, 30)
	s.restart()
	checkAcked(t, s.s, acked)
}
