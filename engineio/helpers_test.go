package engineio_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/engineio"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type closeEvent struct {
	sid    string
	reason string
}

// harness is a server on 127.0.0.1 whose sessions echo by default.
type harness struct {
	t      *testing.T
	srv    *engineio.Server
	ts     *httptest.Server
	url    string // http://127.0.0.1:port/engine.io/
	conns  chan *engineio.Conn
	closed chan closeEvent

	mu      sync.Mutex
	onMsg   func(c *engineio.Conn, data []byte, binary bool)
	reasons map[string]string
}

func echo(c *engineio.Conn, data []byte, binary bool) {
	_ = c.Send(engineio.Message{Data: append([]byte(nil), data...), Binary: binary})
}

func newHarness(t *testing.T, opts *engineio.Options) *harness {
	t.Helper()
	h := &harness{
		t:       t,
		conns:   make(chan *engineio.Conn, 1000),
		closed:  make(chan closeEvent, 100),
		onMsg:   echo,
		reasons: map[string]string{},
	}
	// Idle readers park after 10 ms (not 500 ms) unless a test says
	// otherwise, so that every test also runs over parked connections.
	if opts == nil {
		opts = &engineio.Options{}
	}
	if opts.ReleaseIdleReaderAfter == 0 {
		o := *opts
		o.ReleaseIdleReaderAfter = 10 * time.Millisecond
		opts = &o
	}
	h.srv = engineio.NewServer(opts, func(c *engineio.Conn) {
		c.SetHandlers(func(data []byte, binary bool) {
			h.mu.Lock()
			f := h.onMsg
			h.mu.Unlock()
			f(c, data, binary)
		}, func(reason string) {
			h.mu.Lock()
			h.reasons[c.ID()] = reason
			h.mu.Unlock()
			h.closed <- closeEvent{c.ID(), reason}
		})
		h.conns <- c
	})
	mux := http.NewServeMux()
	mux.Handle("/engine.io/", h.srv)
	h.ts = httptest.NewServer(mux)
	h.url = h.ts.URL + "/engine.io/"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.srv.Close(ctx); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
		h.ts.Close()
	})
	return h
}

func (h *harness) setOnMessage(f func(c *engineio.Conn, data []byte, binary bool)) {
	h.mu.Lock()
	h.onMsg = f
	h.mu.Unlock()
}

// waitClosed waits for the onClose of sid and returns its reason.
func (h *harness) waitClosed(sid string) string {
	h.t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		h.mu.Lock()
		r, ok := h.reasons[sid]
		h.mu.Unlock()
		if ok {
			return r
		}
		select {
		case <-h.closed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			h.t.Fatalf("session %s not closed", sid)
		}
	}
}

func (h *harness) isClosed(sid string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	_, ok := h.reasons[sid]
	return ok
}

func (h *harness) query(q string) string { return h.url + "?" + q }

func (h *harness) do(method, u, ctype string, body io.Reader) (int, string, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		h.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := h.ts.Client().Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		h.t.Fatalf("%s %s: reading body: %v", method, u, err)
	}
	return resp.StatusCode, string(b), resp.Header
}

func (h *harness) get(sid string) (int, string) {
	h.t.Helper()
	code, body, _ := h.do("GET", h.query("EIO=4&transport=polling&sid="+sid), "", nil)
	return code, body
}

func (h *harness) post(sid, body string) (int, string) {
	h.t.Helper()
	code, b, _ := h.do("POST", h.query("EIO=4&transport=polling&sid="+sid), "text/plain;charset=UTF-8", strings.NewReader(body))
	return code, b
}

// handshake opens a polling session.
func (h *harness) handshake() (string, engineio.OpenInfo) {
	h.t.Helper()
	code, body, _ := h.do("GET", h.query("EIO=4&transport=polling"), "", nil)
	if code != 200 {
		h.t.Fatalf("handshake: %d %s", code, body)
	}
	return parseOpen(h.t, body)
}

func parseOpen(t *testing.T, body string) (string, engineio.OpenInfo) {
	t.Helper()
	if !strings.HasPrefix(body, "0{") {
		t.Fatalf("not an open packet: %q", body)
	}
	var info engineio.OpenInfo
	if err := json.Unmarshal([]byte(body[1:]), &info); err != nil {
		t.Fatalf("open packet %q: %v", body, err)
	}
	return info.SID, info
}

// wsURL turns the harness URL into a websocket URL with the query q.
func (h *harness) wsURL(q string) string {
	return "ws" + strings.TrimPrefix(h.url, "http") + "?" + q
}

