package switchboard_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
)

// recoveryServer starts a server with connection-state recovery whose
// sockets join "news" and report their disconnects.
func recoveryServer(t *testing.T, window time.Duration) (*testServer, <-chan *switchboard.Socket, <-chan string) {
	opts := &switchboard.Options{
		ConnectionStateRecovery: &switchboard.RecoveryOptions{MaxDisconnectionDuration: window},
	}
	// A polling client that vanishes between two polls is only noticed by
	// the heartbeat: keep it short.
	opts.Engine.PingInterval = 300 * time.Millisecond
	opts.Engine.PingTimeout = 300 * time.Millisecond
	ts := newTestServer(t, opts)
	conns := make(chan *switchboard.Socket, 8)
	discs := make(chan string, 8)
	ts.Use(func(s *switchboard.Socket) error {
		s.SetData("from-middleware")
		return nil
	})
	ts.OnConnection(func(s *switchboard.Socket) {
		if !s.Recovered() {
			_ = s.Join("news")
		}
		s.On("disconnect", func(reason string) { discs <- reason })
		conns <- s
	})
	return ts, conns, discs
}

func TestRecoveryRestoresMissedEvents(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts, conns, discs := recoveryServer(t, 2*time.Minute)
		c, first := d.Connect(t, ts, dialOptions{NoReconnection: true})
		s := recv(t, conns, "first connection")
		if s.Recovered() || first.Recovered {
			t.Fatal("a first connection cannot be recovered")
		}
		// One stored event gives the client an offset to come back with.
		if err := ts.To("news").Emit("m", -1); err != nil {
			t.Fatal(err)
		}
		if args := c.ExpectEvent(t, "m"); len(args) != 2 || args[0] != float64(-1) {
			t.Fatalf("first event args = %v, want [-1 <offset>]", args)
		}

		c.CloseTransport()
		if reason := recv(t, discs, "server-side disconnect"); reason != "transport close" && reason != "transport error" && reason != "ping timeout" {
			t.Fatalf("server saw %q, want a transport drop", reason)
		}
		// socket.io-client reports its own engine.close() as "forced close".
		if d := c.Expect(t, "disconnect"); d.Reason != "transport close" && d.Reason != "forced close" {
			t.Fatalf("client saw %q, want transport close", d.Reason)
		}
		for i := 0; i < 50; i++ {
			if err := ts.To("news").Emit("m", i); err != nil {
				t.Fatal(err)
			}
			if err := ts.To("other").Emit("m", 1000+i); err != nil { // not the client's room
				t.Fatal(err)
			}
		}
		_ = ts.Volatile().Emit("m", 2000) // volatile events are not kept

		c.ConnectAgain()
		again := c.Expect(t, "connect")
		if !again.Recovered || again.ID != first.ID {
			t.Fatalf("reconnect: recovered=%v id=%q, want recovered with id %q", again.Recovered, again.ID, first.ID)
		}
		s2 := recv(t, conns, "recovered connection")
		if !s2.Recovered() || s2.ID() != first.ID {
			t.Fatalf("server socket: recovered=%v id=%q", s2.Recovered(), s2.ID())
		}
		if got := fmt.Sprint(s2.Rooms()); got != fmt.Sprint([]string{first.ID, "news"}) {
			t.Errorf("recovered rooms = %s", got)
		}
		if s2.Data() != "from-middleware" {
			t.Errorf("recovered data = %v", s2.Data())
		}
		for i := 0; i < 50; i++ {
			ev := c.NextEvent(t)
			if ev.Event != "m" || len(ev.Args) != 2 || ev.Args[0] != float64(i) {
				t.Fatalf("missed event %d: got %v", i, ev)
			}
		}
		// Nothing else was missed: the next event is a fresh one.
		if err := ts.To("news").Emit("m", "live"); err != nil {
			t.Fatal(err)
		}
		if ev := c.NextEvent(t); ev.Event != "m" || ev.Args[0] != "live" {
			t.Fatalf("after the missed events got %v, want the live one", ev)
		}
	})
}

func TestRecoveryAfterWindowIsFreshSession(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts, conns, discs := recoveryServer(t, 100*time.Millisecond)
		c, first := d.Connect(t, ts, dialOptions{NoReconnection: true})
		recv(t, conns, "first connection")
		if err := ts.To("news").Emit("m", 1); err != nil {
			t.Fatal(err)
		}
		c.ExpectEvent(t, "m")
		c.CloseTransport()
		recv(t, discs, "server-side disconnect")
		c.Expect(t, "disconnect")
		time.Sleep(300 * time.Millisecond) // outlive the recovery window
		c.ConnectAgain()
		again := c.Expect(t, "connect")
		if again.Recovered || again.ID == first.ID {
			t.Fatalf("after the window: recovered=%v id=%q (first %q), want a fresh session", again.Recovered, again.ID, first.ID)
		}
		s := recv(t, conns, "fresh connection")
		if s.Recovered() {
			t.Fatal("server socket says recovered")
		}
		// The stale pid and offset stay visible to the application.
		var auth struct{ PID, Offset string }
		if err := json.Unmarshal(s.Handshake().Auth, &auth); err != nil || auth.PID == "" || auth.Offset == "" {
			t.Fatalf("auth of the fresh session = %s (%v), want the stale pid and offset", s.Handshake().Auth, err)
		}
	})
}

func TestRecoveryNotAfterClientDisconnect(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts, conns, discs := recoveryServer(t, 2*time.Minute)
		c, first := d.Connect(t, ts, dialOptions{NoReconnection: true})
		recv(t, conns, "first connection")
		if err := ts.To("news").Emit("m", 1); err != nil {
			t.Fatal(err)
		}
		c.ExpectEvent(t, "m")
		c.Disconnect()
		if reason := recv(t, discs, "server-side disconnect"); reason != "client namespace disconnect" {
			t.Fatalf("server saw %q", reason)
		}
		c.Expect(t, "disconnect")
		c.ConnectAgain()
		again := c.Expect(t, "connect")
		if again.Recovered || again.ID == first.ID {
			t.Fatalf("after a client disconnect: recovered=%v, want a fresh session", again.Recovered)
		}
	})
}
