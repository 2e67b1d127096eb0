package switchboard_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"

	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/bolt"
	"github.com/switchboard-io/switchboard/client"
	"github.com/switchboard-io/switchboard/memory"
)

// authIdentity takes the socket's identity from its auth payload {id}.
func authIdentity(s *switchboard.Socket) string {
	var a struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(s.Handshake().Auth, &a)
	return a.ID
}

// durableServer is an in-process server with a memory store whose "sub"
// event subscribes the socket to a durable room.
func durableServer(t *testing.T, store switchboard.Store, durable switchboard.DurableOptions) *testServer {
	t.Helper()
	ts := newTestServer(t, &switchboard.Options{Store: store, Identity: authIdentity, Durable: durable})
	ts.OnConnection(func(s *switchboard.Socket) {
		s.On("sub", func(room string, ack switchboard.AckFunc) {
			if err := s.JoinDurable(context.Background(), room); err != nil {
				ack(map[string]any{"ok": false, "error": err.Error()})
				return
			}
			ack(map[string]any{"ok": true})
		})
	})
	t.Cleanup(func() { store.Close() })
	return ts
}

// subLine is what testdata/durable/subscriber.js prints.
type subLine struct {
	Kind   string `json:"kind"`
	ID     string `json:"id"`
	Value  any    `json:"value"`
	Meta   switchboard.DeliveryMeta
	Acked  bool                  `json:"acked"`
	Gap    switchboard.GapNotice `json:"gap"`
	Reason string                `json:"reason"`
	Sub    map[string]any        `json:"sub"`
}

// nodeSubscriber runs the official client as a durable subscriber.
type nodeSubscriber struct {
	stdin   io.WriteCloser
	lines   chan subLine
	pending []subLine // seen while waiting for the subscription
	done    chan struct{}
}

func startSubscriber(t *testing.T, url, identity, room, policy string) *nodeSubscriber {
	t.Helper()
	requireNode(t)
	cmd := exec.Command("node", "testdata/durable/subscriber.js", url, identity, room, policy)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sub := &nodeSubscriber{stdin: stdin, lines: make(chan subLine, 4096), done: make(chan struct{})}
	go func() {
		defer close(sub.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l subLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				sub.lines <- l
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(sub.stop)
	// Wait until connected and subscribed, keeping what arrives meanwhile
	// (a returning subscriber's replay may start before the answer).
	connected, subscribed := false, false
	for !connected || !subscribed {
		select {
		case l := <-sub.lines:
			switch {
			case l.Kind == "connect":
				connected = true
			case l.Kind == "sub":
				if l.Sub["ok"] != true {
					t.Fatalf("subscriber %s: subscription refused: %v", identity, l.Sub)
				}
				subscribed = true
			default:
				sub.pending = append(sub.pending, l)
			}
		case <-time.After(waitBound):
			t.Fatalf("subscriber %s did not connect and subscribe within %v", identity, waitBound)
		}
	}
	return sub
}

// next returns the next thing the subscriber saw.
func (s *nodeSubscriber) next(t *testing.T) subLine {
	t.Helper()
	if len(s.pending) > 0 {
		l := s.pending[0]
		s.pending = s.pending[1:]
		return l
	}
	for {
		select {
		case l := <-s.lines:
			return l
		case <-time.After(waitBound):
			t.Fatalf("subscriber saw nothing for %v", waitBound)
			return subLine{}
		}
	}
}

// events reads n deliveries and returns their offsets and values.
func (s *nodeSubscriber) events(t *testing.T, n int) (offsets []uint64, values []any) {
	t.Helper()
	for len(offsets) < n {
		l := s.next(t)
		if l.Kind != "event" {
			t.Fatalf("expected a delivery, got %+v", l)
		}
		if !l.Acked {
			t.Fatalf("durable delivery without an ack callback: %+v", l)
		}
		offsets = append(offsets, l.Meta.Offset)
		values = append(values, l.Value)
	}
	return offsets, values
}

// stop disconnects the client and waits for its process to end.
func (s *nodeSubscriber) stop() {
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(waitBound):
	}
}

func publishN(t *testing.T, ts *testServer, room string, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		if _, err := ts.Of("/").Publish(context.Background(), room, "m", i); err != nil {
			t.Fatal(err)
		}
	}
}

