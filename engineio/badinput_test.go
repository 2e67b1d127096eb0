package engineio_test

// Regression cases from notes/bad-inputs.md for the Engine.IO layer. Each
// asserts the response to the bad input and that other clients of the same
// server keep being served.

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchboard-io/switchboard/engineio"
)

// rawRequest writes req on a new TCP connection and returns what the server
// answered before closing (or within a second).
func (h *harness) rawRequest(req string) string {
	h.t.Helper()
	u, _ := url.Parse(h.url)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		h.t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	_, _ = conn.Write([]byte(req))
	b, _ := io.ReadAll(conn)
	return string(b)
}

func (h *harness) host() string {
	u, _ := url.Parse(h.url)
	return u.Host
}

// Item 7: ?EIO=4&transport=__proto__, unknown or empty sid.
func TestBadInput07ProtoAndSID(t *testing.T) {
	h := newHarness(t, nil)
	for _, tc := range []struct{ method, q, want string }{
		{"GET", "EIO=4&transport=__proto__", `{"code":0,"message":"Transport unknown"}`},
		{"GET", "EIO=4&transport=constructor", `{"code":0,"message":"Transport unknown"}`},
		{"GET", "EIO=4&transport=polling&sid=__proto__", `{"code":1,"message":"Session ID unknown"}`},
		{"GET", "EIO=4&transport=polling&sid=constructor", `{"code":1,"message":"Session ID unknown"}`},
		{"POST", "EIO=4&transport=polling&sid=unknown", `{"code":1,"message":"Session ID unknown"}`},
		{"POST", "EIO=4&transport=polling&sid=", `{"code":2,"message":"Bad handshake method"}`},
		{"GET", "EIO=4&transport=websocket&sid=__proto__", `{"code":1,"message":"Session ID unknown"}`},
	} {
		code, body, _ := h.do(tc.method, h.query(tc.q), "", nil)
		if code != 400 || body != tc.want {
			t.Errorf("%s %s: %d %s, want 400 %s", tc.method, tc.q, code, body, tc.want)
		}
	}
	// An empty sid on GET is a handshake, as in engine.io.
	code, body, _ := h.do("GET", h.query("EIO=4&transport=polling&sid="), "", nil)
	if code != 200 || !strings.HasPrefix(body, "0{") {
		t.Errorf("GET with empty sid: %d %s", code, body)
	}
	// A websocket upgrade with an unknown sid is refused before upgrading.
	resp := h.rawRequest("GET /engine.io/?EIO=4&transport=websocket&sid=__proto__ HTTP/1.1\r\nHost: " + h.host() +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 400") || !strings.Contains(resp, `"code":1`) {
		t.Errorf("upgrade with unknown sid: %q", resp)
	}
	h.assertServing()
}

// Item 8: an upgrade request with a body; an HTTP/2-style upgrade; a reset
// during abort.
func TestBadInput08UpgradeOddities(t *testing.T) {
	h := newHarness(t, nil)
	upgrade := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

	// Upgrade with a body: refused (the upgrader will not hijack with
	// unread request data) or the connection just ends; never a crash.
	resp := h.rawRequest("GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + h.host() + "\r\n" + upgrade +
		"Content-Length: 11\r\n\r\n4from body\n")
	if strings.HasPrefix(resp, "HTTP/1.1 101") && strings.Contains(resp, "from body") {
		t.Errorf("body of an upgrade request was delivered: %q", resp)
	}
	sid, _ := h.handshake()
	h.rawRequest("GET /engine.io/?EIO=4&transport=websocket&sid=" + sid + " HTTP/1.1\r\nHost: " + h.host() + "\r\n" + upgrade +
		"Content-Length: 6\r\n\r\n2probe")
	if code, _ := h.post(sid, "4still polling"); code != 200 {
		t.Errorf("session after bad upgrade: %d", code)
	}

	// HTTP/2-style upgrade (h2c) on the websocket transport: 400 code 3.
	resp = h.rawRequest("GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + h.host() +
		"\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 400") || !strings.Contains(resp, `"code":3`) {
		t.Errorf("h2c upgrade: %q", resp)
	}
	// h2c on polling: an ordinary handshake.
	resp = h.rawRequest("GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: " + h.host() +
		"\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	if !strings.HasPrefix(resp, "HTTP/1.1 200") {
		t.Errorf("h2c on polling: %q", resp)
	}
	// The HTTP/2 connection preface.
	h.rawRequest("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")

	// Reset (SO_LINGER 0) right after requests that get aborted.
	for _, req := range []string{
		"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: bad\r\nSec-WebSocket-Version: 13\r\n\r\n",
		"GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: x\r\n" + upgrade + "\r\n",
		"GET /engine.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /engine.io/?EIO=4&transport=polling&sid=" + sid + " HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n4abc",
	} {
		conn, err := net.Dial("tcp", h.host())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = conn.Write([]byte(req))
		_ = conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	}
	time.Sleep(50 * time.Millisecond)
	h.assertServing()
}

