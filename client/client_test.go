package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/parser"
	"go.uber.org/goleak"
)

// fakeServer is a scripted Engine.IO websocket server for the cases the
// reference server cannot produce (a silent heartbeat, malformed packets).
// It accepts the handshake and the CONNECT of "/", then runs script.
func fakeServer(t *testing.T, pingInterval, pingTimeout int, script func(c *websocket.Conn)) (url string, sessions *atomic.Int32) {
	t.Helper()
	sessions = new(atomic.Int32)
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("transport") != "websocket" {
			http.Error(w, `{"code":0,"message":"Transport unknown"}`, http.StatusBadRequest)
			return
		}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		n := sessions.Add(1)
		open := fmt.Sprintf(`0{"sid":"s%d","upgrades":[],"pingInterval":%d,"pingTimeout":%d,"maxPayload":1000000}`,
			n, pingInterval, pingTimeout)
		c.WriteMessage(websocket.TextMessage, []byte(open))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "40" {
			return
		}
		c.WriteMessage(websocket.TextMessage, []byte(`40{"sid":"socket1"}`))
		script(c)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, sessions
}

// drain reads until the client closes the connection.
func drain(c *websocket.Conn) {
	for {
		if _, _, err := c.ReadMessage(); err != nil {
			return
		}
	}
}

func TestPingTimeout(t *testing.T) {
	url, sessions := fakeServer(t, 50, 50, drain) // never pings
	s := dial(t, url, Options{Transports: []string{"websocket"}, ReconnectionDelay: 10 * time.Millisecond})
	rs := reasons(s)
	connected := connects(s)
	start := time.Now()
	if r := recv(t, rs, "disconnect"); r != ReasonPingTimeout {
		t.Fatalf("reason %q", r)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Fatalf("ping timeout after %v, want pingInterval+pingTimeout", d)
	}
	recv(t, connected, "reconnect")
	if n := sessions.Load(); n < 2 {
		t.Fatalf("%d sessions, want a reconnection", n)
	}
}

func TestParseError(t *testing.T) {
	url, _ := fakeServer(t, 25000, 20000, func(c *websocket.Conn) {
		c.ReadMessage() // the client's "go" event
		c.WriteMessage(websocket.TextMessage, []byte(`42["ok",1]`))
		c.WriteMessage(websocket.TextMessage, []byte(`4z`)) // not a Socket.IO packet
		drain(c)
	})
	s := dial(t, url, Options{Transports: []string{"websocket"}, DisableReconnection: true})
	rs := reasons(s)
	s.Emit("go")
	if r := recv(t, rs, "disconnect"); r != ReasonParseError {
		t.Fatalf("reason %q", r)
	}
}

func TestServerAnswersNothing(t *testing.T) {
	// A closed port: Dial fails fast with a transport error.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	for _, m := range transportModes {
		t.Run(m.name, func(t *testing.T) {
			_, err := Dial(context.Background(), url, &m.opts)
			var ce *ConnectError
			if err == nil || errors.As(err, &ce) {
				t.Fatalf("Dial: %v, want a transport error", err)
			}
		})
	}

	// With ReconnectionAttempts the Manager gives up after that many retries,
	// reporting each failure.
	opts := Options{ReconnectionAttempts: 2, ReconnectionDelay: 5 * time.Millisecond}
	m := NewManager(url, &opts)
	defer m.Close()
	s := m.Socket("/")
	var errs atomic.Int32
	s.On("connect_error", func(error) { errs.Add(1) })
	s.Connect()
	eventually(t, "3 connect errors", func() bool { return errs.Load() == 3 })
	time.Sleep(100 * time.Millisecond)
	if n := errs.Load(); n != 3 {
		t.Fatalf("%d connect errors, want 3 (1 + 2 attempts)", n)
	}
}

func TestHeartbeat(t *testing.T) {
	// The server closes a session whose pong is 200ms late; the client
	// allows 250ms between pings.
	url := startRefServer(t, "PING_INTERVAL=50", "PING_TIMEOUT=200")
	forEachTransport(t, func(t *testing.T, opts Options) {
		s := dial(t, url, opts)
		rs := reasons(s)
		time.Sleep(500 * time.Millisecond) // several ping intervals
		select {
		case r := <-rs:
			t.Fatalf("disconnected: %s", r)
		default:
		}
		if got := ack[string](t, s, "echo", "alive"); got != "alive" {
			t.Fatalf("echo %q", got)
		}
	})
}