// waitCursor waits until the store holds the expected position.
func waitCursor(t *testing.T, store switchboard.Store, room, identity string, cursor uint64, acked []uint64) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		sub, _, err := store.Cursor(context.Background(), "/#"+room, identity)
		if err != nil {
			t.Fatal(err)
		}
		if sub.Cursor == cursor && slices.Equal(sub.Acked, acked) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor of %s in %s = %d %v, want %d %v", identity, room, sub.Cursor, sub.Acked, cursor, acked)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func seq(from, to uint64) []uint64 {
	var out []uint64
	for o := from; o <= to; o++ {
		out = append(out, o)
	}
	return out
}

func TestDurableReplayAfterReconnect(t *testing.T) {
	store := memory.NewStore(nil)
	ts := durableServer(t, store, switchboard.DurableOptions{})
	first := startSubscriber(t, ts.URL, "alice", "news", "all")
	publishN(t, ts, "news", 0, 1)
	if offs, _ := first.events(t, 1); offs[0] != 1 {
		t.Fatalf("first offset %d, want 1", offs[0])
	}
	waitCursor(t, store, "news", "alice", 1, nil)
	first.stop()

	publishN(t, ts, "news", 1, 1000) // while alice is away
	second := startSubscriber(t, ts.URL, "alice", "news", "all")
	offs, vals := second.events(t, 1000)
	if !slices.Equal(offs, seq(2, 1001)) {
		t.Fatalf("replayed offsets %v...; want 2..1001 in order", offs[:10])
	}
	for i, v := range vals {
		if v != float64(i+1) {
			t.Fatalf("replayed value %d = %v, want %d", i, v, i+1)
		}
	}
	waitCursor(t, store, "news", "alice", 1001, nil)
	second.stop()

	// Everything was acknowledged: nothing comes twice.
	third := startSubscriber(t, ts.URL, "alice", "news", "all")
	publishN(t, ts, "news", 5000, 1)
	if offs, vals := third.events(t, 1); offs[0] != 1002 || vals[0] != float64(5000) {
		t.Fatalf("after full acknowledgement got offset %d value %v, want the new event 1002", offs[0], vals[0])
	}
}

func TestDurableSelectiveAcks(t *testing.T) {
	store := memory.NewStore(nil)
	ts := durableServer(t, store, switchboard.DurableOptions{})
	odd := startSubscriber(t, ts.URL, "bob", "q", "odd")
	publishN(t, ts, "q", 0, 10)
	if offs, _ := odd.events(t, 10); !slices.Equal(offs, seq(1, 10)) {
		t.Fatalf("offsets %v, want 1..10", offs)
	}
	waitCursor(t, store, "q", "bob", 1, []uint64{3, 5, 7, 9})
	odd.stop()

	again := startSubscriber(t, ts.URL, "bob", "q", "all")
	offs, vals := again.events(t, 5)
	if !slices.Equal(offs, []uint64{2, 4, 6, 8, 10}) {
		t.Fatalf("redelivered %v, want exactly the unacknowledged 2 4 6 8 10", offs)
	}
	if vals[0] != float64(1) {
		t.Fatalf("value of offset 2 = %v, want 1", vals[0])
	}
	waitCursor(t, store, "q", "bob", 10, nil)
}

func TestDurableAckTimeoutRedelivers(t *testing.T) {
	store := memory.NewStore(nil)
	ts := durableServer(t, store, switchboard.DurableOptions{AckTimeout: 200 * time.Millisecond})
	mute := startSubscriber(t, ts.URL, "carol", "r", "none")
	publishN(t, ts, "r", 0, 3)
	first, _ := mute.events(t, 3)
	second, _ := mute.events(t, 3)
	if !slices.Equal(first, seq(1, 3)) || !slices.Equal(second, seq(1, 3)) {
		t.Fatalf("deliveries %v then %v, want 1..3 twice, in order", first, second)
	}
}

