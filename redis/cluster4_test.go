package redis_test

// Three Go nodes and one Node node (socket.io 4.8 with
// @socket.io/redis-streams-adapter) in one cluster on the shared Redis,
// with a client on each: broadcasts from every node to every client (JSON
// and binary), rooms and except, broadcasts with acknowledgements,
// fetchSockets, serverSideEmit with acknowledgements and socketsJoin
// across nodes, driven from a Go node and from the Node node.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
)

func TestFourNodeCluster(t *testing.T) {
	requireNodeAdapter(t)
	c := sharedRedis(t)
	opts := isolated(t, c)
	gs := []*goNode{startGoNode(t, c, opts, true), startGoNode(t, c, opts, true), startGoNode(t, c, opts, true)}
	n := startNodeNode(t, redisAddr(), opts, true)
	for _, g := range gs {
		waitServerCount(t, g, n, 4)
	}
	peers := []*peer{
		dial(t, "p0", gs[0].url, "m", "bin"),
		dial(t, "p1", gs[1].url, "m", "bin"),
		dial(t, "p2", gs[2].url, "m", "bin"),
		dial(t, "pn", n.url, "m", "bin"),
	}
	p0, p1, p2, pn := peers[0], peers[1], peers[2], peers[3]
	ctx, cancel := context.WithTimeout(context.Background(), 2*waitLimit)
	defer cancel()
	// fence broadcasts a marker from every node and waits until every
	// client has them all: what was broadcast before has arrived.
	fence := func(t *testing.T) {
		t.Helper()
		marker := time.Now().Format(time.RFC3339Nano)
		for i, g := range gs {
			if err := g.srv.Emit("m", fmt.Sprintf("fence-g%d-%s", i, marker)); err != nil {
				t.Fatal(err)
			}
		}
		n.must(map[string]any{"op": "emit", "event": "m", "args": []any{"fence-node-" + marker}})
		for _, p := range peers {
			for i := range gs {
				p.waitEvent(t, "m", fmt.Sprintf("fence-g%d-%s", i, marker))
			}
			p.waitEvent(t, "m", "fence-node-"+marker)
		}
	}
	names := func(answers []switchboard.Args) []string {
		var out []string
		for _, a := range answers {
			var s string
			_ = a.Decode(0, &s)
			out = append(out, s)
		}
		sort.Strings(out)
		return out
	}
	all := []string{"p0", "p1", "p2", "pn"}

	t.Run("EveryNodeToEveryClient", func(t *testing.T) {
		payload := []byte{0, 1, 254, 255}
		for i, g := range gs {
			if err := g.srv.Emit("m", fmt.Sprintf("json-g%d", i), map[string]any{"i": i}); err != nil {
				t.Fatal(err)
			}
			if err := g.srv.Emit("bin", fmt.Sprintf("bin-g%d", i), payload); err != nil {
				t.Fatal(err)
			}
		}
		n.must(map[string]any{"op": "emit", "event": "m", "args": []any{"json-node", map[string]any{"i": 9}}})
		n.must(map[string]any{"op": "emit", "event": "bin", "args": []any{"bin-node", bin(payload)}})
		for _, p := range peers {
			for _, from := range []string{"g0", "g1", "g2", "node"} {
				p.waitEvent(t, "m", "json-"+from)
				args := p.waitEvent(t, "bin", "bin-"+from)
				var b []byte
				if err := args.Decode(1, &b); err != nil || !bytes.Equal(b, payload) {
					t.Errorf("%s: binary from %s = %v (%v)", p.name, from, b, err)
				}
			}
		}
	})

	t.Run("RoomsAndExcept", func(t *testing.T) {
		p0.mustAck(t, "join", []string{"r1"})
		p1.mustAck(t, "join", []string{"r1", "r2"})
		p2.mustAck(t, "join", []string{"r2"})
		pn.mustAck(t, "join", []string{"r1"})
		if err := gs[2].srv.To("r1").Except("r2").Emit("m", "r1-not-r2-from-go"); err != nil {
			t.Fatal(err)
		}
		n.must(map[string]any{"op": "emit", "rooms": []string{"r2"}, "event": "m", "args": []any{"r2-from-node"}})
		n.must(map[string]any{"op": "emit", "rooms": []string{"r1"}, "except": []string{"r2"}, "event": "m", "args": []any{"r1-not-r2-from-node"}})
		if err := gs[0].srv.Except("r1").Emit("m", "not-r1-from-go"); err != nil {
			t.Fatal(err)
		}
		// A client's socket.to(room) leaves the sender out, across nodes.
		p1.mustAck(t, "toRoom", "r1", "m", "from-p1")
		fence(t)
		want := map[string][]string{
			"r1-not-r2-from-go":   {"p0", "pn"},
			"r1-not-r2-from-node": {"p0", "pn"},
			"r2-from-node":        {"p1", "p2"},
			"not-r1-from-go":      {"p2"},
			"from-p1":             {"p0", "pn"},
		}
		for msg, who := range want {
			for _, p := range peers {
				w := 0
				if slices.Contains(who, p.name) {
					w = 1
				}
				if got := p.count("m", msg); got != w {
					t.Errorf("%s received %q %d times, want %d", p.name, msg, got, w)
				}
			}
		}
	})

	t.Run("BroadcastAcks", func(t *testing.T) {
		answers, err := gs[1].srv.Timeout(5*time.Second).EmitWithAck(ctx, "q")
		if err != nil {
			t.Fatalf("Go EmitWithAck: %v (%v)", err, answers)
		}
		if got := names(answers); !slices.Equal(got, all) {
			t.Errorf("Go EmitWithAck answers = %v, want %v", got, all)
		}
		var got []string
		if err := json.Unmarshal(n.must(map[string]any{"op": "emitWithAck", "event": "q", "timeout": 5000}), &got); err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if !slices.Equal(got, all) {
			t.Errorf("Node emitWithAck answers = %v, want %v", got, all)
		}
		answers, err = gs[2].srv.To("r2").Timeout(5*time.Second).EmitWithAck(ctx, "q")
		if got := names(answers); err != nil || !slices.Equal(got, []string{"p1", "p2"}) {
			t.Errorf("Go EmitWithAck to r2 = %v, %v; want [p1 p2]", got, err)
		}
	})

	t.Run("FetchSockets", func(t *testing.T) {
		for _, p := range peers {
			p.mustAck(t, "setData", map[string]any{"who": p.name})
		}
		socks, err := gs[0].srv.FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var who []string
		for _, s := range socks {
			d, _ := s.Data.(map[string]any)
			w, _ := d["who"].(string)
			who = append(who, w)
		}
		sort.Strings(who)
		if !slices.Equal(who, all) {
			t.Errorf("Go fetchSockets found %v, want %v", who, all)
		}
		socks, err = gs[1].srv.In("r1").FetchSockets(ctx)
		if err != nil || len(socks) != 3 {
			t.Errorf("Go fetchSockets(r1) = %d sockets, %v; want 3", len(socks), err)
		}
		var fromNode []struct {
			ID    string         `json:"id"`
			Rooms []string       `json:"rooms"`
			Data  map[string]any `json:"data"`
		}
		if err := json.Unmarshal(n.must(map[string]any{"op": "fetchSockets", "rooms": []string{"r2"}}), &fromNode); err != nil {
			t.Fatal(err)
		}
		who = nil
		for _, s := range fromNode {
			w, _ := s.Data["who"].(string)
			who = append(who, w)
			if !slices.Contains(s.Rooms, "r2") {
				t.Errorf("Node fetchSockets(r2): %+v not in r2", s)
			}
		}
		sort.Strings(who)
		if !slices.Equal(who, []string{"p1", "p2"}) {
			t.Errorf("Node fetchSockets(r2) found %v, want [p1 p2]", who)
		}
	})

	t.Run("ServerSideEmit", func(t *testing.T) {
		for i, g := range gs {
			g.srv.Of("/").OnServerSideEmit("hello", func(x int, ack switchboard.AckFunc) { ack(x + 10*(i+1)) })
		}
		answers, err := gs[0].srv.Of("/").ServerSideEmitWithAck(ctx, "hello", 1)
		if err != nil {
			t.Fatalf("Go ServerSideEmitWithAck: %v", err)
		}
		var got []int
		for _, a := range answers {
			var x int
			_ = a.Decode(0, &x)
			got = append(got, x)
		}
		sort.Ints(got)
		if !slices.Equal(got, []int{21, 31, 101}) {
			t.Errorf("answers to g0's hello(1) = %v, want [21 31 101] (g1, g2, Node)", got)
		}
		got = nil
		if err := json.Unmarshal(n.must(map[string]any{"op": "serverSideEmit", "event": "hello", "args": []any{5}, "ack": true}), &got); err != nil {
			t.Fatal(err)
		}
		sort.Ints(got)
		if !slices.Equal(got, []int{15, 25, 35}) {
			t.Errorf("answers to Node's hello(5) = %v, want [15 25 35] (g0, g1, g2)", got)
		}
	})

	t.Run("SocketsJoin", func(t *testing.T) {
		if err := gs[1].srv.In(pn.sock.ID(), p2.sock.ID()).SocketsJoin("j"); err != nil {
			t.Fatal(err)
		}
		n.must(map[string]any{"op": "socketsJoin", "rooms": []string{p0.sock.ID()}, "join": []string{"j"}})
		fence(t)
		if err := gs[2].srv.To("j").Emit("m", "to-j-from-go"); err != nil {
			t.Fatal(err)
		}
		n.must(map[string]any{"op": "emit", "rooms": []string{"j"}, "event": "m", "args": []any{"to-j-from-node"}})
		n.must(map[string]any{"op": "socketsLeave", "rooms": []string{"j"}, "leave": []string{"j"}})
		fence(t)
		if err := gs[0].srv.To("j").Emit("m", "to-j-after-leave"); err != nil {
			t.Fatal(err)
		}
		fence(t)
		for _, p := range peers {
			w := 1
			if p == p1 {
				w = 0
			}
			for _, msg := range []string{"to-j-from-go", "to-j-from-node"} {
				if got := p.count("m", msg); got != w {
					t.Errorf("%s received %q %d times, want %d", p.name, msg, got, w)
				}
			}
			if got := p.count("m", "to-j-after-leave"); got != 0 {
				t.Errorf("%s received to-j-after-leave after socketsLeave", p.name)
			}
		}
	})
}
