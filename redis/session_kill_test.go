package redis_test

import (
	"bytes"
	"context"
	"slices"
	"syscall"
	"testing"
	"time"
)

// TestRecoveryNodeKilled beats redis-streams-adapter #27: a client in rooms
// with recovery on is held by node C, a separate process, which is
// SIGKILLed (no disconnect code runs, nothing is persisted then). While the
// client is away another node broadcasts to its rooms; the client comes
// back through a proxy now pointing at a surviving node and is recovered
// (same id, rooms back) with the missed broadcasts, in order, from the
// session C had kept in Redis ahead of time.
func TestRecoveryNodeKilled(t *testing.T) {
	c := sharedRedis(t)
	opts := isolated(t, c)
	prefix := "sbtest:" + runID + ":sessionkill"
	deleteKeysAtEnd(t, c, prefix)
	g := startGoNode(t, c, opts, true)
	child, urlC := startChildNode(t, childNodeConfig{Addr: redisAddr(), Adapter: *opts, Prefix: prefix, Recovery: true})
	proxy := newSwitchProxy(t, urlC)
	p := dial(t, "victim", proxy.url, "m")
	id := p.sock.ID()
	disc := make(chan string, 4)
	p.sock.On("disconnect", func(reason string) { disc <- reason })
	p.mustAck(t, "join", []string{"room", "room2"})
	p.mustAck(t, "setData", map[string]any{"user": "ann"})
	if err := g.srv.To("room").Emit("m", "live-1"); err != nil {
		t.Fatal(err)
	}
	p.waitEvent(t, "m", "live-1")
	// The session is in Redis while the socket is connected, rooms
	// included (written in the background after the join).
	deadline := time.Now().Add(waitLimit)
	for {
		keys := sessionKeys(t, c, opts)
		if len(keys) == 1 {
			st := storedSession(t, c, keys[0])
			if st.SID == id && slices.Contains(st.Rooms, "room2") {
				pttl := c.PTTL(context.Background(), keys[0]).Val()
				if pttl <= 2*time.Minute {
					t.Errorf("kept session PTTL %v, want more than the window (window + refresh)", pttl)
				}
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connected socket's session was not kept in Redis: %v", keys)
		}
		time.Sleep(10 * time.Millisecond)
	}

	_ = child.Process.Signal(syscall.SIGKILL)
	_ = child.Wait()
	killedAt := time.Now()
	select {
	case <-disc:
	case <-time.After(waitLimit):
		t.Fatal("the client did not notice node C's death")
	}
	if err := g.srv.To("room").Emit("m", "missed-1"); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.To("room2").Emit("m", "missed-2", []byte{4, 2}); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Emit("m", "missed-3"); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.To("elsewhere").Emit("m", "not-mine"); err != nil {
		t.Fatal(err)
	}
	if err := g.srv.Except("room").Emit("m", "not-mine-either"); err != nil {
		t.Fatal(err)
	}

	proxy.to(g.url)
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
		if s == "missed-2" {
			var b []byte
			if err := r.args.Decode(1, &b); err != nil || !bytes.Equal(b, []byte{4, 2}) {
				t.Errorf("missed binary = %v (%v)", b, err)
			}
		}
	}
	if want := []string{"live-1", "missed-1", "missed-2", "missed-3"}; !slices.Equal(order, want) {
		t.Errorf("received %q, want %q", order, want)
	}
	// Rooms and data came back.
	s := g.srv.Of("/").Socket(id)
	if s == nil {
		t.Fatal("the recovered socket is not on the surviving node")
	}
	if d, _ := s.Data().(map[string]any); d["user"] != "ann" {
		t.Errorf("recovered data = %#v", s.Data())
	}
	if err := g.srv.To("room2").Emit("m", "live-2"); err != nil {
		t.Fatal(err)
	}
	p.waitEvent(t, "m", "live-2")
	t.Logf("recovered on the surviving node %v after node C's SIGKILL, rooms %v", time.Since(killedAt).Round(time.Millisecond), s.Rooms())
}
