package engineio_test

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/engineio"
)

func TestWebsocketRoundTrip(t *testing.T) {
	h := newHarness(t, nil)
	ws, _ := h.dialWS()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4hello")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4hello" {
		t.Errorf("text echo %q", got)
	}
	if err := ws.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "bin:\x01\x02\x03" {
		t.Errorf("binary echo %q", got)
	}
	// A base64 text frame is a binary message too (engine.io-parser accepts it).
	if err := ws.WriteMessage(websocket.TextMessage, []byte("bAQID")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "bin:\x01\x02\x03" {
		t.Errorf("base64 echo %q", got)
	}
}

func TestWebsocketMaxPayload(t *testing.T) {
	h := newHarness(t, nil)
	var sizes atomic.Int64
	h.setOnMessage(func(c *engineio.Conn, data []byte, binary bool) { sizes.Store(int64(len(data))) })
	ws, sid := h.dialWS()
	// Exactly 1,000,000 bytes in the frame passes.
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4"+strings.Repeat("x", 999_999))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "1e6-byte message", func() bool { return sizes.Load() == 999_999 })
	// 1,000,001 bytes: close 1009.
	if err := ws.WriteMessage(websocket.BinaryMessage, make([]byte, 1_000_001)); err != nil {
		t.Fatal(err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
			t.Errorf("read error %v, want close 1009", err)
		}
		break
	}
	if r := h.waitClosed(sid); r != "transport error" {
		t.Errorf("reason %q", r)
	}
	h.setOnMessage(echo)
	h.assertServing()
}

func TestWebsocketClosePacket(t *testing.T) {
	h := newHarness(t, nil)
	ws, sid := h.dialWS()
	_ = ws.WriteMessage(websocket.TextMessage, []byte("1"))
	if r := h.waitClosed(sid); r != "transport close" {
		t.Errorf("reason %q", r)
	}
}

func TestWebsocketClientCloses(t *testing.T) {
	h := newHarness(t, nil)
	ws, sid := h.dialWS()
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if r := h.waitClosed(sid); r != "transport close" {
		t.Errorf("reason %q", r)
	}
	ws2, sid2 := h.dialWS()
	ws2.Close() // no close frame
	if r := h.waitClosed(sid2); r != "transport close" {
		t.Errorf("abrupt close: reason %q", r)
	}
}

func TestWebsocketParseError(t *testing.T) {
	h := newHarness(t, nil)
	for _, msg := range []string{"", "x", "9", "b%%%"} {
		ws, sid := h.dialWS()
		_ = ws.WriteMessage(websocket.TextMessage, []byte(msg))
		if r := h.waitClosed(sid); r != "parse error" {
			t.Errorf("%q: reason %q", msg, r)
		}
	}
	h.assertServing()
}

func TestConnCloseWebsocket(t *testing.T) {
	h := newHarness(t, nil)
	ws, sid := h.dialWS()
	c := <-h.conns
	for i := 0; i < 3; i++ {
		_ = c.Send(engineio.Message{Data: []byte(fmt.Sprint(i))})
	}
	c.Close("forced close")
	for i := 0; i < 3; i++ {
		if got := readText(t, ws); got != fmt.Sprintf("4%d", i) {
			t.Errorf("message %d = %q", i, got)
		}
	}
	_, _, err := ws.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after Close: %v, want close 1000", err)
	}
	if r := h.waitClosed(sid); r != "forced close" {
		t.Errorf("reason %q", r)
	}
}

// TestBatching queues many messages at once; they arrive complete and in
// order, as separate frames.
func TestBatching(t *testing.T) {
	h := newHarness(t, nil)
	raw := h.dialRaw("EIO=4&transport=websocket", "")
	raw.readText() // open
	c := <-h.conns
	const n = 500
	msgs := make([]engineio.Message, 0, 10)
	for i := 0; i < n; i++ {
		msgs = append(msgs, engineio.Message{Data: []byte(fmt.Sprintf("m%03d", i)), Binary: i%7 == 0})
		if len(msgs) == 10 {
			if err := c.Send(msgs...); err != nil {
				t.Fatal(err)
			}
			msgs = msgs[:0]
		}
	}
	for i := 0; i < n; i++ {
		op, payload, err := raw.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if op == 1 && string(payload) == "2" {
			i--
			continue
		}
		want, wantOp := fmt.Sprintf("4m%03d", i), byte(1)
		if i%7 == 0 {
			want, wantOp = fmt.Sprintf("m%03d", i), 2
		}
		if op != wantOp || string(payload) != want {
			t.Fatalf("frame %d: op %d %q, want op %d %q", i, op, payload, wantOp, want)
		}
	}
}

