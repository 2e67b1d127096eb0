package engineio

import (
	"errors"
	"os"
	"sync/atomic"
	"time"
)

// Idle websockets give up their reader goroutine. A connection that has
// received nothing for Options.ReleaseIdleReaderAfter, with nothing left
// in its read buffer (so at a message boundary), hands its file descriptor
// to the server's poller and the reader goroutine ends: an idle connection
// then holds no goroutine and no stack. When data (or the peer's close)
// arrives, or the server closes the connection, a new reader goroutine
// picks up where the old one left. Where there is no poller (not Linux, or
// a connection without a file descriptor, such as TLS served by Go), the
// reader simply keeps waiting.

// defaultReleaseIdleReaderAfter is how long a websocket may stay silent
// before its reader goroutine is released. Short, because a resumed reader
// (one per heartbeat on an idle connection) keeps its goroutine and stack
// this long: at 2 s, 8 % of idle connections (2 s of the 25 s ping
// interval) held one, ~0.4 KiB of RSS per connection at 19,000. A
// connection sending more often than this never parks; one sending every
// second or so pays a park and resume (a goroutine start and two epoll_ctl
// calls, a few µs) per message.
const defaultReleaseIdleReaderAfter = 500 * time.Millisecond

// parkState is a websocket's side of parking.
type parkState struct {
	fd     int         // the socket's descriptor; -1 when it cannot park
	poller *poller     // the server's; nil when readers never park
	parked atomic.Bool // no reader goroutine: the poller (or a close) resumes
	closed atomic.Bool // the connection was closed: never park again
	owner  *Conn       // whose reader resumes (readLoop); set before parked
}

// waitIdle waits until t has data to read, at most idle. It reports
// parkNow when the connection stayed silent and is open, so that the
// reader can park; err is a read error to end the session with.
func (c *Conn) waitIdle(t *wsTransport, idle time.Duration) (parkNow bool, err error) {
	c.mu.Lock()
	open := c.state == stateOpen
	if open {
		_ = t.raw.Conn.SetReadDeadline(time.Now().Add(idle))
	}
	c.mu.Unlock()
	if !open {
		return false, nil // closing: the writer's deadline bounds the read
	}
	_, err = t.br.Peek(1)
	c.mu.Lock()
	open = c.state == stateOpen
	if open {
		// Under c.mu, so that a closing writer's deadline, set after the
		// state changed, is never cleared here.
		_ = t.raw.Conn.SetReadDeadline(time.Time{})
	}
	c.mu.Unlock()
	if err == nil {
		return false, nil
	}
	if errors.Is(err, os.ErrDeadlineExceeded) && open {
		return true, nil
	}
	if pe := (*protocolError)(nil); errors.As(err, &pe) {
		return false, err
	}
	// Other errors (EOF, a reset, a closed connection) come again from the
	// socket; gorilla reads them next and reports them as it always does.
	return false, nil
}

// parkReader hands t to the poller; false when it cannot (the reader goes on
// waiting itself).
func (t *wsTransport) parkReader() bool {
	ps := &t.park
	if ps.poller == nil || ps.fd < 0 || ps.closed.Load() {
		return false
	}
	ps.parked.Store(true)
	if !ps.poller.add(ps.fd, t) {
		ps.parked.Store(false)
		return false
	}
	// A close between the check above and add: the close may have missed
	// the registration, so resume here (the reader then sees the close).
	if ps.closed.Load() {
		ps.poller.remove(ps.fd, t)
		t.wake()
	}
	return true
}

// wake starts a reader goroutine if t is parked; only one caller wins.
func (t *wsTransport) wake() {
	if t.park.parked.CompareAndSwap(true, false) {
		go t.park.owner.readLoop(t, false)
	}
}

// unpark is called when the connection closes or starts closing: it
// leaves the poller and resumes a parked reader, which then finds the
// connection closed (or waits for the peer's close frame, bounded by the
// closing deadline) and finishes the session.
func (t *wsTransport) unpark() {
	ps := &t.park
	ps.closed.Store(true)
	if ps.poller != nil && ps.fd >= 0 {
		ps.poller.remove(ps.fd, t)
	}
	t.wake()
}
