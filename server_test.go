package switchboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/client"
)

// rawWS is a websocket speaking Engine.IO by hand, for inputs no real
// client would send.
type rawWS struct {
	t    *testing.T
	conn *websocket.Conn
}

func dialRaw(t *testing.T, ts *testServer) *rawWS {
	t.Helper()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/socket.io/?EIO=4&transport=websocket"
	conn, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &rawWS{t: t, conn: conn}
	if open := r.read(); !strings.HasPrefix(open, "0{") {
		t.Fatalf("first frame %q, want the open packet", open)
	}
	return r
}

func (r *rawWS) send(frames ...string) {
	r.t.Helper()
	for _, f := range frames {
		if err := r.conn.WriteMessage(websocket.TextMessage, []byte(f)); err != nil {
			r.t.Fatal(err)
		}
	}
}

func (r *rawWS) sendBinary(b []byte) {
	r.t.Helper()
	if err := r.conn.WriteMessage(websocket.BinaryMessage, b); err != nil {
		r.t.Fatal(err)
	}
}

// read returns the next text frame that is not a ping.
func (r *rawWS) read() string {
	r.t.Helper()
	for {
		_ = r.conn.SetReadDeadline(time.Now().Add(waitBound))
		_, b, err := r.conn.ReadMessage()
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		if string(b) != "2" {
			return string(b)
		}
	}
}

// expectClosed reads until the server closes the connection.
func (r *rawWS) expectClosed(what string) {
	r.t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(waitBound))
	for {
		if _, _, err := r.conn.ReadMessage(); err != nil {
			var nerr interface{ Timeout() bool }
			if errors.As(err, &nerr) && nerr.Timeout() {
				r.t.Fatalf("%s: the server kept the connection open", what)
			}
			return
		}
	}
}

// echoWorks checks that an ordinary client still gets answers.
func echoWorks(t *testing.T, ts *testServer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	s, err := client.Dial(ctx, ts.URL+"/", &client.Options{Transports: []string{"websocket"}})
	if err != nil {
		t.Fatalf("another client cannot connect: %v", err)
	}
	defer s.Manager().Close()
	res, err := s.EmitWithAck(ctx, "echo", "ok?")
	var v string
	if err != nil || res.Decode(0, &v) != nil || v != "ok?" {
		t.Fatalf("another client's echo: %v %v", res, err)
	}
}

func echoServer(t *testing.T, opts *switchboard.Options) (*testServer, <-chan string) {
	ts := newTestServer(t, opts)
	reached := make(chan string, 16)
	ts.OnConnection(func(s *switchboard.Socket) {
		s.On("echo", func(v string, ack switchboard.AckFunc) { ack(v) })
		s.On("count", func(a switchboard.Args, ack switchboard.AckFunc) { ack(len(a.Attachments)) })
		s.OnAny(func(event string, _ []json.RawMessage) {
			if event != "echo" && event != "count" {
				reached <- event
			}
		})
		for _, name := range []string{"error", "connect", "newListener"} {
			name := name
			s.On(name, func() { reached <- "handler:" + name })
		}
	})
	return ts, reached
}

