package switchboard_test

// Interop scenarios: the official socket.io-client (through
// testdata/interop/driver.js) and package client against the Go server,
// over polling, websocket and polling upgraded to websocket. Each scenario
// asserts what the client's user and the server's handlers see.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/engineio"
)

// shortTimeout is an acknowledgement timeout that is meant to expire: the
// other side never answers.
const shortTimeout = 200 * time.Millisecond

// finalTransport is the transport a client of that mode ends up on.
func finalTransport(mode string) string {
	if mode == "polling" {
		return "polling"
	}
	return "websocket"
}

// connectSocket connects a client and returns it with its server-side socket.
func connectSocket(t *testing.T, d dialer, ts *testServer, conns <-chan *switchboard.Socket, opts dialOptions) (testClient, *switchboard.Socket) {
	t.Helper()
	c, conn := d.Connect(t, ts, opts)
	s := recv(t, conns, "the server-side socket")
	if s.ID() != conn.ID {
		t.Fatalf("server socket id %q, client sees %q", s.ID(), conn.ID)
	}
	return c, s
}

// disconnects returns a channel receiving the server-side disconnect reason
// of s.
func disconnects(s *switchboard.Socket) <-chan string {
	ch := make(chan string, 4)
	s.On("disconnect", func(reason string) { ch <- reason })
	return ch
}

func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got  %#v\n want %#v", what, got, want)
	}
}

// expectEvents asserts the names of the next events a client receives, in
// order. Ending with a marker event that everyone gets proves that no other
// event came before it.
func expectEvents(t *testing.T, who string, c testClient, names ...string) {
	t.Helper()
	for i, name := range names {
		ob := c.NextEvent(t)
		if ob.Event != name {
			t.Fatalf("%s: event %d is %q %v, want %q (sequence %q)", who, i, ob.Event, ob.Args, name, names)
		}
	}
}

func TestInteropConnectAndRoundTrip(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("hello", func(name string) { s.Emit("hello back", "hi "+name, s.Transport()) })
		})
		c, s := connectSocket(t, d, ts, conns, dialOptions{})
		c.Emit("hello", "ann")
		assertEqual(t, "hello back", c.ExpectEvent(t, "hello back"), []any{"hi ann", finalTransport(d.mode)})
		if got := s.Transport(); got != finalTransport(d.mode) {
			t.Errorf("server-side transport %q, want %q", got, finalTransport(d.mode))
		}
		if !s.Connected() {
			t.Error("server-side socket not connected")
		}
	})
}

func TestInteropNamespaces(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		rootConns := sockets(ts.Of("/"))
		customConns := sockets(ts.Of("/custom"))
		for _, name := range []string{"/", "/custom"} {
			ns := ts.Of(name)
			ns.OnConnection(func(s *switchboard.Socket) {
				s.On("where", func(ack switchboard.AckFunc) { ack(s.Namespace().Name()) })
			})
		}
		root, _ := connectSocket(t, d, ts, rootConns, dialOptions{})
		custom, cs := connectSocket(t, d, ts, customConns, dialOptions{Namespace: "/custom"})
		if got := cs.Namespace().Name(); got != "/custom" {
			t.Errorf("custom socket namespace %q", got)
		}
		for _, tc := range []struct {
			c    testClient
			want string
		}{{root, "/"}, {custom, "/custom"}} {
			got, err := tc.c.EmitWithAck(0, "where")
			if err != nil {
				t.Fatalf("where on %s: %v", tc.want, err)
			}
			assertEqual(t, "namespace answer", got, []any{tc.want})
		}
		// The client of /custom never joined "/": one socket there.
		if n := ts.Of("/").SocketCount(); n != 1 {
			t.Errorf("%d sockets on /, want 1", n)
		}
		if n := len(rootConns); n != 0 {
			t.Errorf("%d extra connections on /", n)
		}
	})
}

func TestInteropUnknownNamespace(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		c := d.Dial(t, ts, dialOptions{Namespace: "/random"})
		ce := c.Expect(t, "connect_error")
		if ce.Message != "Invalid namespace" || ce.Data != nil {
			t.Errorf("connect_error %q %#v, want \"Invalid namespace\" without data", ce.Message, ce.Data)
		}
	})
}

