package client

// Scenarios against the Node reference server (testdata/refserver.js). Each
// scenario takes the server's base URL and client options so the same
// scenarios can run against other servers implementing refserver.js's
// events.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard/internal/callback"
)

// scenarios are the client's end-to-end stories. Each runs once per
// transport (polling, websocket, polling upgraded to websocket) against a
// server implementing testdata/refserver.js: its events on "/", "/custom"
// and "/private", and a recovery-enabled server under the path
// "/recovery/".
var scenarios = []struct {
	name string
	run  func(t *testing.T, url string, opts Options)
}{
	{"ConnectDefaultNamespace", scenarioConnect("/")},
	{"ConnectCustomNamespace", scenarioConnect("/custom")},
	{"Multiplex", scenarioMultiplex},
	{"EmitJSONAndBinary", scenarioEmitJSONAndBinary},
	{"ServerEmitsJSONAndBinary", scenarioServerEmits},
	{"ServerAsksForAck", scenarioServerAsksForAck},
	{"AckTimeout", scenarioAckTimeout},
	{"EmitWithAckFunc", scenarioEmitWithAckFunc},
	{"EmitWithAckInsideHandler", scenarioEmitWithAckInsideHandler},
	{"ConcurrentEmitWithAck", scenarioConcurrentEmitWithAck},
	{"AuthAndConnectError", scenarioAuthAndConnectError},
	{"BufferedAndVolatile", scenarioBufferedAndVolatile},
	{"RawEngineSend", scenarioRawEngineSend},
	{"ServerDisconnect", scenarioServerDisconnect},
	{"ClientDisconnect", scenarioClientDisconnect},
	{"ReconnectAfterServerDropsTransport", scenarioReconnectAfterDrop},
	{"ReconnectAfterClientDropsTransport", scenarioReconnectAfterClientDrop},
	{"Recovery", scenarioRecovery},
	{"ThousandEventsInOrder", scenarioThousandEvents},
	{"AckBurst", scenarioAckBurst},
}

// runScenarios runs every scenario against the server at url.
func runScenarios(t *testing.T, url string) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			forEachTransport(t, func(t *testing.T, opts Options) { sc.run(t, url, opts) })
		})
	}
}

func TestRefServer(t *testing.T) {
	runScenarios(t, startRefServer(t))
}

type whoami struct {
	ID        string         `json:"id"`
	Recovered bool           `json:"recovered"`
	Auth      map[string]any `json:"auth"`
	Transport string         `json:"transport"`
}

// waitTransport waits until the session uses the wanted transport: a
// polling session offered an upgrade ends on websocket.
func waitTransport(t *testing.T, s *Socket, opts Options) {
	t.Helper()
	want := opts.Transports
	if len(want) == 0 {
		want = []string{transportWebsocket}
	}
	eventually(t, "transport "+want[0], func() bool {
		e := s.Manager().Engine()
		return e != nil && e.Transport() == want[0]
	})
}

func scenarioConnect(nsp string) func(t *testing.T, url string, opts Options) {
	return func(t *testing.T, url string, opts Options) {
		m := NewManager(url, &opts)
		defer m.Close()
		s := m.Socket(nsp)
		var hello <-chan string
		if nsp == "/custom" {
			hello = events[string](s, "hello")
		}
		connected := connects(s)
		s.Connect()
		recv(t, connected, "connect")
		if !s.Connected() || s.ID() == "" || s.Recovered() {
			t.Fatalf("Connected %v, ID %q, Recovered %v", s.Connected(), s.ID(), s.Recovered())
		}
		if hello != nil {
			if got := recv(t, hello, "hello"); got != nsp {
				t.Fatalf("hello %q, want %q", got, nsp)
			}
		}
		waitTransport(t, s, opts)
		who := ack[whoami](t, s, "whoami")
		if who.ID != s.ID() {
			t.Fatalf("server socket id %q, client %q", who.ID, s.ID())
		}
		if want := m.Engine().Transport(); who.Transport != want {
			t.Fatalf("server transport %q, client %q", who.Transport, want)
		}
	}
}

