package redis_test

// A Go node and a Node node (socket.io 4.8 with
// @socket.io/redis-streams-adapter, testdata/node.js) in one cluster, with
// clients on both: broadcasts both ways (JSON and binary), rooms and except,
// acknowledgements, fetchSockets, serverSideEmit, socketsJoin and
// connection-state recovery across the two implementations.

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
)

func TestNodeInterop(t *testing.T) {
	requireNodeAdapter(t)
	c := sharedRedis(t)
	opts := isolated(t, c)
	g := startGoNode(t, c, opts, true)
	n := startNodeNode(t, redisAddr(), opts, true)
	waitServerCount(t, g, n, 2)
	gp := dial(t, "gp", g.url, "m", "bin")
	np := dial(t, "np", n.url, "m", "bin")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	t.Run("ServerCount", func(t *testing.T) {
		if got, err := g.srv.Of("/").Adapter().ServerCount(ctx); err != nil || got != 2 {
			t.Errorf("Go ServerCount = %d, %v; want 2", got, err)
		}
		if got := string(n.must(map[string]any{"op": "serverCount"})); got != "2" {
			t.Errorf("Node serverCount = %s, want 2", got)
		}
	})

	t.Run("BroadcastJSON", func(t *testing.T) {
		if err := g.srv.Emit("m", "from-go", map[string]any{"n": 1.5, "list": []any{"a", nil, true}}); err != nil {
			t.Fatal(err)
		}
		args := np.waitEvent(t, "m", "from-go")
		var obj map[string]any
		if err := args.Decode(1, &obj); err != nil || obj["n"] != 1.5 || len(obj["list"].([]any)) != 3 {
			t.Errorf("Node client got %v (%v)", args, err)
		}
		gp.waitEvent(t, "m", "from-go")
		n.must(map[string]any{"op": "emit", "event": "m", "args": []any{"from-node", map[string]any{"k": []any{1, 2}}}})
		args = gp.waitEvent(t, "m", "from-node")
		if err := args.Decode(1, &obj); err != nil || len(obj["k"].([]any)) != 2 {
			t.Errorf("Go client got %v (%v)", args, err)
		}
		// With recovery on, the offset (the stream entry id) is the last
		// argument, the same on both nodes.
		last := func(a switchboard.Args) string {
			var s string
			_ = a.Decode(a.Len()-1, &s)
			return s
		}
		if o1, o2 := last(args), last(np.waitEvent(t, "m", "from-node")); o1 == "" || o1 != o2 || !offsetLike(o1) {
			t.Errorf("offsets: Go client %q, Node client %q; want one stream id", o1, o2)
		}
	})

	t.Run("BroadcastBinary", func(t *testing.T) {
		payload := []byte{0, 1, 2, 250, 255}
		if err := g.srv.Emit("bin", "go-bin", payload, map[string]any{"nested": []byte("xyz")}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*peer{np, gp} {
			args := p.waitEvent(t, "bin", "go-bin")
			var b []byte
			var nested any
			if err := args.Decode(1, &b); err != nil || !bytes.Equal(b, payload) {
				t.Errorf("%s: binary arg = %v (%v)", p.name, b, err)
			}
			if err := args.Decode(2, &nested); err != nil || !bytes.Equal(asBytes(nested.(map[string]any)["nested"]), []byte("xyz")) {
				t.Errorf("%s: nested binary = %v (%v)", p.name, nested, err)
			}
		}
		n.must(map[string]any{"op": "emit", "event": "bin", "args": []any{"node-bin", bin(payload), map[string]any{"nested": bin([]byte("abc"))}}})
		for _, p := range []*peer{gp, np} {
			args := p.waitEvent(t, "bin", "node-bin")
			var b []byte
			var nested any
			if err := args.Decode(1, &b); err != nil || !bytes.Equal(b, payload) {
				t.Errorf("%s: binary arg = %v (%v)", p.name, b, err)
			}
			if err := args.Decode(2, &nested); err != nil || !bytes.Equal(asBytes(nested.(map[string]any)["nested"]), []byte("abc")) {
				t.Errorf("%s: nested binary = %v (%v)", p.name, nested, err)
			}
		}
	})

	t.Run("RoomsAndExcept", func(t *testing.T) {
		gp.mustAck(t, "join", []string{"r1"})
		np.mustAck(t, "join", []string{"r1", "r2"})
		n.must(map[string]any{"op": "emit", "rooms": []string{"r1"}, "except": []string{"r2"}, "event": "m", "args": []any{"r1-not-r2"}})
		if err := g.srv.To("r2").Emit("m", "to-r2"); err != nil {
			t.Fatal(err)
		}
		// A client's socket.to(room) excludes the sender, across nodes.
		if err := np.sock.Emit("toRoom", "r1", "m", "from-np"); err != nil {
			t.Fatal(err)
		}
		gp.waitEvent(t, "m", "from-np")
		fence(t, g, n, gp, np)
		for _, c := range []struct {
			p    *peer
			msg  string
			want int
		}{{gp, "r1-not-r2", 1}, {np, "r1-not-r2", 0}, {gp, "to-r2", 0}, {np, "to-r2", 1}, {np, "from-np", 0}} {
			if got := c.p.count("m", c.msg); got != c.want {
				t.Errorf("%s received %q %d times, want %d", c.p.name, c.msg, got, c.want)
			}
		}
	})

	t.Run("Acks", func(t *testing.T) {
		answers, err := g.srv.Timeout(5*time.Second).EmitWithAck(ctx, "q")
		if err != nil {
			t.Fatalf("Go EmitWithAck: %v (%v)", err, answers)
		}
		var names []string
		for _, a := range answers {
			var s string
			_ = a.Decode(0, &s)
			names = append(names, s)
		}
		sort.Strings(names)
		if !slices.Equal(names, []string{"gp", "np"}) {
			t.Errorf("Go EmitWithAck answers = %v, want [gp np]", names)
		}
		var got []string
		if err := json.Unmarshal(n.must(map[string]any{"op": "emitWithAck", "event": "q", "timeout": 5000}), &got); err != nil {
			t.Fatal(err)
		}
		sort.Strings(got)
		if !slices.Equal(got, []string{"gp", "np"}) {
			t.Errorf("Node emitWithAck answers = %v, want [gp np]", got)
		}
	})

	t.Run("FetchSockets", func(t *testing.T) {
		np.mustAck(t, "setData", map[string]any{"who": "np"})
		gp.mustAck(t, "setData", map[string]any{"who": "gp"})
		socks, err := g.srv.FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var remote *switchboard.RemoteSocket
		for _, s := range socks {
			if s.ID == np.sock.ID() {
				remote = s
			}
		}
		if len(socks) != 2 || remote == nil {
			t.Fatalf("Go FetchSockets found %d sockets, Node's %s missing", len(socks), np.sock.ID())
		}
		if d, _ := remote.Data.(map[string]any); d["who"] != "np" {
			t.Errorf("Node socket data = %#v", remote.Data)
		}
		if !slices.Contains(remote.Rooms, "r2") || !slices.Contains(remote.Rooms, np.sock.ID()) {
			t.Errorf("Node socket rooms = %v", remote.Rooms)
		}
		if remote.Handshake.Address == "" || remote.Handshake.Headers.Get("Connection") == "" || remote.Handshake.Time.IsZero() {
			t.Errorf("Node socket handshake = %+v", remote.Handshake)
		}
		var fromNode []struct {
			ID         string         `json:"id"`
			Rooms      []string       `json:"rooms"`
			Data       map[string]any `json:"data"`
			Address    string         `json:"address"`
			HasHeaders bool           `json:"hasHeaders"`
		}
		if err := json.Unmarshal(n.must(map[string]any{"op": "fetchSockets", "rooms": []string{"r1"}}), &fromNode); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range fromNode {
			if s.ID == gp.sock.ID() {
				found = true
				if s.Data["who"] != "gp" || !slices.Contains(s.Rooms, "r1") || s.Address == "" || !s.HasHeaders {
					t.Errorf("Go socket seen from Node: %+v", s)
				}
			}
		}
		if len(fromNode) != 2 || !found {
			t.Errorf("Node fetchSockets(r1) = %+v, want gp and np", fromNode)
		}
		// A remote socket acts through the cluster.
		if err := remote.Emit("m", "via-remote"); err != nil {
			t.Fatal(err)
		}
		np.waitEvent(t, "m", "via-remote")
	})

	t.Run("ServerSideEmit", func(t *testing.T) {
		g.srv.Of("/").OnServerSideEmit("hello", func(x int, ack switchboard.AckFunc) { ack(x + 1) })
		answers, err := g.srv.Of("/").ServerSideEmitWithAck(ctx, "hello", 1)
		if err != nil || len(answers) != 1 {
			t.Fatalf("Go ServerSideEmitWithAck = %v, %v", answers, err)
		}
		var x int
		if err := answers[0].Decode(0, &x); err != nil || x != 101 {
			t.Errorf("Node answered %v (%v), want 101", answers[0], err)
		}
		if got := string(n.must(map[string]any{"op": "serverSideEmit", "event": "hello", "args": []any{5}, "ack": true})); got != "[6]" {
			t.Errorf("Node serverSideEmitWithAck = %s, want [6]", got)
		}
		// Binary travels in server-side events and their answers.
		answers, err = g.srv.Of("/").ServerSideEmitWithAck(ctx, "echoBack", []byte{7, 8})
		var b []byte
		if err != nil || len(answers) != 1 || answers[0].Decode(0, &b) != nil || !bytes.Equal(b, []byte{7, 8}) {
			t.Errorf("binary echo = %v, %v", answers, err)
		}
		if err := g.srv.ServerSideEmit(ctx, "note", "plain", []byte{9}); err != nil {
			t.Fatal(err)
		}
		obs := n.waitObs(t, "the note event", func(o map[string]any) bool { return o["kind"] == "serverSideEmit" })
		args, _ := obs["args"].([]any)
		if len(args) != 2 || args[0] != "plain" {
			t.Fatalf("Node got note%v", args)
		}
		if b, ok := decodeBin(args[1]); !ok || !bytes.Equal(b, []byte{9}) {
			t.Errorf("Node got binary %v", args[1])
		}
		got := make(chan []byte, 1)
		g.srv.Of("/").OnServerSideEmit("fromNode", func(s string, b []byte) { got <- b })
		n.must(map[string]any{"op": "serverSideEmit", "event": "fromNode", "args": []any{"x", bin([]byte{3})}})
		select {
		case b := <-got:
			if !bytes.Equal(b, []byte{3}) {
				t.Errorf("Go handler got %v", b)
			}
		case <-time.After(waitLimit):
			t.Fatal("Go handler never called")
		}
	})

	t.Run("SocketsJoinLeave", func(t *testing.T) {
		if err := g.srv.In(np.sock.ID()).SocketsJoin("joined-by-go"); err != nil {
			t.Fatal(err)
		}
		n.must(map[string]any{"op": "socketsJoin", "rooms": []string{gp.sock.ID()}, "join": []string{"joined-by-node"}})
		fence(t, g, n, gp, np)
		if err := g.srv.To("joined-by-node").Emit("m", "to-joined-by-node"); err != nil {
			t.Fatal(err)
		}
		n.must(map[string]any{"op": "emit", "rooms": []string{"joined-by-go"}, "event": "m", "args": []any{"to-joined-by-go"}})
		gp.waitEvent(t, "m", "to-joined-by-node")
		np.waitEvent(t, "m", "to-joined-by-go")
		n.must(map[string]any{"op": "socketsLeave", "rooms": []string{"joined-by-node"}, "leave": []string{"joined-by-node"}})
		fence(t, g, n, gp, np)
		if err := g.srv.To("joined-by-node").Emit("m", "after-leave"); err != nil {
			t.Fatal(err)
		}
		fence(t, g, n, gp, np)
		if got := gp.count("m", "after-leave"); got != 0 {
			t.Errorf("gp received after-leave %d times after socketsLeave", got)
		}
	})

	t.Run("DisconnectSockets", func(t *testing.T) {
		extra := dial(t, "extra", n.url, "m")
		disc := make(chan string, 1)
		extra.sock.On("disconnect", func(reason string) { disc <- reason })
		if err := g.srv.In(extra.sock.ID()).DisconnectSockets(false); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-disc:
			if r != "io server disconnect" {
				t.Errorf("reason %q", r)
			}
		case <-time.After(waitLimit):
			t.Fatal("the Node node's client was not disconnected")
		}
	})
}