func TestEmitReservedEvent(t *testing.T) {
	m := NewManager("http://127.0.0.1:1", nil)
	defer m.Close()
	if err := m.Socket("/").Emit("disconnect"); !errors.Is(err, ErrReservedEvent) {
		t.Fatalf("err %v, want ErrReservedEvent", err)
	}
	if err := m.Socket("/").Emit("x", func() {}); err == nil {
		t.Fatal("emitting a func: no error")
	}
}

func TestConnectPayload(t *testing.T) {
	for _, tc := range []struct {
		auth        any
		pid, offset string
		want        string
	}{
		{nil, "", "", ""},
		{map[string]any{"token": "t"}, "", "", `{"token":"t"}`},
		{nil, "p", "o", `{"pid":"p","offset":"o"}`},
		{nil, "p", "", `{"pid":"p"}`},
		{map[string]any{"token": "t"}, "p", "o", `{"pid":"p","offset":"o","token":"t"}`},
		{struct{}{}, "p", "o", `{"pid":"p","offset":"o"}`},
	} {
		got, err := connectPayload(tc.auth, tc.pid, tc.offset)
		if err != nil || string(got) != tc.want {
			t.Errorf("connectPayload(%v, %q, %q) = %s, %v; want %s", tc.auth, tc.pid, tc.offset, got, err, tc.want)
		}
	}
	if _, err := connectPayload("str", "", ""); err == nil {
		t.Error("string auth: no error")
	}
}

func TestBackoff(t *testing.T) {
	m := NewManager("http://x", &Options{ReconnectionDelay: 100 * time.Millisecond, ReconnectionDelayMax: time.Second})
	for n, want := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		want *= time.Millisecond
		for range 20 {
			d := m.backoff(n)
			if d < want/2 || d > min(want*3/2, time.Second) {
				t.Fatalf("backoff(%d) = %v, want %v ± 50%%, at most 1s", n, d, want)
			}
		}
	}
	m = NewManager("http://x", &Options{RandomizationFactor: -1})
	if d := m.backoff(1); d != 2*time.Second {
		t.Fatalf("backoff without randomization = %v", d)
	}
}

// BenchmarkClientEmit measures the emit path: encoding, queueing and
// writing to a websocket whose server discards what it reads (the server's
// reading costs one allocation per message, counted here too).
func BenchmarkClientEmit(b *testing.B) {
	url, _ := fakeServerB(b)
	opts := Options{Transports: []string{"websocket"}}
	s, err := Dial(context.Background(), url, &opts)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Manager().Close()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := s.Emit("message", "room", 42, "hello, world"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncode measures encoding an event into queued packets alone.
func BenchmarkEncode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		data, att, _ := parser.MarshalEvent("message", "room", 42, "hello, world")
		p := parser.Packet{Type: parser.Event, Data: data, Attachments: att}
		var tmp [1]outPacket
		releaseAll(encodePacket(tmp[:0], &p))
	}
}

func fakeServerB(b *testing.B) (string, *httptest.Server) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
		if _, msg, err := c.ReadMessage(); err != nil || string(msg) != "40" {
			return
		}
		c.WriteMessage(websocket.TextMessage, []byte(`40{"sid":"socket1"}`))
		for {
			_, r, err := c.NextReader()
			if err != nil {
				return
			}
			io.Copy(io.Discard, r)
		}
	}))
	b.Cleanup(srv.Close)
	return srv.URL, srv
}

// TestGoroutinesEnd checks that every goroutine ends when the last socket
// disconnects, whichever side disconnects, without Manager.Close.
func TestGoroutinesEnd(t *testing.T) {
	url := startRefServer(t)
	forEachTransport(t, func(t *testing.T, opts Options) {
		before := goleak.IgnoreCurrent()
		ctx := context.Background()
		s, err := Dial(ctx, url, &opts)
		if err != nil {
			t.Fatal(err)
		}
		waitTransport(t, s, opts)
		s.Disconnect()
		goleak.VerifyNone(t, before)

		s, err = Dial(ctx, url, &opts)
		if err != nil {
			t.Fatal(err)
		}
		waitTransport(t, s, opts)
		rs := reasons(s)
		s.Emit("disconnectMe")
		recv(t, rs, "disconnect")
		goleak.VerifyNone(t, before)
	})
}

