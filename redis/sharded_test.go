package redis_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard/client"
)

// nspPeer connects a websocket client to a namespace and records event
// "m" (first argument, a string).
func nspPeer(t *testing.T, url, nsp string) (*client.Socket, chan string) {
	t.Helper()
	got := make(chan string, 64)
	m := client.NewManager(url, &client.Options{Transports: []string{"websocket"}, DisableReconnection: true})
	t.Cleanup(func() { _ = m.Close() })
	s := m.Socket(nsp)
	s.On("m", func(v string) { got <- v })
	connected := make(chan struct{}, 1)
	s.On("connect", func() {
		select {
		case connected <- struct{}{}:
		default:
		}
	})
	s.Connect()
	select {
	case <-connected:
	case <-time.After(waitLimit):
		t.Fatalf("connect to %s timed out", nsp)
	}
	return s, got
}

func expect(t *testing.T, got chan string, want string) {
	t.Helper()
	select {
	case v := <-got:
		if v != want {
			t.Fatalf("got %q, want %q", v, want)
		}
	case <-time.After(waitLimit):
		t.Fatalf("%q never arrived", want)
	}
}

func expectNothing(t *testing.T, got chan string) {
	t.Helper()
	select {
	case v := <-got:
		t.Fatalf("unexpected %q", v)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestShardedNamespaces checks sharded mode's layout: each namespace's
// broadcasts go to its own stream, "<StreamName>#<nsp>", which only the
// nodes serving the namespace read (a namespace created later on a node
// included), and nothing goes to the shared stream.
func TestShardedNamespaces(t *testing.T) {
	c := sharedRedis(t)
	opts := isolated(t, c)
	opts.Sharded = true
	g1 := startGoNode(t, c, opts, false)
	g2 := startGoNode(t, c, opts, false)
	g3 := startGoNode(t, c, opts, false) // serves "/" only
	for _, g := range []*goNode{g1, g2} {
		g.srv.Of("/chat")
	}
	waitCount(t, g1, 3)
	_, chat2 := nspPeer(t, g2.url, "/chat")
	_, root3 := nspPeer(t, g3.url, "/")

	if err := g1.srv.Of("/chat").Emit("m", "chat-1"); err != nil {
		t.Fatal(err)
	}
	expect(t, chat2, "chat-1")
	if err := g1.srv.Emit("m", "root-1"); err != nil {
		t.Fatal(err)
	}
	expect(t, root3, "root-1")
	expectNothing(t, root3)

	ctx := context.Background()
	lens := map[string]int64{}
	for _, s := range []string{opts.StreamName, opts.StreamName + "#/", opts.StreamName + "#/chat"} {
		lens[s] = c.XLen(ctx, s).Val()
	}
	if lens[opts.StreamName] != 0 || lens[opts.StreamName+"#/"] != 1 || lens[opts.StreamName+"#/chat"] != 1 {
		t.Fatalf("stream lengths %v, want one entry in each namespace's stream and none in the shared one", lens)
	}

	// A namespace created later on g3 starts reading its stream then.
	g3.srv.Of("/chat")
	_, chat3 := nspPeer(t, g3.url, "/chat")
	if err := g2.srv.Of("/chat").Emit("m", "chat-2"); err != nil {
		t.Fatal(err)
	}
	expect(t, chat2, "chat-2")
	expect(t, chat3, "chat-2")
}

// TestShardedRecovery drops a socket on one node and recovers it on
// another in sharded mode: the session scan reads the namespace's stream.
func TestShardedRecovery(t *testing.T) {
	c := sharedRedis(t)
	opts := isolated(t, c)
	opts.Sharded = true
	g1 := startGoNode(t, c, opts, true)
	g2 := startGoNode(t, c, opts, true)
	g3 := startGoNode(t, c, opts, true) // broadcasts on another namespace meanwhile
	g3.srv.Of("/other")
	proxy := newSwitchProxy(t, g1.url)
	p := dial(t, "mover", proxy.url, "m")
	id := p.sock.ID()
	p.mustAck(t, "join", []string{"room"})
	if err := g1.srv.To("room").Emit("m", "live-1"); err != nil {
		t.Fatal(err)
	}
	p.waitEvent(t, "m", "live-1")

	p.dropTransport(t)
	waitSession(t, c, opts)
	for _, step := range []func() error{
		func() error { return g1.srv.To("room").Emit("m", "missed-1") },
		func() error { return g3.srv.Of("/other").Emit("m", "other-namespace") },
		func() error { return g2.srv.Emit("m", "missed-2") },
		func() error { return g3.srv.To("elsewhere").Emit("m", "not-mine") },
		func() error { return g3.srv.To("room").Emit("m", "missed-3") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	proxy.to(g2.url)
	p.sock.Connect()
	select {
	case recovered := <-p.conns:
		if !recovered || p.sock.ID() != id {
			t.Fatalf("reconnected with recovered=%v id=%s, want recovered id %s", recovered, p.sock.ID(), id)
		}
	case <-time.After(waitLimit):
		t.Fatal("no reconnection")
	}
	p.waitEvent(t, "m", "missed-3")
	var order []string
	for _, r := range p.received() {
		var s string
		_ = r.args.Decode(0, &s)
		order = append(order, s)
	}
	if want := []string{"live-1", "missed-1", "missed-2", "missed-3"}; !slices.Equal(order, want) {
		t.Errorf("received %q, want %q", order, want)
	}
	if n := c.XLen(context.Background(), opts.StreamName+"#/").Val(); n != 5 {
		t.Errorf("stream of / has %d entries, want 5 (the scan reads only these)", n)
	}
}