// dialWS opens a websocket-only session with a gorilla client and reads the
// open packet.
func (h *harness) dialWS() (*websocket.Conn, string) {
	h.t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(h.wsURL("EIO=4&transport=websocket"), nil)
	if err != nil {
		h.t.Fatalf("dial: %v (%v)", err, resp)
	}
	h.t.Cleanup(func() { ws.Close() })
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	mt, data, err := ws.ReadMessage()
	if err != nil || mt != websocket.TextMessage {
		h.t.Fatalf("open packet: %v %d", err, mt)
	}
	sid, _ := parseOpen(h.t, string(data))
	return ws, sid
}

func readText(t *testing.T, ws *websocket.Conn) string {
	t.Helper()
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		mt, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if mt == websocket.TextMessage && string(data) == "2" { // heartbeat
			_ = ws.WriteMessage(websocket.TextMessage, []byte("3"))
			continue
		}
		if mt == websocket.BinaryMessage {
			return "bin:" + string(data)
		}
		return string(data)
	}
}

// assertServing checks that a fresh websocket client and a fresh polling
// client both get their echo.
func (h *harness) assertServing() {
	h.t.Helper()
	ws, _ := h.dialWS()
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4still alive")); err != nil {
		h.t.Fatal(err)
	}
	if got := readText(h.t, ws); got != "4still alive" {
		h.t.Fatalf("echo over websocket = %q", got)
	}
	ws.Close()
	sid, _ := h.handshake()
	if code, body := h.post(sid, "4polling alive"); code != 200 || body != "ok" {
		h.t.Fatalf("POST: %d %q", code, body)
	}
	if code, body := h.get(sid); code != 200 || body != "4polling alive" {
		h.t.Fatalf("GET: %d %q", code, body)
	}
}

// rawWS is a websocket client on a bare TCP connection, for frames no
// library would send.
type rawWS struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// dialRaw performs the upgrade handshake by hand; extra holds additional
// header lines ("Name: value\r\n").
func (h *harness) dialRaw(q, extra string) *rawWS {
	h.t.Helper()
	u, _ := url.Parse(h.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { conn.Close() })
	req := fmt.Sprintf("GET %s?%s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n%s\r\n", u.Path, q, u.Host, extra)
	if _, err := conn.Write([]byte(req)); err != nil {
		h.t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		h.t.Fatalf("upgrade response: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		h.t.Fatalf("upgrade status %d", resp.StatusCode)
	}
	return &rawWS{t: h.t, conn: conn, br: br}
}

// frame builds a masked client frame.
func frame(fin bool, rsv1 bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	out := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		out = append(out, 0x80|byte(n))
	case n < 1<<16:
		out = append(out, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	key := [4]byte{1, 2, 3, 4}
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

func (r *rawWS) write(b []byte) {
	r.t.Helper()
	_ = r.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := r.conn.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one server frame (unmasked).
func (r *rawWS) readFrame() (op byte, payload []byte, err error) {
	_ = r.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [2]byte
	if _, err = io.ReadFull(r.br, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(hdr[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err = io.ReadFull(r.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err = io.ReadFull(r.br, b[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r.br, payload)
	return hdr[0] & 0x0f, payload, err
}

// readClose reads frames until a close frame and returns its status code
// (1005 for an empty one); it fails the test if the connection ends first.
func (r *rawWS) readClose() int {
	r.t.Helper()
	for {
		op, payload, err := r.readFrame()
		if err != nil {
			r.t.Fatalf("no close frame: %v", err)
		}
		if op == 8 {
			if len(payload) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(payload))
		}
	}
}

// readText reads the next text frame, skipping pings.
func (r *rawWS) readText() string {
	r.t.Helper()
	for {
		op, payload, err := r.readFrame()
		if err != nil {
			r.t.Fatalf("read: %v", err)
		}
		if op == 1 && string(payload) == "2" {
			continue
		}
		if op == 8 {
			r.t.Fatalf("unexpected close frame %x", payload)
		}
		return string(payload)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func decodeJSON(resp *http.Response, v any) error {
	return json.NewDecoder(resp.Body).Decode(v)
}

func copyBody(w io.Writer, resp *http.Response) (int64, error) { return io.Copy(w, resp.Body) }

// waitPending gives a long-poll started on another goroutine time to arrive.
func waitPending(t *testing.T) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
}

// chunkedReader hides the length of its reader, so the request is chunked.
type chunkedReader struct{ r io.Reader }

func (c *chunkedReader) Read(p []byte) (int, error) { return c.r.Read(p) }

func newTestHTTPServer(t *testing.T, srv *engineio.Server) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("Server.Close: %v", err)
		}
		ts.Close()
	})
	return ts
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newBenchServer serves srv on 127.0.0.1 until the benchmark ends.
func newBenchServer(b *testing.B, srv *engineio.Server) string {
	ts := httptest.NewServer(srv)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		ts.Close()
	})
	return ts.URL
}
