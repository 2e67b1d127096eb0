// Package adaptertest is the test suite every switchboard.Adapter must pass,
// run against one node (the in-memory adapter) or several nodes sharing a
// cluster adapter. It drives real servers with the Go client over
// websockets and asserts what the clients see.
package adaptertest

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/client"
)

// waitLimit bounds every wait for something a client should see; reaching
// it fails the test (it is a hang guard, not a speed assertion).
const waitLimit = 10 * time.Second

// Run runs the suite. newServer returns a fresh server using the adapter
// under test; all servers it returns in one subtest must share their
// cluster (for the in-memory adapter, nodes must be 1).
func Run(t *testing.T, nodes int, newServer func(t *testing.T) *switchboard.Server) {
	t.Run("Union", func(t *testing.T) { testUnion(t, newCluster(t, nodes, newServer)) })
	t.Run("Except", func(t *testing.T) { testExcept(t, newCluster(t, nodes, newServer)) })
	t.Run("ExcludeSender", func(t *testing.T) { testExcludeSender(t, newCluster(t, nodes, newServer)) })
	t.Run("OwnRoomAndLeave", func(t *testing.T) { testOwnRoomAndLeave(t, newCluster(t, nodes, newServer)) })
	t.Run("SocketsJoinLeave", func(t *testing.T) { testSocketsJoinLeave(t, newCluster(t, nodes, newServer)) })
	t.Run("FetchSockets", func(t *testing.T) { testFetchSockets(t, newCluster(t, nodes, newServer)) })
	t.Run("BroadcastWithAck", func(t *testing.T) { testBroadcastWithAck(t, newCluster(t, nodes, newServer)) })
	t.Run("DisconnectSockets", func(t *testing.T) { testDisconnectSockets(t, newCluster(t, nodes, newServer)) })
	t.Run("ServerSideEmit", func(t *testing.T) { testServerSideEmit(t, newCluster(t, nodes, newServer)) })
	t.Run("RoomEvents", func(t *testing.T) { testRoomEvents(t, newCluster(t, nodes, newServer)) })
}

type cluster struct {
	t       *testing.T
	servers []*switchboard.Server
	urls    []string
	next    int
}

func newCluster(t *testing.T, nodes int, newServer func(t *testing.T) *switchboard.Server) *cluster {
	c := &cluster{t: t}
	for i := 0; i < nodes; i++ {
		srv := newServer(t)
		srv.OnConnection(func(s *switchboard.Socket) {
			s.On("join", func(rooms []string, ack switchboard.AckFunc) {
				if err := s.Join(rooms...); err != nil {
					ack(err.Error())
					return
				}
				ack("ok")
			})
			s.On("leave", func(room string, ack switchboard.AckFunc) { s.Leave(room); ack("ok") })
			s.On("setData", func(v string, ack switchboard.AckFunc) { s.SetData(v); ack("ok") })
			// These answer once the broadcast left the node, so that a
			// fence sent afterwards cannot overtake it.
			s.On("toRoom", func(room, msg string, ack switchboard.AckFunc) { _ = s.To(room).Emit("m", msg); ack("ok") })
			s.On("broadcast", func(msg string, ack switchboard.AckFunc) { _ = s.Broadcast().Emit("m", msg); ack("ok") })
		})
		hs := httptest.NewServer(srv)
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Close(ctx); err != nil {
				t.Errorf("server close: %v", err)
			}
			hs.Close()
		})
		c.servers = append(c.servers, srv)
		c.urls = append(c.urls, hs.URL)
	}
	return c
}

// peer is a connected client that records the "m" events it receives.
type peer struct {
	name string
	sock *client.Socket
	node int

	mu       sync.Mutex
	got      []string
	arrived  chan struct{}
	discMu   sync.Mutex
	disc     []string
	discSeen chan struct{}
}