// BenchmarkClientReceive measures the receive path: reading, decoding,
// queueing and calling a func(int) handler (the fake server's writes, one
// syscall per frame, dominate the time).
func BenchmarkClientReceive(b *testing.B) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.WriteMessage(websocket.TextMessage, []byte(`0{"sid":"s","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`))
		c.ReadMessage() // 40
		c.WriteMessage(websocket.TextMessage, []byte(`40{"sid":"socket1"}`))
		for {
			_, msg, err := c.ReadMessage() // 42["go",n]
			if err != nil {
				return
			}
			var n int
			fmt.Sscanf(string(msg), `42["go",%d]`, &n)
			frame := []byte(`42["tick",1]`)
			for range n {
				c.WriteMessage(websocket.TextMessage, frame)
			}
		}
	}))
	defer srv.Close()
	s, err := Dial(context.Background(), srv.URL, &Options{Transports: []string{"websocket"}})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Manager().Close()
	var got atomic.Int64
	done := make(chan struct{}, 1)
	want := int64(b.N)
	s.On("tick", func(n int) {
		if got.Add(int64(n)) == want {
			done <- struct{}{}
		}
	})
	b.ReportAllocs()
	b.ResetTimer()
	s.Emit("go", b.N)
	<-done
}

// Without reconnection, a Connect made as soon as the socket knows its
// transport closed opens a new session (it used to be left to the run loop
// that was ending, and nothing happened).
func TestConnectRightAfterTransportClose(t *testing.T) {
	url, sessions := fakeServer(t, 25000, 20000, drain)
	s := dial(t, url, Options{Transports: []string{"websocket"}, DisableReconnection: true})
	cs := connects(s)
	for i := range 20 {
		s.Manager().Engine().CloseTransport()
		deadline := time.Now().Add(waitTimeout)
		for s.Connected() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: still connected after the transport closed", i)
			}
			time.Sleep(100 * time.Microsecond)
		}
		s.Connect()
		recv(t, cs, fmt.Sprintf("reconnection %d", i))
	}
	if n := sessions.Load(); n != 21 {
		t.Fatalf("%d sessions, want 21", n)
	}
}

// Emits to a server that does not read fill the socket until a direct
// write is taken only in part: send does not block, and the writer
// goroutine writes the tail although nothing is emitted after it. Once the
// server reads, every message has arrived whole and in order.
func TestEmitsFillingTheSocket(t *testing.T) {
	const most = 8192 // 4 KiB each: 32 MiB, far more than loopback buffers
	release := make(chan struct{})
	sent := make(chan int, 1)
	got := make(chan []string, 1)
	url, _ := fakeServer(t, 25000, 20000, func(c *websocket.Conn) {
		<-release
		n := <-sent
		var msgs []string
		for len(msgs) < n {
			_, msg, err := c.ReadMessage()
			if err != nil {
				break
			}
			msgs = append(msgs, string(msg))
		}
		got <- msgs
		drain(c)
	})
	s := dial(t, url, Options{Transports: []string{"websocket"}, DisableReconnection: true})
	e := s.Manager().Engine()
	pad := strings.Repeat("x", 4<<10)
	idle := func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return !e.writing && !e.direct && len(e.out) == 0
	}
	n := 0
	for n < most {
		// Each emit finds the engine idle, so that it writes directly
		// (the writer goroutine may still be finishing the last batch
		// it took, such as the CONNECT).
		eventually(t, "an idle engine", idle)
		if err := s.Emit("n", n, pad); err != nil {
			t.Fatal(err)
		}
		n++
		e.mu.Lock()
		partial := e.wsPending
		e.mu.Unlock()
		if partial {
			break
		}
	}
	if n == most {
		t.Fatal("32 MiB emitted to a server that does not read went out whole: the test does not fill the socket")
	}
	sent <- n
	close(release)
	var msgs []string
	select {
	case msgs = <-got:
	case <-time.After(waitTimeout):
		t.Fatal("server did not get the messages")
	}
	if len(msgs) != n {
		t.Fatalf("server got %d messages, want %d", len(msgs), n)
	}
	for i, m := range msgs {
		if want := fmt.Sprintf(`42["n",%d,"%s"]`, i, pad); m != want {
			t.Fatalf("message %d: %.40q..., want %.40q...", i, m, want)
		}
	}
}