func TestInteropAuth(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		auths := make(chan json.RawMessage, 4)
		ts.Use(func(s *switchboard.Socket) error {
			auths <- s.Handshake().Auth
			return nil
		})
		d.Connect(t, ts, dialOptions{Auth: map[string]any{"token": "abc", "n": 1}})
		var got any
		raw := recv(t, auths, "the auth payload")
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatalf("auth %q: %v", raw, err)
		}
		assertEqual(t, "Handshake().Auth", got, map[string]any{"token": "abc", "n": 1.0})

		d.Connect(t, ts, dialOptions{})
		if raw := recv(t, auths, "the auth payload"); raw != nil {
			t.Errorf("Handshake().Auth without auth = %q, want nil", raw)
		}
	})
}

func TestInteropMiddlewareConnectError(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		handled := make(chan string, 4)
		ts.Of("/guarded").Use(func(s *switchboard.Socket) error {
			return &switchboard.ConnectError{Message: "not authorized", Data: map[string]any{"code": 42, "why": "no token"}}
		})
		ts.Of("/plain").Use(func(s *switchboard.Socket) error { return errors.New("go away") })
		for _, name := range []string{"/guarded", "/plain"} {
			ts.Of(name).OnConnection(func(s *switchboard.Socket) { handled <- s.Namespace().Name() })
		}

		ce := d.Dial(t, ts, dialOptions{Namespace: "/guarded"}).Expect(t, "connect_error")
		if ce.Message != "not authorized" {
			t.Errorf("connect_error message %q, want \"not authorized\"", ce.Message)
		}
		assertEqual(t, "connect_error data", ce.Data, map[string]any{"code": 42.0, "why": "no token"})

		ce = d.Dial(t, ts, dialOptions{Namespace: "/plain"}).Expect(t, "connect_error")
		if ce.Message != "go away" || ce.Data != nil {
			t.Errorf("connect_error %q %#v, want \"go away\" without data", ce.Message, ce.Data)
		}
		if len(handled) != 0 {
			t.Errorf("connection handler ran for a refused socket (%s)", <-handled)
		}
	})
}

// mixedArgs exercises JSON values and binary ones, at top level and nested.
func mixedArgs() []any {
	return []any{
		"text", 42.0, true, nil,
		map[string]any{"a": []any{1.0, "b"}},
		[]byte{0, 1, 2, 255},
		map[string]any{"nested": map[string]any{"bin": []byte("hi")}, "list": []any{[]byte{7}, "x"}},
	}
}

func TestInteropEmitJSONAndBinary(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		got := make(chan []any, 1)
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("payload", func(args ...any) { got <- args })
		})
		c, s := connectSocket(t, d, ts, conns, dialOptions{})

		c.Emit("payload", mixedArgs()...)
		assertEqual(t, "server received", recv(t, got, "the client's payload"), mixedArgs())

		if err := s.Emit("payload", mixedArgs()...); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "client received", c.ExpectEvent(t, "payload"), mixedArgs())
	})
}

func TestInteropAcks(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("sum", func(a, b float64, ack switchboard.AckFunc) { ack(a+b, []byte{1, 2, 3}) })
			s.On("ignore", func(ack switchboard.AckFunc) {})
			s.On("ping", func(ack switchboard.AckFunc) { ack("pong") })
		})
		c, s := connectSocket(t, d, ts, conns, dialOptions{Replies: map[string]any{
			"question": "echo",
			"fixed":    []any{"yes", 1.0},
		}})
		ctx := context.Background()

		// Client → server.
		got, err := c.EmitWithAck(0, "sum", 1, 2)
		if err != nil {
			t.Fatalf("sum: %v", err)
		}
		assertEqual(t, "sum ack", got, []any{3.0, []byte{1, 2, 3}})

		// Server → client, answered with the same args (binary included) and
		// with fixed args.
		answer, err := s.Timeout(waitBound).EmitWithAck(ctx, "question", "x", []byte{9}, map[string]any{"deep": []byte{8}})
		if err != nil {
			t.Fatalf("question: %v", err)
		}
		vals, err := answer.Values()
		if err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "echoed answer", vals, []any{"x", []byte{9}, map[string]any{"deep": []byte{8}}})
		assertEqual(t, "client saw question", c.ExpectEvent(t, "question"), []any{"x", []byte{9}, map[string]any{"deep": []byte{8}}})
		answer, err = s.Timeout(waitBound).EmitWithAck(ctx, "fixed")
		if err != nil {
			t.Fatalf("fixed: %v", err)
		}
		if vals, _ = answer.Values(); !reflect.DeepEqual(vals, []any{"yes", 1.0}) {
			t.Errorf("fixed answer %v", answer)
		}

		// Client-side timeout: the server never answers.
		if _, err := c.EmitWithAck(shortTimeout, "ignore"); err == nil || err.Error() != "operation has timed out" {
			t.Errorf("client ack timeout: err = %v, want \"operation has timed out\"", err)
		}
		// Server-side timeout: the client never answers.
		if _, err := s.Timeout(shortTimeout).EmitWithAck(ctx, "unanswered", 1); !errors.Is(err, switchboard.ErrAckTimeout) {
			t.Errorf("server ack timeout: err = %v, want ErrAckTimeout", err)
		}
		c.ExpectEvent(t, "unanswered")

		// The connection still works.
		if got, err := c.EmitWithAck(0, "ping"); err != nil || !reflect.DeepEqual(got, []any{"pong"}) {
			t.Errorf("ping after timeouts: %v %v", got, err)
		}
	})
}

