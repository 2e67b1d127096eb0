package engineio_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/engineio"
)

func TestHandshakePolling(t *testing.T) {
	h := newHarness(t, nil)
	code, body, hdr := h.do("GET", h.query("EIO=4&transport=polling"), "", nil)
	if code != 200 {
		t.Fatalf("status %d", code)
	}
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	sid, info := parseOpen(t, body)
	if len(sid) != 20 {
		t.Errorf("sid %q: want 20 characters", sid)
	}
	want := engineio.OpenInfo{SID: sid, Upgrades: []string{"websocket"}, PingInterval: 25000, PingTimeout: 20000, MaxPayload: 1000000}
	if info.SID != want.SID || len(info.Upgrades) != 1 || info.Upgrades[0] != "websocket" ||
		info.PingInterval != want.PingInterval || info.PingTimeout != want.PingTimeout || info.MaxPayload != want.MaxPayload {
		t.Errorf("open = %+v, want %+v", info, want)
	}
	if h.srv.Count() != 1 {
		t.Errorf("Count = %d", h.srv.Count())
	}
}

func TestHandshakeWebsocketOnly(t *testing.T) {
	h := newHarness(t, nil)
	ws, sid := h.dialWS()
	_ = ws
	c := <-h.conns
	if c.ID() != sid || c.Transport() != "websocket" {
		t.Errorf("conn %s %s", c.ID(), c.Transport())
	}
	raw := h.dialRaw("EIO=4&transport=websocket", "")
	_, info := parseOpen(t, raw.readText())
	if info.Upgrades == nil || len(info.Upgrades) != 0 {
		t.Errorf("websocket-only upgrades = %#v, want []", info.Upgrades)
	}
}

func TestHandshakeUpgradesOffered(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts engineio.Options
	}{
		{"upgrades disabled", engineio.Options{DisableUpgrades: true}},
		{"polling only", engineio.Options{Transports: []string{"polling"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, &tc.opts)
			_, info := h.handshake()
			if info.Upgrades == nil || len(info.Upgrades) != 0 {
				t.Errorf("upgrades = %#v, want []", info.Upgrades)
			}
		})
	}
}