// TestBadSocketIOInput sends the socket.io-layer cases of bad-inputs.md on
// a raw websocket: each closes only that connection.
func TestBadSocketIOInput(t *testing.T) {
	cases := []struct {
		name   string
		frames []string
		binary [][]byte
	}{
		{"placeholder num splice (CVE-2022-2421)", []string{`451-["hello",{"_placeholder":true,"num":"splice"}]`}, [][]byte{{1}}},
		{"placeholder out of range", []string{`451-["hello",{"_placeholder":true,"num":1}]`}, [][]byte{{1}}},
		{"text while attachments expected", []string{`451-["hello",{"_placeholder":true,"num":0}]`, `42["x"]`}, nil},
		{"binary without header", nil, [][]byte{{1, 2, 3}}},
		{"object event (CVE-2023-32695)", []string{`42[{"toString":"foo"}]`}, nil},
		{"boolean event name", []string{`42[true,"foo"]`}, nil},
		{"null event name", []string{`42[null,"bar"]`}, nil},
		{"event payload object", []string{`42{}`}, nil},
		{"empty event", []string{`42[]`}, nil},
		{"too many attachments (CVE-2026-33151)", []string{`4511-["x"]`}, nil},
		{"malformed count", []string{`45abc-["x"]`}, nil},
		{"fractional count", []string{`451.5-["x"]`}, nil},
		{"huge count", []string{`45` + strings.Repeat("9", 100000) + `-["x"]`}, nil},
		{"huge ack id", []string{`42` + strings.Repeat("9", 100000) + `["x"]`}, nil},
		{"unknown type", []string{`4abc`}, nil},
		{"type 9", []string{`499`}, nil},
		{"garbage after type", []string{`42abc["x"]`}, nil},
		{"event on a namespace never joined", []string{`42/other,["x"]`}, nil},
		{"connect_error from a client", []string{`44{"message":"x"}`}, nil},
		{"second connect", []string{`40`}, nil},
	}
	ts, reached := echoServer(t, nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := dialRaw(t, ts)
			r.send("40")
			if reply := r.read(); !strings.HasPrefix(reply, `40{"sid"`) {
				t.Fatalf("CONNECT reply %q", reply)
			}
			r.send(tc.frames...)
			for _, b := range tc.binary {
				r.sendBinary(b)
			}
			r.expectClosed(tc.name)
			echoWorks(t, ts)
		})
	}
	select {
	case ev := <-reached:
		t.Errorf("a bad packet reached the application as %q", ev)
	default:
	}
}

// TestReservedEventsFromClients: names socket.io reserves never reach
// handlers, and the connection stays usable (CVE-2024-38355).
func TestReservedEventsFromClients(t *testing.T) {
	ts, reached := echoServer(t, nil)
	r := dialRaw(t, ts)
	r.send("40")
	r.read()
	r.send(`42["error","boom"]`, `42["connect"]`, `42["newListener","x"]`, `42["disconnect","x"]`, `421["echo","still"]`)
	if ack := r.read(); ack != `431["still"]` {
		t.Fatalf("echo after reserved events: %q", ack)
	}
	select {
	case ev := <-reached:
		t.Errorf("reserved event reached the application: %q", ev)
	default:
	}
}

func TestUnknownNamespaceExactError(t *testing.T) {
	ts, _ := echoServer(t, nil)
	r := dialRaw(t, ts)
	r.send("40/random,")
	if got := r.read(); got != `44/random,{"message":"Invalid namespace"}` {
		t.Fatalf("got %q", got)
	}
	// The connection stays for the namespaces that exist.
	r.send("40")
	if got := r.read(); !strings.HasPrefix(got, `40{"sid"`) {
		t.Fatalf("then CONNECT / got %q", got)
	}
}

func TestConnectTimeout(t *testing.T) {
	ts, _ := echoServer(t, &switchboard.Options{ConnectTimeout: 200 * time.Millisecond})
	r := dialRaw(t, ts)
	r.expectClosed("no CONNECT within ConnectTimeout")
	// A client that connects in time is not affected.
	echoWorks(t, ts)
}