func TestInteropAckTimeoutOption(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("ignore", func(ack switchboard.AckFunc) {})
			s.On("ping", func(ack switchboard.AckFunc) { ack("pong") })
		})
		c, _ := d.Connect(t, ts, dialOptions{AckTimeout: shortTimeout})
		if _, err := c.EmitWithAck(0, "ignore"); err == nil || err.Error() != "operation has timed out" {
			t.Errorf("ackTimeout option: err = %v, want \"operation has timed out\"", err)
		}
		if got, err := c.EmitWithAck(0, "ping"); err != nil || !reflect.DeepEqual(got, []any{"pong"}) {
			t.Errorf("ping with ackTimeout: %v %v", got, err)
		}
	})
}

func TestInteropVolatile(t *testing.T) {
	const (
		tries  = 5
		settle = 20 * time.Millisecond
	)
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		var (
			mu   sync.Mutex
			seen []float64 // values of the volatile events the server got
		)
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("v", func(i float64) {
				mu.Lock()
				seen = append(seen, i)
				mu.Unlock()
			})
			s.On("sync", func(ack switchboard.AckFunc) { ack() })
		})
		c, s := connectSocket(t, d, ts, conns, dialOptions{})
		// A volatile event is dropped when the transport is busy, which a
		// polling client often is, and an idle-looking websocket sometimes
		// too (a writer not yet back from its last write). It is never
		// duplicated or reordered, and on an idle websocket it gets
		// through: require one of several, each sent after a pause that
		// lets the writers go idle (not a speed assertion: a slow machine
		// only drops more of them).
		websocket := finalTransport(d.mode) == "websocket"
		check := func(who string, got []float64) {
			t.Helper()
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Errorf("%s got volatile events %v: duplicated or reordered", who, got)
				}
			}
			if websocket && len(got) == 0 {
				t.Errorf("%s got none of %d volatile events over websocket", who, tries)
			}
		}

		for i := range tries {
			time.Sleep(settle)
			c.EmitVolatile("v", i)
			if _, err := c.EmitWithAck(0, "sync"); err != nil {
				t.Fatal(err)
			}
		}
		mu.Lock()
		check("server", append([]float64(nil), seen...))
		mu.Unlock()

		var got []float64
		for i := range tries {
			time.Sleep(settle)
			mustEmit(t, s.Volatile().Emit("sv", i))
			mustEmit(t, s.Emit("after", i))
			for {
				ob := c.NextEvent(t)
				if ob.Event == "after" {
					assertEqual(t, "after", ob.Args, []any{float64(i)})
					break
				}
				if ob.Event != "sv" || len(ob.Args) != 1 {
					t.Fatalf("unexpected event %v", ob)
				}
				got = append(got, ob.Args[0].(float64))
			}
		}
		check("client", got)
	})
}

func TestInteropServerDisconnect(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		for _, closeConn := range []bool{false, true} {
			t.Run(fmt.Sprintf("close=%v", closeConn), func(t *testing.T) {
				ts := newTestServer(t, nil)
				conns := sockets(ts.Of("/"))
				c, s := connectSocket(t, d, ts, conns, dialOptions{})
				reasons := disconnects(s)
				s.Disconnect(closeConn)
				if ob := c.Expect(t, "disconnect"); ob.Reason != "io server disconnect" {
					t.Errorf("client disconnect reason %q, want \"io server disconnect\"", ob.Reason)
				}
				if r := recv(t, reasons, "the server disconnect reason"); r != "server namespace disconnect" {
					t.Errorf("server disconnect reason %q, want \"server namespace disconnect\"", r)
				}
				if s.Connected() {
					t.Error("server socket still connected")
				}
				// The client does not come back by itself; it can reconnect.
				c.ConnectAgain()
				again := c.Expect(t, "connect")
				s2 := recv(t, conns, "the new server socket")
				if again.ID == s.ID() || s2.ID() != again.ID {
					t.Errorf("reconnected with id %q (server %q), old id %q", again.ID, s2.ID(), s.ID())
				}
			})
		}
	})
}

