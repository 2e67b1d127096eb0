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
// before its reader goroutine is released (after between one and 1.25
// times this: see poller.sweepIdle). Short, because what a reader holds is
// paid at every connection's busiest moment: a connection storm at 5,800
// per second with readers kept 500 ms left ~16 MB of goroutine stacks
// behind at 19,000 connections (until a collection frees them), 0.8 KiB of
// RSS per connection, against ~5 MB at 100 ms. A connection sending more
// often than this never parks; one sending every few hundred ms pays a
// park and resume per message: ~10 µs of server CPU (one epoll_ctl, one
// goroutine start; 39.5 vs 29 µs per round trip for 2,000 clients sending
// every 300 ms, switchboard-bench echo -interval 300ms).
const defaultReleaseIdleReaderAfter = 100 * time.Millisecond

// parkState is a websocket's side of parking.
type parkState struct {
	fd     int            // the socket's descriptor; -1 when it cannot park
	poller *poller        // the server's; nil when readers never park
	parked atomic.Bool    // no reader goroutine: the poller (or a close) resumes
	closed atomic.Bool    // the connection was closed: never park again
	owner  *Conn          // whose reader runs or resumes; set before watch or park
	inSet  *epollInstance // the poller's epoll set t was added to (guarded by the poller's mu)

	// Where the reader and the poller's idle sweep meet: the sweep
	// interrupts a reader that waits for a message and has started none
	// since the previous sweep, and the reader then parks.
	state       atomic.Int32  // readerBusy, readerWaiting or readerInterrupted
	reads       atomic.Uint32 // waits that ended with data
	sweptReads  uint32        // reads at the previous sweep (the sweep's own)
	quietSweeps uint8         // sweeps in a row that saw no new read (the sweep's own)
}

const (
	readerBusy        = iota // reading or delivering a message
	readerWaiting            // waiting for a message's first byte
	readerInterrupted        // the sweep set a past read deadline (under the Conn's mu)
)

// waitIdle waits until t has data to read or the idle sweep interrupts the
// wait. It reports parkNow when the sweep found the connection silent and
// it is open, so that the reader can park; err is a read error to end the
// session with. A busy connection pays two atomic operations here: no
// deadline per message, no lock.
func (c *Conn) waitIdle(t *wsTransport) (parkNow bool, err error) {
	ps := &t.park
	ps.state.Store(readerWaiting)
	_, err = t.br.Peek(1)
	if !ps.state.CompareAndSwap(readerWaiting, readerBusy) {
		// The sweep set a past deadline under c.mu: clear it, unless the
		// connection is closing (its writer's deadline, set after the
		// state changed, then bounds the read and must stay).
		c.mu.Lock()
		open := c.state == stateOpen
		if open {
			_ = t.raw.Conn.SetReadDeadline(time.Time{})
		}
		ps.state.Store(readerBusy)
		c.mu.Unlock()
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			return open, nil
		}
	}
	if err == nil {
		ps.reads.Add(1)
		return false, nil
	}
	if pe := (*protocolError)(nil); errors.As(err, &pe) {
		return false, err
	}
	// Other errors (EOF, a reset, a closed connection, a closing writer's
	// deadline) come again from the socket; gorilla reads them next and
	// reports them as it always does.
	return false, nil
}

// interruptIfWaiting is the sweep's side of waitIdle: it makes a reader
// that waits for a message return from its wait. The sweep calls it
// without the poller's mu; it takes the Conn's.
func (t *wsTransport) interruptIfWaiting() {
	c := t.park.owner
	c.mu.Lock()
	if c.state == stateOpen && t.park.state.CompareAndSwap(readerWaiting, readerInterrupted) {
		_ = t.raw.Conn.SetReadDeadline(time.Unix(1, 0))
	}
	c.mu.Unlock()
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
