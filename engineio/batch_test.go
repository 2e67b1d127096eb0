package engineio_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/switchboard-io/switchboard/engineio"
)

// broadcast sends msg to every conn through one Batch, as a broadcast does.
func broadcast(t *testing.T, conns []*engineio.Conn, msgs ...engineio.Message) {
	t.Helper()
	var b engineio.Batch
	for _, c := range conns {
		if err := c.SendBatched(&b, msgs...); err != nil {
			t.Errorf("SendBatched: %v", err)
		}
	}
	b.Flush()
}

// Broadcasts through a Batch to more websocket sessions than one flushing
// goroutine takes, mixed with plain sends and a large message that the
// socket cannot take at once: every client gets every message, in order.
func TestBatchDeliversInOrder(t *testing.T) {
	h := newHarness(t, &engineio.Options{MaxBufferedBytes: 64 << 20})
	const n = 90 // more than one flushing goroutine takes (the harness holds up to 100 sessions)
	clients := make([]*websocket.Conn, n)
	conns := make([]*engineio.Conn, n)
	for i := range n {
		clients[i], _ = h.dialWS()
		conns[i] = <-h.conns
	}
	big := strings.Repeat("z", 1<<20) // more than the sockets take while the clients do not read
	const rounds = 20
	for r := range rounds {
		switch {
		case r == 7:
			broadcast(t, conns, engineio.Message{Data: []byte(big)})
		case r%3 == 0:
			for _, c := range conns {
				if err := c.Send(engineio.Message{Data: []byte(fmt.Sprint(r))}); err != nil {
					t.Fatal(err)
				}
			}
		default:
			broadcast(t, conns, engineio.Message{Data: []byte(fmt.Sprint(r))}, engineio.Message{Data: []byte{byte(r)}, Binary: true})
		}
	}
	for i, ws := range clients {
		for r := range rounds {
			want := fmt.Sprintf("4%d", r)
			if r == 7 {
				want = "4" + big
			}
			if got := readText(t, ws); got != want {
				t.Fatalf("client %d, round %d: %.20q (len %d), want %.20q", i, r, got, len(got), want)
			}
			if r != 7 && r%3 != 0 {
				if got := readText(t, ws); got != "bin:"+string([]byte{byte(r)}) {
					t.Fatalf("client %d, round %d: binary %q", i, r, got)
				}
			}
		}
	}
	// The sessions still work.
	for _, ws := range clients {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("4again")); err != nil {
			t.Fatal(err)
		}
		if got := readText(t, ws); got != "4again" {
			t.Fatalf("echo after the broadcasts: %q", got)
		}
	}
}

// A polling session in a batch is served as by Send: its next GET gets the
// message.
func TestBatchPollingSession(t *testing.T) {
	h := newHarness(t, nil)
	sid, _ := h.handshake()
	c := <-h.conns
	broadcast(t, []*engineio.Conn{c}, engineio.Message{Data: []byte("hi")})
	if code, body := h.get(sid); code != 200 || body != "4hi" {
		t.Fatalf("GET: %d %q", code, body)
	}
}

// A closed session refuses a batched send; the others still get it.
func TestBatchClosedSession(t *testing.T) {
	h := newHarness(t, nil)
	ws1, sid1 := h.dialWS()
	c1 := <-h.conns
	ws2, _ := h.dialWS()
	c2 := <-h.conns
	ws1.Close()
	h.waitClosed(sid1)
	var b engineio.Batch
	if err := c1.SendBatched(&b, engineio.Message{Data: []byte("x")}); err != engineio.ErrClosed {
		t.Errorf("SendBatched on a closed session: %v, want ErrClosed", err)
	}
	if err := c2.SendBatched(&b, engineio.Message{Data: []byte("y")}); err != nil {
		t.Fatal(err)
	}
	b.Flush()
	if got := readText(t, ws2); got != "4y" {
		t.Fatalf("got %q", got)
	}
}

// A message to compress is written by the connection's writer (through
// gorilla's deflate), in order with the small ones the batch writes itself.
func TestBatchDeflate(t *testing.T) {
	h := newHarness(t, &engineio.Options{PerMessageDeflate: &engineio.DeflateOptions{Threshold: 16}})
	d := websocket.Dialer{EnableCompression: true}
	ws, _, err := d.Dial(h.wsURL("EIO=4&transport=websocket"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	readText(t, ws) // open
	c := <-h.conns
	big := strings.Repeat("compress me ", 1000)
	for _, m := range []string{"a", big, "b"} {
		broadcast(t, []*engineio.Conn{c}, engineio.Message{Data: []byte(m)})
	}
	for _, want := range []string{"4a", "4" + big, "4b"} {
		if got := readText(t, ws); got != want {
			t.Fatalf("got %.20q (len %d), want %.20q", got, len(got), want)
		}
	}
}