func TestInteropClientDisconnect(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		c, s := connectSocket(t, d, ts, conns, dialOptions{})
		reasons := disconnects(s)
		c.Disconnect()
		if ob := c.Expect(t, "disconnect"); ob.Reason != "io client disconnect" {
			t.Errorf("client disconnect reason %q, want \"io client disconnect\"", ob.Reason)
		}
		if r := recv(t, reasons, "the server disconnect reason"); r != "client namespace disconnect" {
			t.Errorf("server disconnect reason %q, want \"client namespace disconnect\"", r)
		}
	})
}

func TestInteropTransportDrop(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		// A short heartbeat notices a polling client that vanished between
		// two requests.
		ts := newTestServer(t, &switchboard.Options{Engine: engineio.Options{
			PingInterval: 500 * time.Millisecond,
			PingTimeout:  time.Second,
		}})
		conns := sockets(ts.Of("/"))
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("ping", func(ack switchboard.AckFunc) { ack("pong") })
		})
		c, s := connectSocket(t, d, ts, conns, dialOptions{})
		reasons := disconnects(s)
		c.CloseTransport()
		c.Expect(t, "disconnect")
		r := recv(t, reasons, "the server disconnect reason")
		// A websocket drop is "transport close". A polling client either
		// posts a close packet ("transport close", the node client), or
		// vanishes (the Go client): socket.io reports its aborted long-poll
		// as "transport error", or, if no request was in flight, the
		// heartbeat ends the session with "ping timeout".
		if r != "transport close" && (d.mode != "polling" || (r != "transport error" && r != "ping timeout")) {
			t.Errorf("server disconnect reason %q, want \"transport close\"", r)
		}
		// The client reconnects by itself, as a new socket (no recovery).
		again := c.Expect(t, "connect")
		s2 := recv(t, conns, "the reconnected server socket")
		if again.ID != s2.ID() || again.ID == s.ID() || again.Recovered {
			t.Errorf("reconnected as %q recovered=%v (server %q), old id %q", again.ID, again.Recovered, s2.ID(), s.ID())
		}
		if got, err := c.EmitWithAck(0, "ping"); err != nil || !reflect.DeepEqual(got, []any{"pong"}) {
			t.Errorf("ping after reconnection: %v %v", got, err)
		}
	})
}

func TestInteropHandlerPanic(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("boom", func() { panic("handler exploded") })
			s.On("ping", func(ack switchboard.AckFunc) { ack("pong") })
		})
		victim, vs := connectSocket(t, d, ts, conns, dialOptions{NoReconnection: true})
		other, otherSock := connectSocket(t, d, ts, conns, dialOptions{})
		reasons := disconnects(vs)
		otherReasons := disconnects(otherSock)

		victim.Emit("boom")
		victim.Expect(t, "disconnect")
		recv(t, reasons, "the panicking socket's disconnect")
		if vs.Connected() {
			t.Error("the panicking socket is still connected")
		}
		if got, err := other.EmitWithAck(0, "ping"); err != nil || !reflect.DeepEqual(got, []any{"pong"}) {
			t.Errorf("other client after the panic: %v %v", got, err)
		}
		if !otherSock.Connected() || len(otherReasons) != 0 {
			t.Error("the other client was disconnected")
		}
	})
}

func TestInteropOrder(t *testing.T) {
	const n = 1000
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		ts.OnConnection(func(s *switchboard.Socket) {
			var got []int // touched only by this socket's handlers, which run one at a time
			s.On("n", func(i int) { got = append(got, i) })
			s.On("count", func(ack switchboard.AckFunc) { ack(got) })
		})
		c, s := connectSocket(t, d, ts, conns, dialOptions{})

		want := make([]any, n)
		for i := range n {
			c.Emit("n", i)
			want[i] = float64(i)
		}
		got, err := c.EmitWithAck(0, "count")
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("server received %v, want 0..%d in order", got, n-1)
		}

		for i := range n {
			if err := s.Emit("m", i); err != nil {
				t.Fatal(err)
			}
		}
		for i := range n {
			args := c.ExpectEvent(t, "m")
			if len(args) != 1 || args[0] != float64(i) {
				t.Fatalf("event %d carries %v", i, args)
			}
		}
	})
}