// fence broadcasts a marker from both nodes and waits until every peer has
// both: everything broadcast before has then arrived.
func fence(t *testing.T, g *goNode, n *nodeNode, peers ...*peer) {
	t.Helper()
	marker := time.Now().Format(time.RFC3339Nano)
	if err := g.srv.Emit("m", "fence-go-"+marker); err != nil {
		t.Fatal(err)
	}
	n.must(map[string]any{"op": "emit", "event": "m", "args": []any{"fence-node-" + marker}})
	for _, p := range peers {
		p.waitEvent(t, "m", "fence-go-"+marker)
		p.waitEvent(t, "m", "fence-node-"+marker)
	}
}

func waitServerCount(t *testing.T, g *goNode, n *nodeNode, want int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		got, err := g.srv.Of("/").Adapter().ServerCount(ctx)
		cancel()
		nodeGot := string(n.must(map[string]any{"op": "serverCount"}))
		if err == nil && got == want && nodeGot == strconv.Itoa(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("server count: Go %d (%v), Node %s; want %d", got, err, nodeGot, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func offsetLike(s string) bool {
	dash := false
	for i, c := range s {
		switch {
		case c == '-' && i > 0 && !dash:
			dash = true
		case c < '0' || c > '9':
			return false
		}
	}
	return dash && s[len(s)-1] != '-'
}

// TestNodeInteropRecovery drops a client on one implementation and
// resumes it on the other, through a proxy that moves it, with events
// broadcast by both nodes while it was away.
func TestNodeInteropRecovery(t *testing.T) {
	requireNodeAdapter(t)
	c := sharedRedis(t)
	for _, dir := range []string{"GoToNode", "NodeToGo", "GoToGo"} {
		t.Run(dir, func(t *testing.T) {
			opts := isolated(t, c)
			g := startGoNode(t, c, opts, true)
			var n *nodeNode
			var from, to string
			switch dir {
			case "GoToGo":
				g2 := startGoNode(t, c, opts, true)
				n = startNodeNode(t, redisAddr(), opts, true) // a third node, broadcasting
				from, to = g.url, g2.url
				waitServerCount(t, g, n, 3)
			default:
				n = startNodeNode(t, redisAddr(), opts, true)
				waitServerCount(t, g, n, 2)
				from, to = g.url, n.url
				if dir == "NodeToGo" {
					from, to = to, from
				}
			}
			proxy := newSwitchProxy(t, from)
			p := dial(t, "mover", proxy.url, "m")
			id := p.sock.ID()
			p.mustAck(t, "join", []string{"room"})
			if err := g.srv.To("room").Emit("m", "live-1"); err != nil {
				t.Fatal(err)
			}
			p.waitEvent(t, "m", "live-1")

			p.dropTransport(t)
			waitSession(t, c, opts)
			if err := g.srv.To("room").Emit("m", "missed-1"); err != nil {
				t.Fatal(err)
			}
			n.must(map[string]any{"op": "emit", "rooms": []string{"room"}, "event": "m", "args": []any{"missed-2", bin([]byte{42})}})
			if err := g.srv.Emit("m", "missed-3"); err != nil {
				t.Fatal(err)
			}
			n.must(map[string]any{"op": "emit", "rooms": []string{"elsewhere"}, "event": "m", "args": []any{"not-mine"}})
			if err := g.srv.Except("room").Emit("m", "not-mine-either"); err != nil {
				t.Fatal(err)
			}
			if err := g.srv.Volatile().Emit("m", "volatile"); err != nil {
				t.Fatal(err)
			}

			proxy.to(to)
			p.sock.Connect()
			select {
			case recovered := <-p.conns:
				if !recovered || p.sock.ID() != id {
					t.Fatalf("reconnected with recovered=%v id=%s, want recovered id %s", recovered, p.sock.ID(), id)
				}
			case <-time.After(waitLimit):
				t.Fatal("no reconnection")
			}
			if dir == "GoToNode" {
				n.waitObs(t, "the recovered connection", func(o map[string]any) bool {
					return o["kind"] == "connection" && o["id"] == id && o["recovered"] == true
				})
			}
			// Volatile broadcasts are replayed too, as upstream does.
			want := []string{"live-1", "missed-1", "missed-2", "missed-3", "volatile"}
			p.waitEvent(t, "m", "volatile")
			var order []string
			for _, r := range p.received() {
				var s string
				_ = r.args.Decode(0, &s)
				order = append(order, s)
			}
			if !slices.Equal(order, want) {
				t.Errorf("received %q, want %q", order, want)
			}
			for _, r := range p.received() {
				var s string
				_ = r.args.Decode(0, &s)
				if s == "missed-2" {
					var b []byte
					if err := r.args.Decode(1, &b); err != nil || !bytes.Equal(b, []byte{42}) {
						t.Errorf("missed binary = %v (%v)", b, err)
					}
				}
			}
			// The rooms came back: the recovered socket is still in "room".
			if err := g.srv.To("room").Emit("m", "live-2"); err != nil {
				t.Fatal(err)
			}
			p.waitEvent(t, "m", "live-2")
			// The restore consumed the session; a Go node keeps the
			// session of the recovered socket ahead of time again.
			// The keeper writes in the background: wait for it (bounded).
			wantKept := 0
			if to != n.url {
				wantKept = 1
			}
			deadline := time.Now().Add(waitLimit)
			for {
				keys := sessionKeys(t, c, opts)
				ok := len(keys) == wantKept && (wantKept == 0 || storedSession(t, c, keys[0]).SID == id)
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Errorf("sessions after the restore: %v, want %d kept for %s", keys, wantKept, id)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func asBytes(v any) []byte {
	b, _ := v.([]byte)
	return b
}