func TestDurableGapNotice(t *testing.T) {
	store := memory.NewStore(&memory.StoreOptions{Retention: &switchboard.Retention{MaxEvents: 5}})
	ts := durableServer(t, store, switchboard.DurableOptions{})
	sub := startSubscriber(t, ts.URL, "dave", "g", "all")
	sub.stop()
	publishN(t, ts, "g", 0, 20) // retention keeps 16..20
	back := startSubscriber(t, ts.URL, "dave", "g", "all")
	l := back.next(t)
	want := switchboard.GapNotice{Room: "g", From: 1, To: 15, Missed: 15}
	if l.Kind != "gap" || l.Gap != want {
		t.Fatalf("first thing after the gap: %+v, want gap notice %+v", l, want)
	}
	if offs, _ := back.events(t, 5); !slices.Equal(offs, seq(16, 20)) {
		t.Fatalf("after the gap: %v, want 16..20", offs)
	}
	waitCursor(t, store, "g", "dave", 20, nil)
}

func TestDurableSameIdentityTwice(t *testing.T) {
	store := memory.NewStore(nil)
	ts := durableServer(t, store, switchboard.DurableOptions{})
	a := startSubscriber(t, ts.URL, "erin", "two", "all")
	b := startSubscriber(t, ts.URL, "erin", "two", "all")
	publishN(t, ts, "two", 0, 5)
	// Every connection of an identity gets every event.
	for name, s := range map[string]*nodeSubscriber{"first": a, "second": b} {
		if offs, _ := s.events(t, 5); !slices.Equal(offs, seq(1, 5)) {
			t.Fatalf("%s connection got %v, want 1..5", name, offs)
		}
	}
	waitCursor(t, store, "two", "erin", 5, nil)
	a.stop()
	b.stop()
	// Both acknowledged: a new connection of the identity starts after 5.
	c := startSubscriber(t, ts.URL, "erin", "two", "all")
	publishN(t, ts, "two", 100, 1)
	if offs, _ := c.events(t, 1); offs[0] != 6 {
		t.Fatalf("third connection got offset %d, want 6", offs[0])
	}
}

func TestDurableLateAcksCountAsDuplicates(t *testing.T) {
	store := memory.NewStore(nil)
	ts := durableServer(t, store, switchboard.DurableOptions{AckTimeout: 150 * time.Millisecond})
	late := startSubscriber(t, ts.URL, "frank", "l", "late")
	publishN(t, ts, "l", 0, 2)
	first, _ := late.events(t, 2)
	again, _ := late.events(t, 2) // sent again before the late acknowledgements came
	if !slices.Equal(first, seq(1, 2)) || !slices.Equal(again, seq(1, 2)) {
		t.Fatalf("deliveries %v then %v, want 1 2 twice", first, again)
	}
	waitCursor(t, store, "l", "frank", 2, nil)
	deadline := time.Now().Add(waitBound)
	for ts.Of("/").DuplicateAcks() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ts.Of("/").DuplicateAcks(); n != 2 {
		t.Errorf("duplicate acknowledgements = %d, want 2", n)
	}
}

func TestDurableErrors(t *testing.T) {
	plain := newTestServer(t, nil)
	if _, err := plain.Of("/").Publish(context.Background(), "r", "m", 1); !errors.Is(err, switchboard.ErrNoStore) {
		t.Errorf("Publish without a store: %v, want ErrNoStore", err)
	}
	store := memory.NewStore(nil)
	ts := durableServer(t, store, switchboard.DurableOptions{})
	if _, err := ts.Of("/").Publish(context.Background(), "r", "disconnect", 1); !errors.Is(err, switchboard.ErrReservedEvent) {
		t.Errorf("Publish of a reserved event: %v", err)
	}
	// A socket without identity cannot subscribe.
	got := make(chan error, 1)
	ts.Of("/anon").OnConnection(func(s *switchboard.Socket) { got <- s.JoinDurable(context.Background(), "r") })
	forOneGoClient(t, ts, "/anon")
	if err := recv(t, got, "JoinDurable result"); !errors.Is(err, switchboard.ErrNoIdentity) {
		t.Errorf("JoinDurable without identity: %v, want ErrNoIdentity", err)
	}
}