func TestInteropHandshake(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		_, s := connectSocket(t, d, ts, conns, dialOptions{
			Query:  map[string]string{"room": "lobby", "token": "t1"},
			Header: map[string]string{"X-Interop": "yes"},
		})
		h := s.Handshake()
		firstTransport := "polling"
		if d.mode == "websocket" {
			firstTransport = "websocket"
		}
		for k, want := range map[string]string{"room": "lobby", "token": "t1", "EIO": "4", "transport": firstTransport} {
			if got := h.Query.Get(k); got != want {
				t.Errorf("Handshake().Query[%q] = %q, want %q", k, got, want)
			}
		}
		if got := h.Headers.Get("X-Interop"); got != "yes" {
			t.Errorf("Handshake().Headers X-Interop = %q", got)
		}
		if h.Address != "127.0.0.1" {
			t.Errorf("Handshake().Address = %q, want 127.0.0.1", h.Address)
		}
		if !strings.HasPrefix(h.URL, "/socket.io/?") || !strings.Contains(h.URL, "room=lobby") {
			t.Errorf("Handshake().URL = %q", h.URL)
		}
		if h.Secure {
			t.Error("Handshake().Secure over plain HTTP")
		}
		if h.Time.IsZero() || time.Since(h.Time) < 0 {
			t.Errorf("Handshake().Time = %v", h.Time)
		}
	})
}

func TestInteropSocketData(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		ts.Use(func(s *switchboard.Socket) error {
			var auth struct{ User string }
			if err := json.Unmarshal(s.Handshake().Auth, &auth); err != nil {
				return err
			}
			s.SetData(map[string]any{"user": auth.User, "level": 3})
			return nil
		})
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("whoami", func(ack switchboard.AckFunc) { ack(s.Data()) })
		})
		c, _ := d.Connect(t, ts, dialOptions{Auth: map[string]any{"user": "ann"}})
		got, err := c.EmitWithAck(0, "whoami")
		if err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "socket data", got, []any{map[string]any{"user": "ann", "level": 3.0}})
	})
}

func TestInteropServerClose(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		chat := ts.Of("/chat")
		chatConns := sockets(chat)
		a, as := connectSocket(t, d, ts, conns, dialOptions{NoReconnection: true})
		b, bs := connectSocket(t, d, ts, chatConns, dialOptions{Namespace: "/chat", NoReconnection: true})
		ar, br := disconnects(as), disconnects(bs)

		ctx, cancel := context.WithTimeout(context.Background(), waitBound)
		defer cancel()
		if err := ts.Close(ctx); err != nil {
			t.Fatalf("Close: %v", err)
		}
		for _, c := range []testClient{a, b} {
			// The server's close packet ends the session: "transport close".
			// A polling client caught between two long-polls finds the
			// server gone instead: "transport error", as with socket.io.
			ob := c.Expect(t, "disconnect")
			if ob.Reason != "transport close" && (d.mode != "polling" || ob.Reason != "transport error") {
				t.Errorf("client disconnect reason %q, want \"transport close\"", ob.Reason)
			}
		}
		for _, ch := range []<-chan string{ar, br} {
			if r := recv(t, ch, "the server disconnect reason"); r != "server shutting down" {
				t.Errorf("server disconnect reason %q, want \"server shutting down\"", r)
			}
		}
	})
}

// ---- rooms ----

// roomClients connects n clients to "/" and returns them with their
// server-side sockets, in the same order.
func roomClients(t *testing.T, d dialer, ts *testServer, conns <-chan *switchboard.Socket, n int, opts func(i int) dialOptions) ([]testClient, []*switchboard.Socket) {
	t.Helper()
	cs := make([]testClient, n)
	ss := make([]*switchboard.Socket, n)
	for i := range n {
		var o dialOptions
		if opts != nil {
			o = opts(i)
		}
		cs[i], ss[i] = connectSocket(t, d, ts, conns, o)
	}
	return cs, ss
}

func join(t *testing.T, s *switchboard.Socket, rooms ...string) {
	t.Helper()
	if err := s.Join(rooms...); err != nil {
		t.Fatalf("Join(%q): %v", rooms, err)
	}
}

func mustEmit(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("emit: %v", err)
	}
}

func TestRoomBroadcastSelection(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		cs, ss := roomClients(t, d, ts, conns, 4, nil)
		a, b, c, e := cs[0], cs[1], cs[2], cs[3]
		join(t, ss[0], "r1", "r2")
		join(t, ss[1], "r1")
		join(t, ss[2], "r3")

		// Union: a socket in both rooms gets one copy.
		mustEmit(t, ts.To("r1", "r2").Emit("union", 1))
		mustEmit(t, ts.To("r1").Except("r2").Emit("except", 2))
		mustEmit(t, ts.Except("r1").Emit("not r1", 3))
		mustEmit(t, ts.To("r3", "nobody").Emit("r3", 4))
		mustEmit(t, ts.Emit("marker"))
		expectEvents(t, "a (r1, r2)", a, "union", "marker")
		expectEvents(t, "b (r1)", b, "union", "except", "marker")
		expectEvents(t, "c (r3)", c, "not r1", "r3", "marker")
		expectEvents(t, "e (no room)", e, "not r1", "marker")
	})
}