func scenarioMultiplex(t *testing.T, url string, opts Options) {
	m := NewManager(url, &opts)
	defer m.Close()
	main, custom := m.Socket("/"), m.Socket("/custom")
	c1, c2 := connects(main), connects(custom)
	main.Connect()
	custom.Connect()
	recv(t, c1, "connect /")
	recv(t, c2, "connect /custom")
	if main.ID() == custom.ID() {
		t.Fatal("namespaces share a socket id")
	}
	if got := ack[string](t, custom, "echo", "via custom"); got != "via custom" {
		t.Fatalf("echo on /custom: %q", got)
	}
	// Disconnecting one namespace keeps the connection for the other.
	main.Disconnect()
	if got := ack[string](t, custom, "echo", "still here"); got != "still here" {
		t.Fatalf("echo after disconnecting /: %q", got)
	}
}

func scenarioEmitJSONAndBinary(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	type point struct {
		X, Y int
	}
	res, err := s.EmitWithAck(context.Background(), "echo", "text", 42, point{1, 2}, []byte{0, 1, 255},
		map[string]any{"nested": []byte("bin"), "list": []any{[]byte{7}}})
	if err != nil {
		t.Fatal(err)
	}
	var (
		str    string
		n      int
		p      point
		bin    []byte
		nested any // binary values nested in objects decode into any
	)
	for i, v := range []any{&str, &n, &p, &bin, &nested} {
		if err := res.Decode(i, v); err != nil {
			t.Fatalf("arg %d: %v", i, err)
		}
	}
	if str != "text" || n != 42 || p != (point{1, 2}) || !bytes.Equal(bin, []byte{0, 1, 255}) ||
		!reflect.DeepEqual(nested, map[string]any{"nested": []byte("bin"), "list": []any{[]byte{7}}}) {
		t.Fatalf("echo: %q %d %v %v %+v", str, n, p, bin, nested)
	}
	// Without an ack the server emits "echo" back.
	echoes := make(chan Args, 1)
	s.On("echo", func(a []json.RawMessage) {}) // handlers of any shape coexist
	s.OnAny(func(event string, a Args) {
		if event == "echo" {
			echoes <- a
		}
	})
	if err := s.Emit("echo", []byte("raw"), "x"); err != nil {
		t.Fatal(err)
	}
	a := recv(t, echoes, "echo event")
	var b []byte
	if err := a.Decode(0, &b); err != nil || string(b) != "raw" {
		t.Fatalf("echo event: %q %v", b, err)
	}
}

func scenarioServerEmits(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	type jsonEvent struct {
		Obj struct {
			A int    `json:"a"`
			B []int  `json:"b"`
			S string `json:"s"`
		}
		N   int
		Str string
	}
	jsonCh := make(chan jsonEvent, 1)
	s.On("json", func(obj struct {
		A int    `json:"a"`
		B []int  `json:"b"`
		S string `json:"s"`
	}, n int, str string) {
		jsonCh <- jsonEvent{obj, n, str}
	})
	type binEvent struct {
		Raw    []byte
		Nested any
		Text   string
	}
	binCh := make(chan binEvent, 1)
	s.On("binary", func(raw []byte, nested any, text string) {
		binCh <- binEvent{raw, nested, text}
	})
	s.Emit("emitJSON")
	s.Emit("emitBinary")
	j := recv(t, jsonCh, "json")
	if j.Obj.A != 1 || !reflect.DeepEqual(j.Obj.B, []int{1, 2}) || j.Obj.S != "x" || j.N != 42 || j.Str != "str" {
		t.Fatalf("json event: %+v", j)
	}
	b := recv(t, binCh, "binary")
	if !bytes.Equal(b.Raw, []byte{1, 2, 3}) || !reflect.DeepEqual(b.Nested, map[string]any{"nested": []byte{4, 5}}) || b.Text != "text" {
		t.Fatalf("binary event: %+v", b)
	}
}

func scenarioServerAsksForAck(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	s.On("question", func(q string, ack callback.AckFunc) {
		ack(map[string]any{"text": "answer to " + q, "bin": []byte{9}})
	})
	res, err := s.EmitWithAck(context.Background(), "askAck", "life")
	if err != nil {
		t.Fatal(err)
	}
	var answer any
	if err := res.Decode(0, &answer); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(answer, map[string]any{"text": "answer to life", "bin": []byte{9}}) {
		t.Fatalf("answer %#v", answer)
	}
}