// Item 9: Content-Type application/octet-stream; overlapping GETs or POSTs.
// (TestPollingOctetStream, TestPollingConcurrentGet and
// TestPollingConcurrentPost cover each in detail.)
func TestBadInput09PollingOverlap(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	code, body, _ := h.do("POST", h.query("EIO=4&transport=polling&sid="+sid), "application/octet-stream", bytes.NewReader([]byte{'4', 0xff, 0x00}))
	if code != 200 || body != "ok" {
		t.Errorf("octet-stream POST: %d %q", code, body)
	}
	if code, body := h.get(sid); code != 200 || body != "4\xff\x00" {
		t.Errorf("echo: %d %q", code, body)
	}
	done := make(chan string, 1)
	go func() { _, b := h.get(sid); done <- b }()
	waitPending(t)
	if code, _ := h.get(sid); code != 400 {
		t.Errorf("overlapping GET: %d", code)
	}
	if b := <-done; b != "1" {
		t.Errorf("pending GET: %q", b)
	}
	h.assertServing()
}

// Item 10: headers over the limit so that Upgrade is missing; hostile
// Sec-WebSocket-Extensions and Sec-WebSocket-Protocol.
func TestBadInput10Headers(t *testing.T) {
	for _, deflate := range []bool{false, true} {
		t.Run(fmt.Sprintf("deflate=%v", deflate), func(t *testing.T) {
			opts := &engineio.Options{}
			if deflate {
				opts.PerMessageDeflate = &engineio.DeflateOptions{}
			}
			h := newHarness(t, opts)
			// Headers over net/http's limit: 431 before we see them.
			resp := h.rawRequest("GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + h.host() +
				"\r\nX-Big: " + strings.Repeat("a", 2<<20) + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
			if !strings.HasPrefix(resp, "HTTP/1.1 431") {
				t.Errorf("huge headers: %.60q", resp)
			}
			// Upgrade header lost: 400 code 3.
			resp = h.rawRequest("GET /engine.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: " + h.host() +
				"\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
			if !strings.HasPrefix(resp, "HTTP/1.1 400") || !strings.Contains(resp, `"code":3`) {
				t.Errorf("missing Upgrade: %q", resp)
			}
			// Prototype-pollution style extension parameters are ignored.
			raw := h.dialRaw("EIO=4&transport=websocket", "Sec-WebSocket-Extensions: constructor; __proto__=1, permessage-deflate; __proto__=1\r\n")
			raw.readText()
			raw.write(frame(true, false, 1, []byte("4ext")))
			if got := raw.readText(); got != "4ext" {
				t.Errorf("echo after odd extensions: %q", got)
			}
			// Thousands of commas in Sec-WebSocket-Protocol: ignored.
			raw = h.dialRaw("EIO=4&transport=websocket", "Sec-WebSocket-Protocol: "+strings.Repeat(",", 50000)+"\r\n")
			raw.readText()
			raw.write(frame(true, false, 1, []byte("4commas")))
			if got := raw.readText(); got != "4commas" {
				t.Errorf("echo after commas: %q", got)
			}
			h.assertServing()
		})
	}
}

// Item 11: a frame with a 64-bit length of FFFFFFFFFFFFFFFF → close 1002.
func TestBadInput11HugeLength(t *testing.T) {
	h := newHarness(t, nil)
	for _, tail := range [][]byte{nil, {1, 2, 3, 4, 'x'}} {
		raw := h.dialRaw("EIO=4&transport=websocket", "")
		raw.readText()
		c := <-h.conns
		raw.write(append([]byte{0x82, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}, tail...))
		if code := raw.readClose(); code != 1002 {
			t.Errorf("close code %d, want 1002", code)
		}
		if r := h.waitClosed(c.ID()); r != "transport error" {
			t.Errorf("reason %q", r)
		}
	}
	// Just over int64 in the 8-byte length, and a length over MaxHTTPBufferSize.
	raw := h.dialRaw("EIO=4&transport=websocket", "")
	raw.readText()
	raw.write([]byte{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0})
	if code := raw.readClose(); code != 1002 {
		t.Errorf("top bit set: close code %d, want 1002", code)
	}
	raw = h.dialRaw("EIO=4&transport=websocket", "")
	raw.readText()
	raw.write([]byte{0x81, 0xFF, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4})
	if code := raw.readClose(); code != 1009 {
		t.Errorf("2 GiB frame: close code %d, want 1009", code)
	}
	h.assertServing()
}

// deflateRaw compresses p as a permessage-deflate payload.
func deflateRaw(t *testing.T, p []byte) []byte {
	var b bytes.Buffer
	fw, err := flate.NewWriter(&b, flate.DefaultCompression)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(p)
	_ = fw.Flush()
	out := b.Bytes()
	return out[:len(out)-4] // strip 00 00 ff ff
}

// Item 12 (deflate on): a deflate bomb → close 1009 without inflating it all;
// an empty compressed frame does not panic.
func TestBadInput12DeflateBomb(t *testing.T) {
	// The server does not compress its (echo) messages: this raw client
	// does not inflate.
	h := newHarness(t, &engineio.Options{PerMessageDeflate: &engineio.DeflateOptions{Threshold: 2_000_000}})
	ext := "Sec-WebSocket-Extensions: permessage-deflate\r\n"

	// A valid compressed message works.
	raw := h.dialRaw("EIO=4&transport=websocket", ext)
	raw.readText()
	raw.write(frame(true, true, 1, deflateRaw(t, []byte("4compressed"))))
	if got := raw.readText(); got != "4compressed" {
		t.Errorf("compressed echo %q", got)
	}

	// 16 MB of zeros, about 16 KB compressed.
	bomb := deflateRaw(t, append([]byte("4"), make([]byte, 16<<20)...))
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	raw = h.dialRaw("EIO=4&transport=websocket", ext)
	raw.readText()
	<-h.conns // the session above
	c := <-h.conns
	raw.write(frame(true, true, 1, bomb))
	if code := raw.readClose(); code != 1009 {
		t.Errorf("bomb: close code %d, want 1009", code)
	}
	if r := h.waitClosed(c.ID()); r != "transport error" {
		t.Errorf("reason %q", r)
	}

	// Exactly MaxHTTPBufferSize inflated passes.
	raw = h.dialRaw("EIO=4&transport=websocket", ext)
	raw.readText()
	exact := append([]byte("4"), bytes.Repeat([]byte("z"), 999_999)...)
	raw.write(frame(true, true, 1, deflateRaw(t, exact)))
	if got := raw.readText(); got != string(exact) {
		t.Errorf("1e6 inflated bytes: echo of %d bytes", len(got))
	}

	// Empty compressed payloads: no data at all is invalid deflate (1007);
	// an empty stored block is an empty message: a parse error for text
	// (close 1000), an empty binary message otherwise (echoed).
	for _, tc := range []struct {
		op      byte
		payload []byte
		close   int
	}{
		{1, nil, 1007},
		{2, nil, 1007},
		{1, []byte{0}, 1000},
		{2, []byte{0}, 0},
	} {
		raw = h.dialRaw("EIO=4&transport=websocket", ext)
		raw.readText()
		raw.write(frame(true, true, tc.op, tc.payload))
		if tc.close == 0 {
			op, payload, err := raw.readFrame()
			if err != nil || op != 2 || len(payload) != 0 {
				t.Errorf("empty binary: %d %q %v", op, payload, err)
			}
			continue
		}
		if code := raw.readClose(); code != tc.close {
			t.Errorf("empty compressed op %d payload %v: close %d, want %d", tc.op, tc.payload, code, tc.close)
		}
	}
	h.assertServing()
}

// Item 13: a FIN=0 frame followed by 10^5 empty continuation frames; input
// in 1-byte writes.
func TestBadInput13Fragments(t *testing.T) {
	h := newHarness(t, nil)
	raw := h.dialRaw("EIO=4&transport=websocket", "")
	raw.readText()
	c := <-h.conns
	conn := raw.conn
	wrote := make(chan struct{})
	defer func() { <-wrote }()
	go func() {
		defer close(wrote)
		buf := frame(false, false, 1, []byte("4"))
		cont := frame(false, false, 0, nil)
		for i := 0; i < 100_000; i++ {
			buf = append(buf, cont...)
		}
		for len(buf) > 0 {
			n := min(len(buf), 6000)
			if _, err := conn.Write(buf[:n]); err != nil {
				return
			}
			buf = buf[n:]
		}
	}()
	if code := raw.readClose(); code != 1009 {
		t.Errorf("close code %d, want 1009", code)
	}
	if r := h.waitClosed(c.ID()); r != "transport error" {
		t.Errorf("reason %q", r)
	}

	// A few fragments are fine.
	raw = h.dialRaw("EIO=4&transport=websocket", "")
	raw.readText()
	raw.write(frame(false, false, 1, []byte("4a")))
	for i := 0; i < 100; i++ {
		raw.write(frame(false, false, 0, nil))
	}
	raw.write(frame(true, false, 0, []byte("b")))
	if got := raw.readText(); got != "4ab" {
		t.Errorf("fragmented echo %q", got)
	}

	// Byte-at-a-time input.
	msg := append(frame(true, false, 1, []byte("4slow")), frame(true, false, 2, []byte{9, 8})...)
	for _, b := range msg {
		raw.write([]byte{b})
	}
	if got := raw.readText(); got != "4slow" {
		t.Errorf("1-byte writes: %q", got)
	}
	if op, payload, err := raw.readFrame(); err != nil || op != 2 || !bytes.Equal(payload, []byte{9, 8}) {
		t.Errorf("1-byte writes, binary: %d %v %v", op, payload, err)
	}
	h.assertServing()
}

// Item 14: close frames with a 1-byte payload, status 1005/1006/999, a
// reason over 123 bytes → close 1002.
func TestBadInput14CloseFrames(t *testing.T) {
	h := newHarness(t, nil)
	status := func(code uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, code), reason...)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		want    int
	}{
		{"1-byte payload", []byte{3}, 1002},
		{"status 1005", status(1005, ""), 1002},
		{"status 1006", status(1006, ""), 1002},
		{"status 999", status(999, ""), 1002},
		{"status 1004", status(1004, ""), 1002},
		{"reason of 124 bytes", status(1000, strings.Repeat("r", 124)), 1002},
		{"invalid UTF-8 reason", status(1000, "\xff"), 1002},
		{"normal", status(1000, "bye"), 1000},
		{"empty", nil, 1005},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := h.dialRaw("EIO=4&transport=websocket", "")
			raw.readText()
			c := <-h.conns
			raw.write(frame(true, false, 8, tc.payload))
			if code := raw.readClose(); code != tc.want {
				t.Errorf("close code %d, want %d", code, tc.want)
			}
			h.waitClosed(c.ID())
		})
	}
	h.assertServing()
}

// Item 5 on this layer: a huge polling body is refused with 413 without
// being buffered; a long run of separators parses in linear time.
func TestBadInput05LargeBodies(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	req, _ := http.NewRequest("POST", h.query("EIO=4&transport=polling&sid="+sid), &chunkedReader{r: io.LimitReader(zeroReader{}, 100<<20)})
	resp, err := h.ts.Client().Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 413 {
			t.Errorf("100 MB POST: %d", resp.StatusCode)
		}
	}
	var n atomic.Int64
	h.setOnMessage(func(*engineio.Conn, []byte, bool) { n.Add(1) })
	body := strings.Repeat("4\x1e", 400_000) + "4"
	if code, _ := h.post(sid, body); code != 200 {
		t.Errorf("many packets: %d", code)
	}
	if n.Load() != 400_001 {
		t.Errorf("delivered %d messages", n.Load())
	}
	h.setOnMessage(echo)
	h.assertServing()
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