func TestRoomSenderExcluded(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("shout", func(msg string, ack switchboard.AckFunc) {
				_ = s.To("r").Emit("shout", msg)
				ack()
			})
			s.On("announce", func(msg string, ack switchboard.AckFunc) {
				_ = s.Broadcast().Emit("announce", msg)
				ack()
			})
			s.On("whisper", func(to, msg string, ack switchboard.AckFunc) {
				_ = s.To(to).Emit("whisper", msg)
				ack()
			})
		})
		cs, ss := roomClients(t, d, ts, conns, 3, nil)
		a, b, c := cs[0], cs[1], cs[2]
		join(t, ss[0], "r")
		join(t, ss[1], "r")

		for _, call := range [][]any{{"shout", "hi r"}, {"announce", "hi all"}, {"whisper", ss[2].ID(), "psst"}} {
			if _, err := a.EmitWithAck(0, call[0].(string), call[1:]...); err != nil {
				t.Fatalf("%v: %v", call, err)
			}
		}
		// Own room: To(id) reaches exactly that socket.
		mustEmit(t, ts.To(ss[1].ID()).Emit("private"))
		mustEmit(t, ts.Emit("marker"))
		expectEvents(t, "a (sender)", a, "marker")
		expectEvents(t, "b (in r)", b, "shout", "announce", "private", "marker")
		expectEvents(t, "c (not in r)", c, "announce", "whisper", "marker")
	})
}

func TestRoomLeaveAndDisconnectCleanup(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		cs, ss := roomClients(t, d, ts, conns, 2, nil)
		a, b := cs[0], cs[1]
		sa, sb := ss[0], ss[1]
		join(t, sa, "r1", "r2", "r3")
		join(t, sb, "r1")
		assertEqual(t, "a's rooms", sa.Rooms(), []string{sa.ID(), "r1", "r2", "r3"})

		sa.Leave("r3")
		assertEqual(t, "a's rooms after Leave", sa.Rooms(), []string{sa.ID(), "r1", "r2"})
		mustEmit(t, ts.To("r3").Emit("r3"))
		mustEmit(t, ts.Emit("marker"))
		expectEvents(t, "a (left r3)", a, "marker")
		expectEvents(t, "b", b, "marker")

		roomsAtDisconnecting := make(chan []string, 1)
		sa.On("disconnecting", func(string) { roomsAtDisconnecting <- sa.Rooms() })
		reasons := disconnects(sa)
		a.Disconnect()
		recv(t, reasons, "a's disconnect")
		assertEqual(t, "rooms while disconnecting", recv(t, roomsAtDisconnecting, "disconnecting"), []string{sa.ID(), "r1", "r2"})
		if r := sa.Rooms(); len(r) != 0 {
			t.Errorf("rooms after disconnect: %q", r)
		}
		ad := ts.Of("/").Adapter()
		if r := ad.Rooms(sa.ID()); len(r) != 0 {
			t.Errorf("adapter rooms of the gone socket: %q", r)
		}
		assertEqual(t, "r1 members", ad.Sockets([]string{"r1"}), []string{sb.ID()})
		if m := ad.Sockets([]string{"r2", sa.ID()}); len(m) != 0 {
			t.Errorf("members of r2 and a's own room: %q", m)
		}
		if la, ok := ad.(*switchboard.LocalAdapter); ok {
			names := la.RoomNames()
			sort.Strings(names)
			want := []string{sb.ID(), "r1"}
			sort.Strings(want)
			assertEqual(t, "rooms left", names, want)
		}
	})
}

func TestRoomEvents(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		var (
			mu     sync.Mutex
			events []string
		)
		ts.Of("/").OnRoomEvent(func(ev switchboard.RoomEvent) {
			mu.Lock()
			events = append(events, strings.TrimSpace(fmt.Sprintf("%s %s %s", ev.Kind, ev.Room, ev.SocketID)))
			mu.Unlock()
		})
		conns := sockets(ts.Of("/"))
		cs, ss := roomClients(t, d, ts, conns, 2, nil)
		a, sa, sb := cs[0], ss[0], ss[1]
		join(t, sa, "x", "y")
		join(t, sb, "x")
		reasons := disconnects(sa)
		a.Disconnect()
		recv(t, reasons, "a's disconnect")

		ida, idb := sa.ID(), sb.ID()
		want := []string{
			"create-room " + ida, "join-room " + ida + " " + ida,
			"create-room " + idb, "join-room " + idb + " " + idb,
			"create-room x", "join-room x " + ida, "create-room y", "join-room y " + ida,
			"join-room x " + idb,
			// a leaves its rooms in join order; x still holds b.
			"leave-room " + ida + " " + ida, "delete-room " + ida,
			"leave-room x " + ida,
			"leave-room y " + ida, "delete-room y",
		}
		mu.Lock()
		got := append([]string(nil), events...)
		mu.Unlock()
		assertEqual(t, "room events", got, want)
	})
}