func TestMaxAttachmentsSetting(t *testing.T) {
	ts, _ := echoServer(t, &switchboard.Options{MaxAttachments: 2})
	ok := dialRaw(t, ts)
	ok.send("40")
	ok.read()
	ok.send(`452-1["count",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)
	ok.sendBinary([]byte{1})
	ok.sendBinary([]byte{2})
	if got := ok.read(); got != `431[2]` {
		t.Fatalf("two attachments with MaxAttachments 2: %q, want the ack 431[2]", got)
	}
	over := dialRaw(t, ts)
	over.send("40")
	over.read()
	over.send(`453-["x",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1},{"_placeholder":true,"num":2}]`)
	over.expectClosed("three attachments with MaxAttachments 2")
}

func TestMaxRoomsPerSocket(t *testing.T) {
	ts := newTestServer(t, &switchboard.Options{MaxRoomsPerSocket: 3})
	errs := make(chan error, 4)
	ts.OnConnection(func(s *switchboard.Socket) {
		errs <- s.Join("a", "b") // with its own room: 3
		errs <- s.Join("a")      // already in: still 3
		errs <- s.Join("c")      // 4: refused
		errs <- ts.In(s.ID()).SocketsJoin("d")
	})
	forOneGoClient(t, ts, "/")
	for i, want := range []bool{true, true, false, false} {
		err := recv(t, errs, "join result")
		if (err == nil) != want {
			t.Fatalf("join %d: %v", i, err)
		}
		if err != nil && !errors.Is(err, switchboard.ErrTooManyRooms) {
			t.Fatalf("join %d: %v, want ErrTooManyRooms", i, err)
		}
	}
}

func TestDynamicNamespaces(t *testing.T) {
	ts := newTestServer(t, nil)
	parent := ts.OfRegexp(regexp.MustCompile(`^/team-\d+$`))
	var mu sync.Mutex
	var order []string
	parent.Use(func(s *switchboard.Socket) error {
		mu.Lock()
		order = append(order, "mw "+s.Namespace().Name())
		mu.Unlock()
		if strings.HasSuffix(s.Namespace().Name(), "-0") {
			return &switchboard.ConnectError{Message: "team 0 is closed", Data: map[string]int{"code": 7}}
		}
		return nil
	})
	conns := make(chan *switchboard.Socket, 4)
	parent.OnConnection(func(s *switchboard.Socket) { conns <- s })

	// A name that matches creates a child namespace.
	c1 := dialGo(t, ts.URL+"/team-1", "websocket", dialOptions{})
	c1.Expect(t, "connect")
	s1 := recv(t, conns, "team-1 connection")
	if s1.Namespace().Name() != "/team-1" || ts.Of("/team-1") != s1.Namespace() {
		t.Fatalf("child namespace %q", s1.Namespace().Name())
	}
	c2 := dialGo(t, ts.URL+"/team-2", "websocket", dialOptions{})
	c2.Expect(t, "connect")
	recv(t, conns, "team-2 connection")

	// The parent's middleware refuses with data.
	c0 := dialGo(t, ts.URL+"/team-0", "websocket", dialOptions{NoReconnection: true})
	if e := c0.Expect(t, "connect_error"); e.Message != "team 0 is closed" {
		t.Fatalf("team-0: %v", e)
	}
	// A name that does not match is unknown.
	cx := dialGo(t, ts.URL+"/team-x", "websocket", dialOptions{NoReconnection: true})
	if e := cx.Expect(t, "connect_error"); e.Message != "Invalid namespace" {
		t.Fatalf("team-x: %v", e)
	}
	// A broadcast on the parent reaches every child.
	if err := parent.Emit("hello", "all teams"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []testClient{c1, c2} {
		if args := c.ExpectEvent(t, "hello"); args[0] != "all teams" {
			t.Fatalf("got %v", args)
		}
	}
	// OfFunc decides on the name and the auth payload.
	byAuth := ts.OfFunc(func(name string, auth json.RawMessage) bool {
		return strings.HasPrefix(name, "/vip") && strings.Contains(string(auth), "gold")
	})
	byAuth.OnConnection(func(s *switchboard.Socket) { conns <- s })
	vip := dialGo(t, ts.URL+"/vip-room", "websocket", dialOptions{Auth: map[string]string{"level": "gold"}})
	vip.Expect(t, "connect")
	recv(t, conns, "vip connection")
}

// TestRecoveredSocketRoomEvents: a recovered socket rejoins its rooms
// before the connection handler runs, firing the lifecycle events again.
func TestRecoveredSocketRoomEvents(t *testing.T) {
	opts := &switchboard.Options{ConnectionStateRecovery: &switchboard.RecoveryOptions{}}
	opts.Engine.PingInterval = 300 * time.Millisecond
	opts.Engine.PingTimeout = 300 * time.Millisecond
	ts := newTestServer(t, opts)
	var mu sync.Mutex
	var events []string
	ts.Of("/").OnRoomEvent(func(ev switchboard.RoomEvent) {
		mu.Lock()
		events = append(events, string(ev.Kind)+" "+ev.Room)
		mu.Unlock()
	})
	conns := make(chan []string, 4)
	ts.OnConnection(func(s *switchboard.Socket) {
		if !s.Recovered() {
			_ = s.Join("r")
		}
		mu.Lock()
		conns <- append([]string(nil), events...)
		events = nil
		mu.Unlock()
	})
	c := dialGo(t, ts.URL+"/", "websocket", dialOptions{NoReconnection: true})
	first := c.Expect(t, "connect")
	recv(t, conns, "first connection")
	_ = ts.To("r").Emit("m", 1) // gives the client an offset
	c.ExpectEvent(t, "m")
	c.CloseTransport()
	c.Expect(t, "disconnect")
	deadline := time.Now().Add(waitBound)
	for ts.Of("/").SocketCount() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	events = nil // the disconnect's leave/delete events
	mu.Unlock()
	c.ConnectAgain()
	if again := c.Expect(t, "connect"); !again.Recovered {
		t.Fatal("not recovered")
	}
	got := recv(t, conns, "recovered connection")
	want := []string{"create-room " + first.ID, "join-room " + first.ID, "create-room r", "join-room r"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events before the recovered connection handler: %q, want %q", got, want)
	}
}

// A client's burst of events asking for acks, held in the connection's
// handler queue until all have arrived: every reply arrives, a handler that
// waits mid-burst for the client's own answer gets it, and the events the
// handlers emit arrive in the order emitted.
func TestAckBurst(t *testing.T) {
	const n = 500
	ts := newTestServer(t, nil)
	midBurst := make(chan string, 1)
	held, release := make(chan struct{}), make(chan struct{})
	ts.OnConnection(func(s *switchboard.Socket) {
		// Holds the connection's handler queue while the burst arrives.
		s.On("hold", func() {
			close(held)
			<-release
		})
		s.On("q", func(i int, ack switchboard.AckFunc) {
			_ = s.Emit("seen", i)
			if i == 100 {
				answer, err := s.Timeout(waitBound).EmitWithAck(context.Background(), "question", "mid-burst")
				var v string
				if err == nil {
					err = answer.Decode(0, &v)
				}
				midBurst <- fmt.Sprint(v, err)
			}
			ack(i * 2)
		})
	})
	c, err := client.Dial(context.Background(), ts.URL+"/", &client.Options{Transports: []string{"websocket"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Manager().Close()
	c.On("question", func(v string, ack client.AckFunc) { ack(v) })
	seen := make(chan int, n)
	c.On("seen", func(i int) { seen <- i })
	type reply struct {
		i, v int
		err  error
	}
	replies := make(chan reply, n)
	if err := c.Emit("hold"); err != nil {
		t.Fatal(err)
	}
	recv(t, held, "the hold handler")
	base := ts.Stats().BytesIn
	for i := range n {
		err := c.EmitWithAckFunc("q", func(a client.Args, err error) {
			var v int
			if err == nil {
				err = a.Decode(0, &v)
			}
			replies <- reply{i, v, err}
		}, i)
		if err != nil {
			t.Fatal(err)
		}
	}
	// Each event is at least 10 bytes (421["q",0]): once that many have
	// been read, most of the burst waits in the handler queue.
	deadline := time.Now().Add(waitBound)
	for ts.Stats().BytesIn-base < 10*n {
		if time.Now().After(deadline) {
			t.Fatalf("the server read %d bytes of the burst", ts.Stats().BytesIn-base)
		}
		time.Sleep(time.Millisecond)
	}
	close(release)
	got := make(map[int]bool, n)
	for range n {
		r := recv(t, replies, "an ack")
		if r.err != nil || r.v != r.i*2 {
			t.Fatalf("ack of %d: %d, %v; want %d", r.i, r.v, r.err, r.i*2)
		}
		got[r.i] = true
	}
	if len(got) != n {
		t.Fatalf("%d distinct acks, want %d", len(got), n)
	}
	if v := recv(t, midBurst, "the mid-burst answer"); v != "mid-burst<nil>" {
		t.Fatalf("mid-burst EmitWithAck: %s", v)
	}
	for want := range n {
		if i := recv(t, seen, "a seen event"); i != want {
			t.Fatalf("seen event %d carries %d", want, i)
		}
	}
}