func scenarioAckTimeout(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	start := time.Now()
	_, err := s.Timeout(100*time.Millisecond).EmitWithAck(context.Background(), "noAck")
	if !errors.Is(err, ErrAckTimeout) || err.Error() != "operation has timed out" {
		t.Fatalf("err %v, want ErrAckTimeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("timed out after %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.EmitWithAck(ctx, "noAck"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want context.DeadlineExceeded", err)
	}
	// The socket still works.
	if got := ack[int](t, s, "echo", 7); got != 7 {
		t.Fatalf("echo %d", got)
	}
}

func scenarioEmitWithAckFunc(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	type result struct {
		n   int
		err error
	}
	results := make(chan result, 2)
	err := s.EmitWithAckFunc("echo", func(a Args, err error) {
		var n int
		if err == nil {
			err = a.Decode(0, &n)
		}
		results <- result{n, err}
	}, 5)
	if err != nil {
		t.Fatal(err)
	}
	if r := recv(t, results, "ack"); r.err != nil || r.n != 5 {
		t.Fatalf("ack %+v", r)
	}
	s.Timeout(50*time.Millisecond).EmitWithAckFunc("noAck", func(a Args, err error) { results <- result{err: err} })
	if r := recv(t, results, "ack timeout"); !errors.Is(r.err, ErrAckTimeout) {
		t.Fatalf("ack %+v, want ErrAckTimeout", r)
	}
}

func scenarioEmitWithAckInsideHandler(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	got := make(chan string, 1)
	s.On("json", func() {
		// Blocks the handler goroutine until the ack arrives: acks are
		// delivered by the reader, so this does not deadlock.
		res, err := s.EmitWithAck(context.Background(), "echo", "from handler")
		if err != nil {
			got <- err.Error()
			return
		}
		var v string
		res.Decode(0, &v)
		got <- v
	})
	s.Emit("emitJSON")
	if v := recv(t, got, "ack inside handler"); v != "from handler" {
		t.Fatalf("got %q", v)
	}
}

// The server asks n questions in one burst. What the handlers send is
// written in chunks (Engine.send while the dispatcher has more of the
// burst to run): every answer arrives, including that of a handler that
// first waits, mid-burst, for an ack of its own, and the events they emit
// arrive in the order emitted.
func scenarioAckBurst(t *testing.T, url string, opts Options) {
	const n = 500
	s := dial(t, url, opts)
	s.On("question", func(i int, ack callback.AckFunc) {
		if err := s.Emit("seqIn", i); err != nil {
			ack(err.Error())
			return
		}
		if i == 100 {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			res, err := s.EmitWithAck(ctx, "echo", "mid-burst")
			var v string
			if err == nil {
				err = res.Decode(0, &v)
			}
			if err != nil || v != "mid-burst" {
				ack(fmt.Sprintf("echo inside the burst: %q, %v", v, err))
				return
			}
		}
		ack(i * 2)
	})
	answers := ack[[]any](t, s, "askMany", n)
	if len(answers) != n {
		t.Fatalf("%d answers, want %d", len(answers), n)
	}
	for i, a := range answers {
		if a != float64(i*2) {
			t.Fatalf("answer %d: %v, want %d", i, a, i*2)
		}
	}
	res := ack[struct{ Next, Bad int }](t, s, "seqInResult")
	if res.Next != n || res.Bad != 0 {
		t.Fatalf("server saw the handlers' events up to %d with %d out of order, want %d and 0", res.Next, res.Bad, n)
	}
}

func scenarioAuthAndConnectError(t *testing.T, url string, opts Options) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	_, err := Dial(ctx, url+"/private", &opts)
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("Dial without auth: %v, want *ConnectError", err)
	}
	var data struct {
		Code int    `json:"code"`
		Hint string `json:"hint"`
	}
	if ce.Message != "not authorized" || json.Unmarshal(ce.Data, &data) != nil || data.Code != 401 || data.Hint != "send token" {
		t.Fatalf("ConnectError %q %s", ce.Message, ce.Data)
	}

	// connect_error handler, then a successful retry with AuthFunc.
	m := NewManager(url, &opts)
	defer m.Close()
	s := m.Socket("/private")
	errs := make(chan error, 1)
	s.On("connect_error", func(err error) { errs <- err })
	welcome := events[map[string]any](s, "welcome")
	token := "wrong"
	o := opts
	o.AuthFunc = func() any { return map[string]any{"token": token, "user": "ann"} }
	m = NewManager(url, &o)
	defer m.Close()
	s = m.Socket("/private")
	s.On("connect_error", func(err error) { errs <- err })
	welcome = events[map[string]any](s, "welcome")
	s.Connect()
	if err := recv(t, errs, "connect_error"); err.Error() != "not authorized" {
		t.Fatalf("connect_error %v", err)
	}
	if s.Active() || s.Connected() {
		t.Fatal("socket still active after connect_error")
	}
	token = "secret"
	s.Connect()
	if got := recv(t, welcome, "welcome"); got["token"] != "secret" || got["user"] != "ann" {
		t.Fatalf("welcome %v", got)
	}

	// Static Auth with Dial.
	o = opts
	o.Auth = struct {
		Token string `json:"token"`
	}{"secret"}
	s = dial(t, url+"/private", o)
	if who := ack[whoami](t, s, "whoami"); who.Auth["token"] != "secret" {
		t.Fatalf("auth %v", who.Auth)
	}
}