func TestRoomBroadcastWithAck(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		cs, ss := roomClients(t, d, ts, conns, 3, func(i int) dialOptions {
			if i == 2 {
				return dialOptions{} // never answers
			}
			return dialOptions{Replies: map[string]any{"poll": []any{fmt.Sprintf("answer %d", i)}}}
		})
		join(t, ss[0], "answering")
		join(t, ss[1], "answering")
		ctx := context.Background()

		answers, err := ts.To("answering").Timeout(waitBound).EmitWithAck(ctx, "poll", "q1")
		if err != nil {
			t.Fatalf("EmitWithAck to the answering room: %v", err)
		}
		assertEqual(t, "answers", answerStrings(t, answers), []string{"answer 0", "answer 1"})

		answers, err = ts.Of("/").Timeout(time.Second).EmitWithAck(ctx, "poll", "q2")
		if !errors.Is(err, switchboard.ErrAckTimeout) {
			t.Errorf("EmitWithAck with a silent client: err = %v, want ErrAckTimeout", err)
		}
		assertEqual(t, "answers received before the timeout", answerStrings(t, answers), []string{"answer 0", "answer 1"})
		for i, c := range cs {
			want := []string{"q1", "q2"}
			if i == 2 {
				want = want[1:]
			}
			for _, q := range want {
				assertEqual(t, fmt.Sprintf("client %d poll", i), c.ExpectEvent(t, "poll"), []any{q})
			}
		}

		// No socket selected: done at once, no answer.
		answers, err = ts.To("empty").Timeout(waitBound).EmitWithAck(ctx, "poll")
		if err != nil || len(answers) != 0 {
			t.Errorf("EmitWithAck to an empty room: %v %v", answers, err)
		}
	})
}

func answerStrings(t *testing.T, answers []switchboard.Args) []string {
	t.Helper()
	out := make([]string, 0, len(answers))
	for _, a := range answers {
		var s string
		if err := a.Decode(0, &s); err != nil {
			t.Errorf("answer %v: %v", a, err)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestRoomFetchSockets(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		cs, ss := roomClients(t, d, ts, conns, 2, func(i int) dialOptions {
			return dialOptions{Query: map[string]string{"who": fmt.Sprint(i)}}
		})
		sa, sb := ss[0], ss[1]
		join(t, sa, "r1")
		sa.SetData(map[string]any{"name": "a"})
		ctx := context.Background()

		all, err := ts.Of("/").FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]string, 0, len(all))
		for _, r := range all {
			ids = append(ids, r.ID)
		}
		sort.Strings(ids)
		want := []string{sa.ID(), sb.ID()}
		sort.Strings(want)
		assertEqual(t, "fetched ids", ids, want)

		inR1, err := ts.In("r1").FetchSockets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(inR1) != 1 {
			t.Fatalf("FetchSockets in r1: %d sockets, want 1", len(inR1))
		}
		r := inR1[0]
		if r.ID != sa.ID() {
			t.Errorf("fetched %q, want a %q", r.ID, sa.ID())
		}
		assertEqual(t, "fetched rooms", r.Rooms, []string{sa.ID(), "r1"})
		assertEqual(t, "fetched data", r.Data, map[string]any{"name": "a"})
		if r.Handshake.Query.Get("who") != "0" || r.Handshake.Address != "127.0.0.1" {
			t.Errorf("fetched handshake: query %v, address %q", r.Handshake.Query, r.Handshake.Address)
		}

		// A fetched socket acts on the real one.
		mustEmit(t, r.Emit("remote hello", "hi"))
		assertEqual(t, "remote emit", cs[0].ExpectEvent(t, "remote hello"), []any{"hi"})
		if err := r.Join("r9"); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "rooms after remote Join", sa.Rooms(), []string{sa.ID(), "r1", "r9"})
	})
}