func TestHandshakeErrors(t *testing.T) {
	h := newHarness(t, &engineio.Options{
		AllowRequest: func(r *http.Request) error {
			if r.Header.Get("X-Deny") != "" {
				return errors.New("denied")
			}
			return nil
		},
	})
	ws, wsSID := h.dialWS()
	_ = ws
	for _, tc := range []struct {
		name, method, query string
		header              string
		status, code        int
		message             string
	}{
		{"no transport", "GET", "EIO=4", "", 400, 0, "Transport unknown"},
		{"unknown transport", "GET", "EIO=4&transport=carrier-pigeon", "", 400, 0, "Transport unknown"},
		{"__proto__ transport", "GET", "EIO=4&transport=__proto__", "", 400, 0, "Transport unknown"},
		{"unknown sid", "GET", "EIO=4&transport=polling&sid=nope", "", 400, 1, "Session ID unknown"},
		{"__proto__ sid", "POST", "EIO=4&transport=polling&sid=__proto__", "", 400, 1, "Session ID unknown"},
		{"POST handshake", "POST", "EIO=4&transport=polling", "", 400, 2, "Bad handshake method"},
		{"POST handshake empty sid", "POST", "EIO=4&transport=polling&sid=", "", 400, 2, "Bad handshake method"},
		{"PUT handshake", "PUT", "EIO=4&transport=polling", "", 400, 2, "Bad handshake method"},
		{"websocket without upgrade", "GET", "EIO=4&transport=websocket", "", 400, 3, "Bad request"},
		{"polling on websocket session", "GET", "EIO=4&transport=polling&sid=" + wsSID, "", 400, 3, "Bad request"},
		{"forbidden", "GET", "EIO=4&transport=polling", "X-Deny", 403, 4, "Forbidden"},
		{"EIO=3", "GET", "EIO=3&transport=polling", "", 400, 5, "Unsupported protocol version"},
		{"no EIO", "GET", "transport=polling", "", 400, 5, "Unsupported protocol version"},
		{"EIO=5", "GET", "EIO=5&transport=polling", "", 400, 5, "Unsupported protocol version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.query(tc.query), nil)
			if tc.header != "" {
				req.Header.Set(tc.header, "1")
			}
			resp, err := h.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Code    int    `json:"code"`
				Message string `json:"message"`
			}
			if err := decodeJSON(resp, &body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.status || body.Code != tc.code || body.Message != tc.message {
				t.Errorf("got %d %+v, want %d {%d %s}", resp.StatusCode, body, tc.status, tc.code, tc.message)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
	h.assertServing()
}

func TestTransportsRestricted(t *testing.T) {
	h := newHarness(t, &engineio.Options{Transports: []string{"websocket"}})
	code, body, _ := h.do("GET", h.query("EIO=4&transport=polling"), "", nil)
	if code != 400 || !strings.Contains(body, `"code":0`) {
		t.Errorf("polling on websocket-only server: %d %s", code, body)
	}
	h.dialWS()
}

func TestPollingRoundTrip(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	c := <-h.conns
	if c.Transport() != "polling" || c.Request().URL.Query().Get("EIO") != "4" {
		t.Errorf("Transport %q, Request %v", c.Transport(), c.Request().URL)
	}
	// Text and binary (base64) messages in one payload, echoed in one response.
	if code, body := h.post(sid, "4hello\x1ebAQID\x1e4"); code != 200 || body != "ok" {
		t.Fatalf("POST: %d %q", code, body)
	}
	code, body := h.get(sid)
	if code != 200 || body != "4hello\x1ebAQID\x1e4" {
		t.Fatalf("GET: %d %q", code, body)
	}
	// A long-poll waits for data.
	got := make(chan string, 1)
	go func() {
		resp, err := h.ts.Client().Get(h.query("EIO=4&transport=polling&sid=" + sid))
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b := new(strings.Builder)
		_, _ = copyBody(b, resp)
		got <- b.String()
	}()
	time.Sleep(50 * time.Millisecond)
	select {
	case s := <-got:
		t.Fatalf("long-poll answered early: %q", s)
	default:
	}
	if err := c.Send(engineio.Message{Data: []byte("a")}, engineio.Message{Data: []byte{0xff, 0}, Binary: true}); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "4a\x1eb/wA=" {
		t.Errorf("long-poll = %q", s)
	}
}

func TestPollingOnConnectionSendsFirst(t *testing.T) {
	// Messages sent inside onConnection follow the open packet.
	var srv *engineio.Server
	srv = engineio.NewServer(nil, func(c *engineio.Conn) {
		_ = c.Send(engineio.Message{Data: []byte("welcome")})
	})
	ts := newTestHTTPServer(t, srv)
	resp, err := ts.Client().Get(ts.URL + "/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	b := new(strings.Builder)
	_, _ = copyBody(b, resp)
	resp.Body.Close()
	parts := strings.Split(b.String(), "\x1e")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "0{") || parts[1] != "4welcome" {
		t.Errorf("handshake body %q", b.String())
	}
}

func TestPollingConcurrentGet(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	first := make(chan string, 1)
	go func() {
		_, body := h.get(sid)
		first <- body
	}()
	waitPending(t)
	code, body := h.get(sid)
	if code != 400 || !strings.Contains(body, `"code":3`) {
		t.Errorf("second GET: %d %q", code, body)
	}
	if got := <-first; got != "1" {
		t.Errorf("pending GET got %q, want close packet", got)
	}
	if r := h.waitClosed(sid); r != "transport error" {
		t.Errorf("reason %q", r)
	}
	if code, _ := h.get(sid); code != 400 {
		t.Errorf("GET after close: %d", code)
	}
	h.assertServing()
}

func TestPollingConcurrentPost(t *testing.T) {
	h := newHarness(t, nil)
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h.setOnMessage(func(c *engineio.Conn, data []byte, binary bool) {
		if string(data) == "block" {
			entered <- struct{}{}
			<-release
		}
	})
	sid, _ := h.handshake()
	first := make(chan int, 1)
	go func() {
		code, _ := h.post(sid, "4block")
		first <- code
	}()
	<-entered
	code, _ := h.post(sid, "4second")
	if code != 400 {
		t.Errorf("overlapping POST: %d, want 400", code)
	}
	close(release)
	<-first
	if r := h.waitClosed(sid); r != "transport error" {
		t.Errorf("reason %q", r)
	}
	h.setOnMessage(echo)
	h.assertServing()
}

func TestPollingClosePacket(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	if code, body := h.post(sid, "1"); code != 200 || body != "ok" {
		t.Errorf("POST close: %d %q", code, body)
	}
	if r := h.waitClosed(sid); r != "transport close" {
		t.Errorf("reason %q", r)
	}
	if h.srv.Count() != 0 {
		t.Errorf("Count = %d", h.srv.Count())
	}
}

func TestPollingParseError(t *testing.T) {
	h := newHarness(t, nil)
	for _, body := range []string{"", "9x", "4a\x1e\x1e4b", "b!!!"} {
		sid, _ := h.handshake()
		h.post(sid, body)
		if r := h.waitClosed(sid); r != "parse error" {
			t.Errorf("%q: reason %q", body, r)
		}
	}
	h.assertServing()
}

func TestPollingPayloadTooLarge(t *testing.T) {
	h := newHarness(t, nil)
	var got []int
	h.setOnMessage(func(c *engineio.Conn, data []byte, binary bool) { got = append(got, len(data)) })
	sid, _ := h.handshake()
	// Exactly MaxHTTPBufferSize passes.
	if code, _ := h.post(sid, "4"+strings.Repeat("x", 999_999)); code != 200 {
		t.Errorf("1e6-byte POST: %d", code)
	}
	// One more byte: 413, with and without Content-Length, and the session stays.
	if code, _ := h.post(sid, "4"+strings.Repeat("x", 1_000_000)); code != 413 {
		t.Errorf("1e6+1-byte POST: %d, want 413", code)
	}
	chunked := &chunkedReader{r: strings.NewReader("4" + strings.Repeat("y", 2_000_000))}
	if code, _, _ := h.do("POST", h.query("EIO=4&transport=polling&sid="+sid), "text/plain", chunked); code != 413 {
		t.Errorf("chunked 2e6-byte POST: %d, want 413", code)
	}
	if h.isClosed(sid) {
		t.Fatal("session closed by 413")
	}
	if code, _ := h.post(sid, "4small"); code != 200 {
		t.Errorf("POST after 413: %d", code)
	}
	if len(got) != 2 || got[0] != 999_999 || got[1] != 5 {
		t.Errorf("delivered sizes %v", got)
	}
}

func TestPollingOctetStream(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	code, body, _ := h.do("POST", h.query("EIO=4&transport=polling&sid="+sid), "application/octet-stream", strings.NewReader("4bytes"))
	if code != 200 || body != "ok" {
		t.Errorf("octet-stream POST: %d %q", code, body)
	}
	if code, body := h.get(sid); code != 200 || body != "4bytes" {
		t.Errorf("GET: %d %q", code, body)
	}
	h.assertServing()
}

func TestPollingAbortedGetCloses(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req, _ := http.NewRequestWithContext(ctx, "GET", h.query("EIO=4&transport=polling&sid="+sid), nil)
		resp, err := h.ts.Client().Do(req)
		if err == nil {
			resp.Body.Close()
		}
	}()
	waitPending(t)
	cancel()
	<-done
	if r := h.waitClosed(sid); r != "transport error" {
		t.Errorf("reason %q", r)
	}
}

func TestConnClosePolling(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	c := <-h.conns
	_ = c.Send(engineio.Message{Data: []byte("bye")})
	c.Close("forced close")
	if err := c.Send(engineio.Message{Data: []byte("late")}); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	// Queued packets first; the close packet comes with the next poll.
	if code, body := h.get(sid); code != 200 || body != "4bye" {
		t.Errorf("GET after Close: %d %q", code, body)
	}
	if code, body := h.get(sid); code != 200 || body != "1" {
		t.Errorf("second GET after Close: %d %q", code, body)
	}
	if r := h.waitClosed(sid); r != "forced close" {
		t.Errorf("reason %q", r)
	}
}

func TestSlowConsumer(t *testing.T) {
	h := newHarness(t, &engineio.Options{MaxBufferedBytes: 1000})
	sid, _ := h.handshake()
	c := <-h.conns
	msg := engineio.Message{Data: make([]byte, 400)}
	if err := c.Send(msg, msg); err != nil {
		t.Fatalf("first Send: %v", err)
	}
	if err := c.Send(msg); !errors.Is(err, engineio.ErrSlowConsumer) {
		t.Fatalf("Send over the limit: %v, want ErrSlowConsumer", err)
	}
	if err := c.Send(engineio.Message{Data: []byte("x")}); !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("Send after slow consumer: %v, want ErrClosed", err)
	}
	if r := h.waitClosed(sid); r != "slow consumer" {
		t.Errorf("reason %q", r)
	}
	h.assertServing()
}

func TestSlowConsumerWebsocket(t *testing.T) {
	h := newHarness(t, &engineio.Options{MaxBufferedBytes: 256 << 10})
	raw := h.dialRaw("EIO=4&transport=websocket", "") // never reads again
	_ = raw
	c := <-h.conns
	msg := engineio.Message{Data: make([]byte, 32<<10)}
	var err error
	for i := 0; i < 10000 && err == nil; i++ {
		err = c.Send(msg)
	}
	if !errors.Is(err, engineio.ErrSlowConsumer) {
		t.Fatalf("Send never failed: %v", err)
	}
	if r := h.waitClosed(c.ID()); r != "slow consumer" {
		t.Errorf("reason %q", r)
	}
	h.assertServing()
}

func TestMaxConnections(t *testing.T) {
	h := newHarness(t, &engineio.Options{MaxConnections: 2})
	h.handshake()
	h.dialWS()
	code, _, _ := h.do("GET", h.query("EIO=4&transport=polling"), "", nil)
	if code != 503 {
		t.Errorf("third handshake: %d, want 503", code)
	}
}

func TestServerClose(t *testing.T) {
	h := newHarness(t, nil)
	pollSID, _ := h.handshake()
	idleSID, _ := h.handshake()
	ws, wsSID := h.dialWS()
	pending := make(chan string, 1)
	go func() {
		_, body := h.get(pollSID)
		pending <- body
	}()
	waitPending(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.srv.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if body := <-pending; body != "1" {
		t.Errorf("pending GET got %q", body)
	}
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	for _, sid := range []string{pollSID, idleSID, wsSID} {
		if r := h.waitClosed(sid); r != "server shutting down" {
			t.Errorf("%s: reason %q", sid, r)
		}
	}
	if h.srv.Count() != 0 {
		t.Errorf("Count = %d", h.srv.Count())
	}
	if code, _, _ := h.do("GET", h.query("EIO=4&transport=polling"), "", nil); code != 503 {
		t.Errorf("handshake after Close: %d", code)
	}
}

func TestCORS(t *testing.T) {
	h := newHarness(t, &engineio.Options{CORS: &engineio.CORSOptions{
		Origins: []string{"https://ok.example"}, Credentials: true, MaxAge: time.Hour,
	}})
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest("OPTIONS", h.query("EIO=4&transport=polling"), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := h.ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := pre("https://ok.example")
	if resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "https://ok.example" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		resp.Header.Get("Access-Control-Allow-Headers") != "content-type" ||
		resp.Header.Get("Access-Control-Max-Age") != "3600" {
		t.Errorf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}
	resp = pre("https://evil.example")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("disallowed origin got %v", resp.Header)
	}
	req, _ := http.NewRequest("GET", h.query("EIO=4&transport=polling"), nil)
	req.Header.Set("Origin", "https://ok.example")
	r2, err := h.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != 200 || r2.Header.Get("Access-Control-Allow-Origin") != "https://ok.example" {
		t.Errorf("GET: %d %v", r2.StatusCode, r2.Header)
	}

	star := newHarness(t, &engineio.Options{CORS: &engineio.CORSOptions{Origins: []string{"*"}}})
	req, _ = http.NewRequest("GET", star.query("EIO=4&transport=polling"), nil)
	req.Header.Set("Origin", "https://any.example")
	r3, err := star.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r3.Body.Close()
	if r3.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("wildcard: %v", r3.Header)
	}
}

func TestPanicInOnConnection(t *testing.T) {
	srv := engineio.NewServer(&engineio.Options{Logger: quietLogger()}, func(c *engineio.Conn) {
		if c.Transport() == "polling" {
			panic("boom")
		}
		c.SetHandlers(func(data []byte, binary bool) { _ = c.Send(engineio.Message{Data: append([]byte(nil), data...)}) }, nil)
	})
	ts := newTestHTTPServer(t, srv)
	resp, err := ts.Client().Get(ts.URL + "/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 500 {
		t.Errorf("status %d", resp.StatusCode)
	}
	waitFor(t, "session removed", func() bool { return srv.Count() == 0 })
}

func TestCloseInsideOnConnection(t *testing.T) {
	closed := make(chan string, 1)
	srv := engineio.NewServer(nil, func(c *engineio.Conn) {
		c.Close("go away")
		c.SetHandlers(nil, func(reason string) { closed <- reason })
	})
	ts := newTestHTTPServer(t, srv)
	resp, err := ts.Client().Get(ts.URL + "/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	b := new(strings.Builder)
	_, _ = copyBody(b, resp)
	resp.Body.Close()
	body := b.String()
	if !strings.HasPrefix(body, "0{") {
		t.Fatalf("handshake body %q: want the open packet", body)
	}
	// The close packet comes with the next poll, as in engine.io, never in
	// the same response as queued packets.
	if !strings.HasSuffix(body, "}") {
		t.Fatalf("handshake body %q carries more than the open packet", body)
	}
	var open struct{ SID string }
	if err := json.Unmarshal([]byte(body[1:]), &open); err != nil {
		t.Fatal(err)
	}
	resp, err = ts.Client().Get(ts.URL + "/?EIO=4&transport=polling&sid=" + open.SID)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	_, _ = copyBody(b, resp)
	resp.Body.Close()
	if b.String() != "1" {
		t.Errorf("next poll %q, want the close packet", b.String())
	}
	select {
	case r := <-closed:
		if r != "go away" {
			t.Errorf("reason %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("onClose not called")
	}
}

// TestServerCloseRace closes the server while clients keep connecting; Close
// returns, every session gets onClose, nothing leaks (goleak).
func TestServerCloseRace(t *testing.T) {
	var opened, closed atomic.Int64
	srv := engineio.NewServer(nil, func(c *engineio.Conn) {
		opened.Add(1)
		c.SetHandlers(nil, func(string) { closed.Add(1) })
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if i%2 == 0 {
					resp, err := ts.Client().Get(ts.URL + "/?EIO=4&transport=polling")
					if err == nil {
						resp.Body.Close()
					}
				} else {
					ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(ts.URL, "http")+"/?EIO=4&transport=websocket", nil)
					if err == nil {
						ws.Close()
					}
				}
			}
		}(i)
	}
	time.Sleep(200 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Close(ctx); err != nil {
		t.Errorf("Close: %v", err)
	}
	close(stop)
	wg.Wait()
	if opened.Load() == 0 || opened.Load() != closed.Load() {
		t.Errorf("opened %d, closed %d", opened.Load(), closed.Load())
	}
	if srv.Count() != 0 {
		t.Errorf("Count = %d", srv.Count())
	}
}

func TestWritable(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	c := <-h.conns
	if c.Writable() {
		t.Error("polling without a pending GET is writable")
	}
	done := make(chan string, 1)
	go func() { _, b := h.get(sid); done <- b }()
	waitFor(t, "pending GET", c.Writable)
	_ = c.Send(engineio.Message{Data: []byte("x")})
	if b := <-done; b != "4x" {
		t.Errorf("GET %q", b)
	}
	h.dialWS()
	wc := <-h.conns
	waitFor(t, "websocket writable", wc.Writable)
	wc.Close("forced close")
	if wc.Writable() {
		t.Error("closing conn writable")
	}
}