// connect opens a client on the next node (round robin) and joins rooms.
func (c *cluster) connect(name string, rooms ...string) *peer {
	t := c.t
	node := c.next % len(c.urls)
	c.next++
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	sock, err := client.Dial(ctx, c.urls[node]+"/", &client.Options{Transports: []string{"websocket"}, DisableReconnection: true})
	if err != nil {
		t.Fatalf("%s: dial node %d: %v", name, node, err)
	}
	p := &peer{name: name, sock: sock, node: node, arrived: make(chan struct{}, 1024), discSeen: make(chan struct{}, 4)}
	sock.On("m", func(msg string) {
		p.mu.Lock()
		p.got = append(p.got, msg)
		p.mu.Unlock()
		p.arrived <- struct{}{}
	})
	sock.On("disconnect", func(reason string) {
		p.discMu.Lock()
		p.disc = append(p.disc, reason)
		p.discMu.Unlock()
		p.discSeen <- struct{}{}
	})
	sock.On("q", func(ack client.AckFunc) { ack(name) })
	t.Cleanup(func() { sock.Manager().Close() })
	if len(rooms) > 0 {
		p.mustAck(t, "join", rooms)
	}
	return p
}

func (p *peer) mustAck(t *testing.T, event string, args ...any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	res, err := p.sock.EmitWithAck(ctx, event, args...)
	if err != nil {
		t.Fatalf("%s: %s: %v", p.name, event, err)
	}
	var s string
	if err := res.Decode(0, &s); err != nil || s != "ok" {
		t.Fatalf("%s: %s answered %v (%v)", p.name, event, res, err)
	}
}

// received returns the "m" messages received so far.
func (p *peer) received() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.got...)
}

// waitFor waits until the peer received msg, failing after waitLimit.
func (p *peer) waitFor(t *testing.T, msg string) {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		if slices.Contains(p.received(), msg) {
			return
		}
		select {
		case <-p.arrived:
		case <-deadline:
			t.Fatalf("%s never received %q (got %q)", p.name, msg, p.received())
		}
	}
}

// fence broadcasts a marker to everyone from every node and waits until all
// peers have it: every earlier broadcast from those nodes has then arrived,
// so counting what each peer got is meaningful.
func (c *cluster) fence(peers ...*peer) {
	c.t.Helper()
	marker := fmt.Sprintf("fence-%d", time.Now().UnixNano())
	for i, srv := range c.servers {
		if err := srv.Emit("m", fmt.Sprintf("%s-%d", marker, i)); err != nil {
			c.t.Fatalf("fence emit: %v", err)
		}
	}
	for _, p := range peers {
		for i := range c.servers {
			p.waitFor(c.t, fmt.Sprintf("%s-%d", marker, i))
		}
	}
}

// count returns how many times the peer received msg.
func (p *peer) count(msg string) int {
	n := 0
	for _, m := range p.received() {
		if m == msg {
			n++
		}
	}
	return n
}

func expectCounts(t *testing.T, msg string, want map[*peer]int) {
	t.Helper()
	for p, n := range want {
		if got := p.count(msg); got != n {
			t.Errorf("%s received %q %d time(s), want %d (all: %q)", p.name, msg, got, n, p.received())
		}
	}
}

func testUnion(t *testing.T, c *cluster) {
	a := c.connect("a", "r1")
	b := c.connect("b", "r1", "r2")
	cc := c.connect("c", "r2")
	d := c.connect("d")
	last := c.servers[len(c.servers)-1]
	if err := last.To("r1", "r2").Emit("m", "union"); err != nil {
		t.Fatal(err)
	}
	if err := last.In("r2").To("nobody").Emit("m", "r2-only"); err != nil {
		t.Fatal(err)
	}
	c.fence(a, b, cc, d)
	expectCounts(t, "union", map[*peer]int{a: 1, b: 1, cc: 1, d: 0})
	expectCounts(t, "r2-only", map[*peer]int{a: 0, b: 1, cc: 1, d: 0})
}

