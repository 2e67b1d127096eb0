package engineio_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/engineio"
)

// parkingHarness is a harness whose idle websockets release their reader
// after 20 ms.
func parkingHarness(t *testing.T, opts engineio.Options) *harness {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("idle readers park only on Linux (epoll)")
	}
	opts.ReleaseIdleReaderAfter = 20 * time.Millisecond
	return newHarness(t, &opts)
}

func waitParked(t *testing.T, h *harness, n int) {
	t.Helper()
	waitFor(t, "parked readers", func() bool { return h.srv.ParkedReaders() == n })
}

// An idle websocket parks; a message resumes it and is answered; it parks
// again; and it does so over and over without losing or reordering data.
func TestParkedReaderResumes(t *testing.T) {
	h := parkingHarness(t, engineio.Options{})
	ws, _ := h.dialWS()
	for i := range 5 {
		waitParked(t, h, 1)
		msg := "4hello " + string(rune('a'+i))
		if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := readText(t, ws); got != msg {
			t.Fatalf("echo after parking = %q, want %q", got, msg)
		}
	}
	// A burst written at once, some of it while the reader resumes.
	for i := range 100 {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("4n"+string(rune('0'+i%10)))); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 100 {
		if got, want := readText(t, ws), "4n"+string(rune('0'+i%10)); got != want {
			t.Fatalf("burst message %d = %q, want %q", i, got, want)
		}
	}
	waitParked(t, h, 1)
}

// Heartbeats keep a parked connection alive: each pong resumes the reader.
func TestParkedReaderHeartbeat(t *testing.T) {
	h := parkingHarness(t, engineio.Options{PingInterval: 60 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	ws, sid := h.dialWS()
	pongs := 0
	for pongs < 6 {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, data, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("after %d pongs: %v", pongs, err)
		}
		if string(data) == "2" {
			if err := ws.WriteMessage(websocket.TextMessage, []byte("3")); err != nil {
				t.Fatal(err)
			}
			pongs++
		}
	}
	if h.isClosed(sid) {
		t.Fatal("session closed although every ping was answered")
	}
}

// A parked connection still ends: on the peer's close frame, on the peer
// vanishing, and on the server's Close.
func TestParkedReaderCloses(t *testing.T) {
	h := parkingHarness(t, engineio.Options{})

	ws, sid := h.dialWS()
	waitParked(t, h, 1)
	_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	if r := h.waitClosed(sid); r != "transport close" {
		t.Errorf("peer close frame: reason %q", r)
	}

	ws, sid = h.dialWS()
	waitParked(t, h, 1)
	ws.Close() // no close frame
	if r := h.waitClosed(sid); r != "transport close" {
		t.Errorf("peer gone: reason %q", r)
	}

	ws, sid = h.dialWS()
	c := <-h.conns
	for c.ID() != sid {
		c = <-h.conns
	}
	waitParked(t, h, 1)
	c.Close("bye")
	_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
				t.Errorf("server close of a parked connection: client saw %v, want a normal close frame", err)
			}
			break
		}
	}
	if r := h.waitClosed(sid); r != "bye" {
		t.Errorf("server close: reason %q", r)
	}
	waitParked(t, h, 0)
	h.assertServing()
}

// Server.Close ends parked connections (their readers resume and finish).
func TestParkedReadersServerClose(t *testing.T) {
	h := parkingHarness(t, engineio.Options{})
	var socks []*websocket.Conn
	for range 5 {
		ws, _ := h.dialWS()
		socks = append(socks, ws)
	}
	waitParked(t, h, 5)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Close(ctx); err != nil {
		t.Fatalf("Close with parked readers: %v", err)
	}
	for i, ws := range socks {
		_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
					t.Errorf("client %d: %v, want a normal close frame", i, err)
				}
				break
			}
		}
	}
	if n := h.srv.ParkedReaders(); n != 0 {
		t.Errorf("%d readers still parked after Close", n)
	}
}

// A negative ReleaseIdleReaderAfter keeps every reader.
func TestParkingOff(t *testing.T) {
	h := newHarness(t, &engineio.Options{ReleaseIdleReaderAfter: -1})
	ws, _ := h.dialWS()
	time.Sleep(100 * time.Millisecond) // idle far longer than any parking delay used in tests
	if n := h.srv.ParkedReaders(); n != 0 {
		t.Fatalf("%d readers parked with parking off", n)
	}
	if err := ws.WriteMessage(websocket.TextMessage, []byte("4x")); err != nil {
		t.Fatal(err)
	}
	if got := readText(t, ws); got != "4x" {
		t.Fatalf("echo = %q", got)
	}
}

// The idle sweep interrupts waits while messages arrive: with a 4 ms
// release (a sweep every 1 ms), clients whose gaps straddle it park and
// resume over and over,
// and some messages land just as a wait is interrupted. Every message is
// answered, in order, on every connection, and no session closes.
func TestParkSweepRacesMessages(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("idle readers park only on Linux (epoll)")
	}
	h := newHarness(t, &engineio.Options{ReleaseIdleReaderAfter: 4 * time.Millisecond})
	const clients, messages = 4, 150
	done := make(chan error, clients)
	var sids []string
	for c := range clients {
		ws, sid := h.dialWS()
		sids = append(sids, sid)
		go func() {
			for i := range messages {
				// Gaps of 0 to 6 ms, around the release.
				time.Sleep(time.Duration((i*7+c*3)%13) * 500 * time.Microsecond)
				msg := fmt.Sprintf("4c%d-%d", c, i)
				if err := ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
					done <- err
					return
				}
				_ = ws.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, data, err := ws.ReadMessage()
				if err != nil {
					done <- fmt.Errorf("client %d, message %d: %w", c, i, err)
					return
				}
				if string(data) != msg {
					done <- fmt.Errorf("client %d: got %q, want %q", c, data, msg)
					return
				}
			}
			done <- nil
		}()
	}
	for range clients {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for _, sid := range sids {
		if h.isClosed(sid) {
			t.Fatalf("session %s closed", sid)
		}
	}
	waitParked(t, h, clients)
}