// forOneGoClient connects one Go client to a namespace of ts.
func forOneGoClient(t *testing.T, ts *testServer, nsp string) {
	t.Helper()
	c := dialGo(t, ts.URL+nsp, "websocket", dialOptions{})
	c.Expect(t, "connect")
}

func TestUnknownAckIgnoredAndCounted(t *testing.T) {
	ts := newTestServer(t, nil)
	ts.OnConnection(func(s *switchboard.Socket) {
		s.On("echo", func(v string, ack switchboard.AckFunc) { ack(v) })
	})
	sock, err := client.Dial(context.Background(), ts.URL+"/", &client.Options{Transports: []string{"websocket"}})
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Manager().Close()
	// An ACK packet (type 3) for id 99, which the server never asked for.
	if err := sock.Manager().Engine().Send([]byte("399[\"forged\"]"), false); err != nil {
		t.Fatal(err)
	}
	res, err := sock.Timeout(waitBound).EmitWithAck(context.Background(), "echo", "still here")
	if err != nil {
		t.Fatalf("connection broken after an unknown ack: %v", err)
	}
	var v string
	if err := res.Decode(0, &v); err != nil || v != "still here" {
		t.Fatalf("echo = %q, %v", v, err)
	}
	if n := ts.Of("/").UnknownAcks(); n != 1 {
		t.Errorf("UnknownAcks = %d, want 1", n)
	}
}

// TestDurablePublishAsync: a publisher fires many publishes without waiting;
// the handler queues each with PublishAsync and answers from the store's
// confirm. Offsets follow the publisher's order, every confirm arrives, and
// a subscriber gets them all in order — with the bolt store (group commit,
// AsyncAppender) and the memory store (confirmed before PublishAsync
// returns).
func TestDurablePublishAsync(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T) switchboard.Store
	}{
		{"memory", func(*testing.T) switchboard.Store { return memory.NewStore(nil) }},
		{"bolt", func(t *testing.T) switchboard.Store {
			s, err := bolt.Open(filepath.Join(t.TempDir(), "d.db"), nil)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const n = 300
			ts := durableServer(t, tc.store(t), switchboard.DurableOptions{})
			ts.OnConnection(func(s *switchboard.Socket) {
				s.On("pub", func(v int, ack switchboard.AckFunc) {
					s.PublishAsync(context.Background(), "feed", "m", []any{v}, func(offset uint64, err error) {
						if err != nil {
							ack(map[string]any{"error": err.Error()})
							return
						}
						ack(offset)
					})
				})
			})
			sub := startSubscriber(t, ts.URL, "carol", "feed", "all")
			pub, err := client.Dial(context.Background(), ts.URL+"/", &client.Options{Transports: []string{"websocket"}})
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Manager().Close()
			type confirm struct {
				v      int
				offset uint64
				err    error
			}
			confirms := make(chan confirm, n)
			for v := range n {
				err := pub.Timeout(waitBound).EmitWithAckFunc("pub", func(res client.Args, err error) {
					var off uint64
					if err == nil {
						err = res.Decode(0, &off)
					}
					confirms <- confirm{v, off, err}
				}, v)
				if err != nil {
					t.Fatal(err)
				}
			}
			for range n {
				c := recv(t, confirms, "publish confirm")
				if c.err != nil || c.offset == 0 {
					t.Fatalf("publish %d: offset %d, %v", c.v, c.offset, c.err)
				}
			}
			offs, vals := sub.events(t, n)
			if !slices.Equal(offs, seq(1, n)) {
				t.Fatalf("subscriber offsets %v..., want 1..%d", offs[:10], n)
			}
			for i, v := range vals {
				if v != float64(i) {
					t.Fatalf("delivery %d = %v, want %d (the publisher's order)", i, v, i)
				}
			}
		})
	}
}