func TestRoomSocketsJoinLeave(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		cs, ss := roomClients(t, d, ts, conns, 2, nil)
		a, b := cs[0], cs[1]
		sa, sb := ss[0], ss[1]
		join(t, sa, "r1")

		if err := ts.In("r1").SocketsJoin("r2"); err != nil {
			t.Fatal(err)
		}
		if err := ts.Of("/").SocketsJoin("all"); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "a's rooms", sa.Rooms(), []string{sa.ID(), "r1", "r2", "all"})
		assertEqual(t, "b's rooms", sb.Rooms(), []string{sb.ID(), "all"})
		if err := ts.In("r1").SocketsLeave("all"); err != nil {
			t.Fatal(err)
		}
		assertEqual(t, "a's rooms after SocketsLeave", sa.Rooms(), []string{sa.ID(), "r1", "r2"})

		mustEmit(t, ts.To("r2").Emit("r2"))
		mustEmit(t, ts.To("all").Emit("all"))
		mustEmit(t, ts.Emit("marker"))
		expectEvents(t, "a", a, "r2", "marker")
		expectEvents(t, "b", b, "all", "marker")
	})
}

func TestRoomDisconnectSockets(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("ping", func(ack switchboard.AckFunc) { ack("pong") })
		})
		cs, ss := roomClients(t, d, ts, conns, 3, nil)
		join(t, ss[0], "kick")
		reasons := make([]<-chan string, len(ss))
		for i, s := range ss {
			reasons[i] = disconnects(s)
		}

		if err := ts.In("kick").DisconnectSockets(false); err != nil {
			t.Fatal(err)
		}
		if ob := cs[0].Expect(t, "disconnect"); ob.Reason != "io server disconnect" {
			t.Errorf("kicked client reason %q, want \"io server disconnect\"", ob.Reason)
		}
		if r := recv(t, reasons[0], "the kicked socket's disconnect"); r != "server namespace disconnect" {
			t.Errorf("server reason %q, want \"server namespace disconnect\"", r)
		}
		for i := 1; i < 3; i++ {
			if got, err := cs[i].EmitWithAck(0, "ping"); err != nil || !reflect.DeepEqual(got, []any{"pong"}) {
				t.Errorf("client %d after DisconnectSockets: %v %v", i, got, err)
			}
		}

		if err := ts.Except(ss[1].ID()).DisconnectSockets(true); err != nil {
			t.Fatal(err)
		}
		if ob := cs[2].Expect(t, "disconnect"); ob.Reason != "io server disconnect" {
			t.Errorf("client 2 reason %q, want \"io server disconnect\"", ob.Reason)
		}
		if r := recv(t, reasons[2], "client 2's disconnect"); r != "server namespace disconnect" {
			t.Errorf("server reason %q, want \"server namespace disconnect\"", r)
		}
		if got, err := cs[1].EmitWithAck(0, "ping"); err != nil || !reflect.DeepEqual(got, []any{"pong"}) {
			t.Errorf("client 1 after DisconnectSockets(true): %v %v", got, err)
		}
		if n := ts.Of("/").SocketCount(); n != 1 {
			t.Errorf("%d sockets left, want 1", n)
		}
	})
}

// TestInteropServerDropsTransport: the server closes the Engine.IO
// connection (socket.conn.close() in socket.io); the client sees a transport
// close and reconnects by itself.
func TestInteropServerDropsTransport(t *testing.T) {
	forEachClient(t, func(t *testing.T, d dialer) {
		ts := newTestServer(t, nil)
		conns := sockets(ts.Of("/"))
		ts.OnConnection(func(s *switchboard.Socket) {
			s.On("ping", func(ack switchboard.AckFunc) { ack("pong") })
		})
		c, s := connectSocket(t, d, ts, conns, dialOptions{})
		reasons := disconnects(s)
		s.Conn().Close("forced close")
		if r := recv(t, reasons, "the server disconnect reason"); r != "forced close" {
			t.Errorf("server disconnect reason %q, want \"forced close\"", r)
		}
		if got := c.Expect(t, "disconnect"); got.Reason != "transport close" {
			t.Errorf("client disconnect reason %q, want \"transport close\"", got.Reason)
		}
		again := c.Expect(t, "connect")
		s2 := recv(t, conns, "the reconnected server socket")
		if again.ID != s2.ID() || again.ID == s.ID() {
			t.Errorf("reconnected as %q (server %q), old id %q", again.ID, s2.ID(), s.ID())
		}
		if got, err := c.EmitWithAck(0, "ping"); err != nil || !reflect.DeepEqual(got, []any{"pong"}) {
			t.Errorf("ping after reconnection: %v %v", got, err)
		}
	})
}