func scenarioBufferedAndVolatile(t *testing.T, url string, opts Options) {
	m := NewManager(url, &opts)
	defer m.Close()
	s := m.Socket("/")
	// Before connecting: a normal emit is buffered, a volatile one dropped.
	s.Emit("record", "buffered 1")
	s.Volatile().Emit("record", "volatile dropped")
	s.Emit("record", "buffered 2")
	connected := connects(s)
	s.Connect()
	recv(t, connected, "connect")
	waitTransport(t, s, opts)
	// A volatile emit is sent when the transport is idle (not when a
	// polling POST is in flight, as in JavaScript).
	eventually(t, "idle transport", func() bool { return m.Engine().writable() })
	if err := s.Volatile().Emit("record", "volatile sent"); err != nil {
		t.Fatal(err)
	}
	log := ack[[][]string](t, s, "getLog")
	want := [][]string{{"buffered 1"}, {"buffered 2"}, {"volatile sent"}}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("server log %v, want %v", log, want)
	}
}

func scenarioServerDisconnect(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	rs := reasons(s)
	s.Emit("disconnectMe")
	if r := recv(t, rs, "disconnect"); r != ReasonServerDisconnect {
		t.Fatalf("reason %q", r)
	}
	if s.Active() || s.Connected() {
		t.Fatal("socket still active after a server disconnect")
	}
	// No reconnection; the connection closes as no socket is active.
	eventually(t, "engine closed", func() bool { return s.Manager().Engine() == nil })
	time.Sleep(100 * time.Millisecond)
	if s.Connected() {
		t.Fatal("reconnected after a server disconnect")
	}
}

func scenarioClientDisconnect(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	id := s.ID()
	rs := reasons(s)
	s.Disconnect()
	if r := recv(t, rs, "disconnect"); r != ReasonClientDisconnect {
		t.Fatalf("reason %q", r)
	}
	if s.Manager().Engine() != nil {
		t.Fatal("engine still open after the last socket disconnected")
	}
	probe := dial(t, url, opts)
	if r := ack[string](t, probe, "reasonOf", id); r != "client namespace disconnect" {
		t.Fatalf("server-side reason %q", r)
	}
}

func scenarioReconnectAfterDrop(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	waitTransport(t, s, opts)
	first := s.ID()
	rs := reasons(s)
	connected := connects(s)
	s.Emit("dropTransport")
	if r := recv(t, rs, "disconnect"); r != ReasonTransportClose {
		t.Fatalf("reason %q", r)
	}
	// Emitted while disconnected: buffered, sent after reconnecting.
	s.Emit("record", "while down")
	recv(t, connected, "reconnect")
	if s.ID() == first || s.Recovered() {
		t.Fatalf("after reconnect: ID %q (was %q), Recovered %v", s.ID(), first, s.Recovered())
	}
	if log := ack[[][]string](t, s, "getLog"); !reflect.DeepEqual(log, [][]string{{"while down"}}) {
		t.Fatalf("server log %v", log)
	}
	probe := dial(t, url, opts)
	if r := ack[string](t, probe, "reasonOf", first); r != "forced close" {
		t.Fatalf("server-side reason %q", r)
	}
}