func TestUpgrade(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	c := <-h.conns
	pending := make(chan string, 1)
	go func() {
		_, body := h.get(sid)
		pending <- body
	}()
	waitPending(t)
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte("2probe"))
	if got := readText(t, ws); got != "3probe" {
		t.Fatalf("probe answer %q", got)
	}
	if got := <-pending; got != "6" {
		t.Errorf("pending GET got %q, want noop", got)
	}
	// Sent during the upgrade, before "5": goes out on the websocket.
	_ = c.Send(engineio.Message{Data: []byte("during")})
	_ = ws.WriteMessage(websocket.TextMessage, []byte("5"))
	if got := readText(t, ws); got != "4during" {
		t.Errorf("first message on websocket %q", got)
	}
	waitFor(t, "transport switch", func() bool { return c.Transport() == "websocket" })
	_ = ws.WriteMessage(websocket.TextMessage, []byte("4over ws"))
	if got := readText(t, ws); got != "4over ws" {
		t.Errorf("echo %q", got)
	}
	// Polling with that sid is refused, and the session stays.
	if code, body := h.get(sid); code != 400 || !strings.Contains(body, `"code":3`) {
		t.Errorf("GET after upgrade: %d %s", code, body)
	}
	if code, _ := h.post(sid, "4x"); code != 400 {
		t.Errorf("POST after upgrade: %d", code)
	}
	// A second websocket for the session is closed.
	ws2, _, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws2.Close()
	_ = ws2.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws2.ReadMessage(); err == nil {
		t.Error("second websocket not closed")
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("4still"))
	if got := readText(t, ws); got != "4still" {
		t.Errorf("echo after second websocket %q", got)
	}
	if h.isClosed(sid) {
		t.Error("session closed")
	}
}

func TestUpgradeTimeout(t *testing.T) {
	h := newHarness(t, &engineio.Options{UpgradeTimeout: 100 * time.Millisecond})
	sid, _ := h.handshake()
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("probe websocket not closed")
	}
	// The session keeps polling.
	if code, _ := h.post(sid, "4poll"); code != 200 {
		t.Errorf("POST: %d", code)
	}
	if code, body := h.get(sid); code != 200 || body != "4poll" {
		t.Errorf("GET: %d %q", code, body)
	}
}

func TestUpgradeBadProbe(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	ws, _, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket&sid="+sid), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	_ = ws.WriteMessage(websocket.TextMessage, []byte("4not a probe"))
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := ws.ReadMessage(); err == nil {
		t.Fatal("bad probe websocket not closed")
	}
	if code, _ := h.post(sid, "4poll"); code != 200 {
		t.Errorf("POST: %d", code)
	}
}

func TestUpgradeDisabled(t *testing.T) {
	h := newHarness(t, &engineio.Options{DisableUpgrades: true})
	sid, _ := h.handshake()
	_, resp, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket&sid="+sid), nil)
	if err == nil || resp == nil || resp.StatusCode != 400 {
		t.Errorf("upgrade with upgrades disabled: %v %v", err, resp)
	}
}