func testExcept(t *testing.T, c *cluster) {
	a := c.connect("a", "r1")
	b := c.connect("b", "r1", "r2")
	cc := c.connect("c", "r2")
	d := c.connect("d")
	srv := c.servers[0]
	if err := srv.To("r1").Except("r2").Emit("m", "r1-not-r2"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Except("r1").Emit("m", "all-but-r1"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Except(a.sock.ID(), "r2").Emit("m", "all-but-a-r2"); err != nil {
		t.Fatal(err)
	}
	c.fence(a, b, cc, d)
	expectCounts(t, "r1-not-r2", map[*peer]int{a: 1, b: 0, cc: 0, d: 0})
	expectCounts(t, "all-but-r1", map[*peer]int{a: 0, b: 0, cc: 1, d: 1})
	expectCounts(t, "all-but-a-r2", map[*peer]int{a: 0, b: 0, cc: 0, d: 1})
}

func testExcludeSender(t *testing.T, c *cluster) {
	a := c.connect("a", "room")
	b := c.connect("b", "room")
	cc := c.connect("c")
	b.mustAck(t, "toRoom", "room", "from-b")
	a.mustAck(t, "broadcast", "bcast-a")
	a.waitFor(t, "from-b")
	c.fence(a, b, cc)
	expectCounts(t, "from-b", map[*peer]int{a: 1, b: 0, cc: 0})
	expectCounts(t, "bcast-a", map[*peer]int{a: 0, b: 1, cc: 1})
}

func testOwnRoomAndLeave(t *testing.T, c *cluster) {
	a := c.connect("a", "r")
	b := c.connect("b", "r")
	srv := c.servers[0]
	if err := srv.To(b.sock.ID()).Emit("m", "just-b"); err != nil {
		t.Fatal(err)
	}
	a.mustAck(t, "leave", "r")
	if err := srv.To("r").Emit("m", "after-leave"); err != nil {
		t.Fatal(err)
	}
	c.fence(a, b)
	expectCounts(t, "just-b", map[*peer]int{a: 0, b: 1})
	expectCounts(t, "after-leave", map[*peer]int{a: 0, b: 1})
}

func testSocketsJoinLeave(t *testing.T, c *cluster) {
	a := c.connect("a")
	b := c.connect("b")
	first, last := c.servers[0], c.servers[len(c.servers)-1]
	if err := last.In(a.sock.ID()).SocketsJoin("x", "y"); err != nil {
		t.Fatal(err)
	}
	c.fence(a, b) // the join is applied in stream order before the fence
	if err := first.To("x").Emit("m", "to-x"); err != nil {
		t.Fatal(err)
	}
	c.fence(a, b)
	if err := last.In("x").SocketsLeave("x"); err != nil {
		t.Fatal(err)
	}
	c.fence(a, b)
	if err := first.To("x").Emit("m", "to-x-again"); err != nil {
		t.Fatal(err)
	}
	if err := first.To("y").Emit("m", "to-y"); err != nil {
		t.Fatal(err)
	}
	c.fence(a, b)
	expectCounts(t, "to-x", map[*peer]int{a: 1, b: 0})
	expectCounts(t, "to-x-again", map[*peer]int{a: 0, b: 0})
	expectCounts(t, "to-y", map[*peer]int{a: 1, b: 0})
}

func testFetchSockets(t *testing.T, c *cluster) {
	a := c.connect("a", "r1")
	b := c.connect("b", "r1", "r2")
	c.connect("c")
	b.mustAck(t, "setData", "bee")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	socks, err := c.servers[0].In("r1").FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(socks, func(i, j int) bool { return socks[i].ID == b.sock.ID() })
	ids := []string{}
	for _, s := range socks {
		ids = append(ids, s.ID)
	}
	if len(socks) != 2 || !slices.Contains(ids, a.sock.ID()) || !slices.Contains(ids, b.sock.ID()) {
		t.Fatalf("FetchSockets(r1) = %v, want a=%s and b=%s", ids, a.sock.ID(), b.sock.ID())
	}
	for _, s := range socks {
		if s.ID != b.sock.ID() {
			continue
		}
		want := []string{b.sock.ID(), "r1", "r2"}
		got := append([]string(nil), s.Rooms...)
		sort.Strings(got)
		sort.Strings(want)
		if !slices.Equal(got, want) {
			t.Errorf("b's rooms = %v, want %v", got, want)
		}
		if s.Data != "bee" {
			t.Errorf("b's data = %#v, want \"bee\"", s.Data)
		}
		if s.Handshake.Address == "" || s.Handshake.Headers == nil {
			t.Errorf("b's handshake lacks address or headers: %+v", s.Handshake)
		}
	}
	all, err := c.servers[len(c.servers)-1].FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 3 {
		t.Errorf("FetchSockets() found %d sockets, want 3", len(all))
	}
	// A RemoteSocket acts on its socket wherever it is.
	for _, s := range socks {
		if s.ID == a.sock.ID() {
			if err := s.Emit("m", "via-remote"); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.waitFor(t, "via-remote")
}

func testBroadcastWithAck(t *testing.T, c *cluster) {
	a := c.connect("a", "r")
	b := c.connect("b", "r")
	mute := c.connect("mute")
	mute.sock.Off("q") // never answers
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	srv := c.servers[len(c.servers)-1]

	answers, err := srv.To("r").Timeout(5*time.Second).EmitWithAck(ctx, "q")
	if err != nil {
		t.Fatalf("EmitWithAck to r: %v (answers %v)", err, answers)
	}
	if names := answerNames(t, answers); !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("answers = %v, want [a b]", names)
	}

	answers, err = srv.Timeout(300*time.Millisecond).EmitWithAck(ctx, "q")
	if !errors.Is(err, switchboard.ErrAckTimeout) {
		t.Fatalf("EmitWithAck with a mute client: err = %v, want ErrAckTimeout", err)
	}
	if names := answerNames(t, answers); !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("answers received before the timeout = %v, want [a b]", names)
	}

	answers, err = srv.To("empty-room").Timeout(time.Second).EmitWithAck(ctx, "q")
	if err != nil || len(answers) != 0 {
		t.Errorf("EmitWithAck to an empty room = %v, %v; want no answers, no error", answers, err)
	}
	_ = a
	_ = b
}

func answerNames(t *testing.T, answers []switchboard.Args) []string {
	t.Helper()
	var names []string
	for _, a := range answers {
		var n string
		if err := a.Decode(0, &n); err != nil {
			t.Fatalf("answer %v: %v", a, err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func testDisconnectSockets(t *testing.T, c *cluster) {
	a := c.connect("a", "gone")
	b := c.connect("b")
	if err := c.servers[0].In("gone").DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.discSeen:
	case <-time.After(waitLimit):
		t.Fatal("a was not disconnected")
	}
	a.discMu.Lock()
	reason := a.disc[0]
	a.discMu.Unlock()
	if reason != "io server disconnect" {
		t.Errorf("a's disconnect reason = %q, want %q", reason, "io server disconnect")
	}
	c.fence(b)
	select {
	case <-b.discSeen:
		t.Error("b was disconnected too")
	default:
	}
}

func testServerSideEmit(t *testing.T, c *cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	n, err := c.servers[0].Of("/").Adapter().ServerCount(ctx)
	if err != nil || n != len(c.servers) {
		t.Fatalf("ServerCount = %d, %v; want %d", n, err, len(c.servers))
	}
	for i, srv := range c.servers {
		srv.Of("/").OnServerSideEmit("hello", func(x int, ack switchboard.AckFunc) { ack(x + i) })
	}
	answers, err := c.servers[0].Of("/").ServerSideEmitWithAck(ctx, "hello", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != len(c.servers)-1 {
		t.Fatalf("%d answers, want one per other node (%d)", len(answers), len(c.servers)-1)
	}
}

func testRoomEvents(t *testing.T, c *cluster) {
	var mu sync.Mutex
	var events []string
	for _, srv := range c.servers {
		srv.Of("/").OnRoomEvent(func(ev switchboard.RoomEvent) {
			mu.Lock()
			events = append(events, fmt.Sprintf("%s %s %s", ev.Kind, ev.Room, ev.SocketID))
			mu.Unlock()
		})
	}
	a := c.connect("a", "r1", "r2")
	id := a.sock.ID()
	a.mustAck(t, "join", []string{"r1"}) // re-joining fires nothing
	a.mustAck(t, "leave", "r1")
	a.sock.Disconnect()
	want := []string{
		"create-room " + id + " ", "join-room " + id + " " + id,
		"create-room r1 ", "join-room r1 " + id, "create-room r2 ", "join-room r2 " + id,
		"leave-room r1 " + id, "delete-room r1 ",
		"leave-room " + id + " " + id, "delete-room " + id + " ", "leave-room r2 " + id, "delete-room r2 ",
	}
	deadline := time.Now().Add(waitLimit)
	for {
		mu.Lock()
		got := append([]string(nil), events...)
		mu.Unlock()
		if len(got) >= len(want) || time.Now().After(deadline) {
			if !slices.Equal(got, want) {
				t.Fatalf("room events:\n got %q\nwant %q", got, want)
			}
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}