func scenarioReconnectAfterClientDrop(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	waitTransport(t, s, opts)
	rs := reasons(s)
	connected := connects(s)
	s.Manager().Engine().CloseTransport()
	if r := recv(t, rs, "disconnect"); r != ReasonTransportClose {
		t.Fatalf("reason %q", r)
	}
	recv(t, connected, "reconnect")
	if got := ack[string](t, s, "echo", "back"); got != "back" {
		t.Fatalf("echo %q", got)
	}
}

func scenarioRecovery(t *testing.T, url string, opts Options) {
	opts.Path = "/recovery/"
	m := NewManager(url, &opts)
	defer m.Close()
	s := m.Socket("/")
	hello := events[string](s, "hello")
	missed := events[int](s, "missed")
	connected := connects(s)
	rs := reasons(s)
	s.Connect()
	recv(t, connected, "connect")
	recv(t, hello, "hello") // carries the first offset
	id := s.ID()
	waitTransport(t, s, opts)

	s.Emit("dropThenEmit", 3)
	if r := recv(t, rs, "disconnect"); r != ReasonTransportClose {
		t.Fatalf("reason %q", r)
	}
	recv(t, connected, "reconnect")
	if !s.Recovered() || s.ID() != id {
		t.Fatalf("Recovered %v, ID %q (was %q)", s.Recovered(), s.ID(), id)
	}
	for i := range 3 {
		if got := recv(t, missed, "missed event"); got != i {
			t.Fatalf("missed event %d, want %d", got, i)
		}
	}
	if who := ack[whoami](t, s, "whoami"); !who.Recovered || who.ID != id {
		t.Fatalf("server side: %+v", who)
	}
}

func scenarioThousandEvents(t *testing.T, url string, opts Options) {
	const n = 1000
	s := dial(t, url, opts)
	seq := events[int](s, "seq")
	if got := ack[int](t, s, "emitMany", n); got != n {
		t.Fatalf("emitMany acked %d", got)
	}
	for i := range n {
		if got := recv(t, seq, fmt.Sprintf("seq %d", i)); got != i {
			t.Fatalf("event %d carries %d", i, got)
		}
	}
	for i := range n {
		if err := s.Emit("seqIn", i); err != nil {
			t.Fatal(err)
		}
	}
	res := ack[struct{ Next, Bad int }](t, s, "seqInResult")
	if res.Next != n || res.Bad != 0 {
		t.Fatalf("server saw next %d, %d out of order", res.Next, res.Bad)
	}
}

func scenarioConcurrentEmitWithAck(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	const workers, each = 8, 50
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			for i := range each {
				want := fmt.Sprintf("w%d-%d", w, i)
				res, err := s.EmitWithAck(context.Background(), "echo", want, []byte(want))
				var got string
				var bin []byte
				if err == nil {
					err = errors.Join(res.Decode(0, &got), res.Decode(1, &bin))
				}
				if err == nil && (got != want || string(bin) != want) {
					err = fmt.Errorf("ack %q %q, want %q", got, bin, want)
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range workers {
		if err := recv(t, errs, "worker"); err != nil {
			t.Fatal(err)
		}
	}
}

func scenarioRawEngineSend(t *testing.T, url string, opts Options) {
	s := dial(t, url, opts)
	// A hand-written BINARY_EVENT: text packet, then its attachment.
	e := s.Manager().Engine()
	if err := e.Send([]byte(`51-["record","raw",{"_placeholder":true,"num":0}]`), false); err != nil {
		t.Fatal(err)
	}
	if err := e.Send([]byte{1, 2}, true); err != nil {
		t.Fatal(err)
	}
	log := ack[[][]any](t, s, "getLog")
	if len(log) != 1 || len(log[0]) != 2 || log[0][0] != "raw" {
		t.Fatalf("server log %v", log)
	}
}