func TestHeartbeat(t *testing.T) {
	const interval, timeout = 60 * time.Millisecond, 40 * time.Millisecond
	h := newHarness(t, &engineio.Options{PingInterval: interval, PingTimeout: timeout})

	// A client that answers pings stays.
	ws, sid := h.dialWS()
	for i := 0; i < 4; i++ {
		_ = ws.SetReadDeadline(time.Now().Add(2 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil || string(data) != "2" {
			t.Fatalf("ping %d: %q %v", i, data, err)
		}
		_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
	}
	if h.isClosed(sid) {
		t.Fatal("answering client closed")
	}

	// A silent client is closed at interval+timeout after the last pong.
	ws2, sid2 := h.dialWS()
	_ = ws2
	start := time.Now()
	if r := h.waitClosed(sid2); r != "ping timeout" {
		t.Errorf("reason %q", r)
	}
	// Never before interval+timeout: a client that answers in time must not
	// be dropped (how much later it closes is the machine's business).
	if d := time.Since(start); d < interval+timeout-10*time.Millisecond {
		t.Errorf("closed after %v, before interval+timeout %v", d, interval+timeout)
	}

	// Polling: the ping goes out with a GET; a pong POSTed keeps the session.
	psid, _ := h.handshake()
	for i := 0; i < 3; i++ {
		if code, body := h.get(psid); code != 200 || body != "2" {
			t.Fatalf("poll %d: %d %q", i, code, body)
		}
		if code, _ := h.post(psid, "3"); code != 200 {
			t.Fatalf("pong %d: %d", i, code)
		}
	}
	if h.isClosed(psid) {
		t.Error("polling session closed")
	}
	if r := h.waitClosed(psid); r != "ping timeout" {
		t.Errorf("polling reason %q", r)
	}
}

func TestPanicInOnMessage(t *testing.T) {
	h := newHarness(t, &engineio.Options{Logger: quietLogger()})
	h.setOnMessage(func(c *engineio.Conn, data []byte, binary bool) {
		if string(data) == "panic" {
			panic("handler bug")
		}
		echo(c, data, binary)
	})
	victim, vsid := h.dialWS()
	other, _ := h.dialWS()
	_ = victim.WriteMessage(websocket.TextMessage, []byte("4panic"))
	if r := h.waitClosed(vsid); r != "transport error" {
		t.Errorf("reason %q", r)
	}
	_ = other.WriteMessage(websocket.TextMessage, []byte("4fine"))
	if got := readText(t, other); got != "4fine" {
		t.Errorf("other conn got %q", got)
	}
	// Same over polling.
	psid, _ := h.handshake()
	h.post(psid, "4panic")
	if r := h.waitClosed(psid); r != "transport error" {
		t.Errorf("polling reason %q", r)
	}
	h.assertServing()
}

func TestPanicInOnClose(t *testing.T) {
	srv := engineio.NewServer(&engineio.Options{Logger: quietLogger()}, func(c *engineio.Conn) {
		c.SetHandlers(nil, func(string) { panic("onClose bug") })
	})
	ts := newTestHTTPServer(t, srv)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/?EIO=4&transport=websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	ws.Close()
	waitFor(t, "session gone", func() bool { return srv.Count() == 0 })
}

func TestDeflate(t *testing.T) {
	h := newHarness(t, &engineio.Options{PerMessageDeflate: &engineio.DeflateOptions{Threshold: 16}})
	d := websocket.Dialer{EnableCompression: true}
	ws, resp, err := d.Dial(h.wsURL("EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	if !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
		t.Fatalf("deflate not negotiated: %v", resp.Header)
	}
	readText(t, ws) // open
	big := "4" + strings.Repeat("compress me ", 1000)
	ws.EnableWriteCompression(true)
	_ = ws.WriteMessage(websocket.TextMessage, []byte(big))
	if got := readText(t, ws); got != big {
		t.Errorf("echo of %d bytes: got %d", len(big), len(got))
	}
	_ = ws.WriteMessage(websocket.TextMessage, []byte("4hi"))
	if got := readText(t, ws); got != "4hi" {
		t.Errorf("small echo %q", got)
	}
}

// SendNow writes on the caller's goroutine when the writer is idle; what the
// socket does not take (a message far larger than the socket buffers, sent
// while the client does not read) goes out later, in order with Sends.
func TestWebsocketSendNowOrder(t *testing.T) {
	h := newHarness(t, &engineio.Options{MaxBufferedBytes: 64 << 20})
	big := strings.Repeat("y", 8<<20)
	h.setOnMessage(func(c *engineio.Conn, data []byte, binary bool) {
		if string(data) != "go" {
			return
		}
		for i := 0; i < 50; i++ {
			msg := engineio.Message{Data: []byte(fmt.Sprint(i))}
			var err error
			switch {
			case i == 10:
				err = c.SendNow(engineio.Message{Data: []byte(big)})
			case i%2 == 0:
				err = c.SendNow(msg)
			default:
				err = c.Send(msg)
			}
			if err != nil {
				t.Errorf("send %d: %v", i, err)
			}
		}
	})
	ws, _ := h.dialWS()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4go")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // let the socket buffers fill (not a timed assertion)
	for i := 0; i < 50; i++ {
		want := fmt.Sprintf("4%d", i)
		if i == 10 {
			want = "4" + big
		}
		if got := readText(t, ws); got != want {
			t.Fatalf("message %d: %.20q (len %d), want %.20q", i, got, len(got), want)
		}
	}
	// The session still works: the websocket stream is intact.
	h.setOnMessage(echo)
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4again")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4again" {
		t.Fatalf("echo after SendNow: %q", got)
	}
}
