package engineio

import (
	"errors"
	"runtime/debug"
	"sync"
	"time"
)

// Errors returned by Conn.Send.
var (
	// ErrClosed is returned by Send once the connection is closing or closed.
	ErrClosed = errors.New("engineio: connection closed")
	// ErrSlowConsumer is returned by the Send that found more than
	// Options.MaxBufferedBytes queued; that Send closed the connection with
	// reason "slow consumer".
	ErrSlowConsumer = errors.New("engineio: slow consumer")
)

// Message is one application message. Data is not modified by the package
// and may be shared between connections; it must not be modified until the
// message was written (in practice: treat it as immutable).
type Message struct {
	Data   []byte
	Binary bool
}

type connState uint8

const (
	stateOpen    connState = iota
	stateClosing           // Close called: flushing, then closing
	stateClosed            // finished: removed from the server, onClose scheduled
)

type closeMode uint8

const (
	closeGraceful  closeMode = iota // Conn.Close: flush briefly, close packet
	closeShutdown                   // Server.Close: like graceful, but an idle long-poll session ends now
	closeImmediate                  // errors: drop the transport now
)

const (
	// closeFlushTimeout bounds the flush of a closing websocket and the wait
	// for the peer's close frame.
	closeFlushTimeout = time.Second
	// maxPooledQueue is the largest queue slice kept for reuse.
	maxPooledQueue = 1024
)

var queuePool = sync.Pool{New: func() any { q := make([]Packet, 0, 16); return &q }}

func releaseQueue(q *[]Packet) {
	if q == nil || cap(*q) > maxPooledQueue {
		return
	}
	clear(*q)
	*q = (*q)[:0]
	queuePool.Put(q)
}

// Conn is one Engine.IO session. Its methods are safe for concurrent use.
//
// Lock order: recvMu before mu; Server.mu before mu. No callback is called
// with mu held.
type Conn struct {
	srv   *Server
	id    string
	req   handshakeInfo
	ready sync.WaitGroup // done when onConnection returned (a WaitGroup: 16 bytes, a channel ~100)

	// recvMu is held while onMessage and the start of onClose run, so that
	// they never run concurrently; done (guarded by recvMu) stops delivery.
	recvMu sync.Mutex
	done   bool

	mu        sync.Mutex
	onMessage func(data []byte, binary bool)
	onClose   func(reason string)
	transport string
	state     connState
	reason    string
	shutdown  bool      // closing because the server shuts down
	queue     *[]Packet // pooled; nil when empty
	queued    int       // bytes queued or being written

	// polling
	polling    bool          // a GET is pending
	posting    bool          // a POST is being processed
	wake       chan struct{} // wakes the pending GET
	closeTimer *time.Timer   // graceful close waiting for the next GET

	// websocket
	ws           *wsTransport // active websocket; nil while polling
	writing      bool         // a writer goroutine is running
	probe        *wsTransport // websocket being probed for an upgrade
	upgrading    bool         // probe answered: pending GETs get a noop
	upgradeTimer *time.Timer

	// heartbeat
	hbTimer *time.Timer
	hbGen   uint64
	hbWait  bool // a ping is out, waiting for the pong
}

// ID returns the session id.
func (c *Conn) ID() string { return c.id }

// Transport returns the current transport: "polling" or "websocket".
func (c *Conn) Transport() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.transport
}

// SetHandlers sets the callbacks of the session; call it inside the
// onConnection callback given to NewServer. onMessage is never called
// concurrently with itself and gets messages in order; data is only valid
// during the call. onClose is called exactly once, after the last
// onMessage, with the close reason. Either may be nil. A panic in either is
// recovered and logged, and closes this session only.
func (c *Conn) SetHandlers(onMessage func(data []byte, binary bool), onClose func(reason string)) {
	c.mu.Lock()
	c.onMessage = onMessage
	c.onClose = onClose
	c.mu.Unlock()
}

// Send queues msgs to go out contiguously and in order; it never blocks on
// the network. It returns ErrClosed once the connection is closing or
// closed. If the queued data would exceed Options.MaxBufferedBytes, nothing
// is queued, the connection closes with reason "slow consumer" and Send
// returns ErrSlowConsumer.
func (c *Conn) Send(msgs ...Message) error { return c.send(nil, msgs) }

// send queues msgs and starts the writer, or adds c to b (see SendBatched).
func (c *Conn) send(b *Batch, msgs []Message) error {
	n := 0
	for _, m := range msgs {
		n += len(m.Data) + 1
	}
	c.mu.Lock()
	if c.state != stateOpen {
		c.mu.Unlock()
		return ErrClosed
	}
	if c.queued+n > c.srv.opts.MaxBufferedBytes {
		c.mu.Unlock()
		c.close("slow consumer", closeImmediate)
		return ErrSlowConsumer
	}
	for _, m := range msgs {
		c.pushLocked(Packet{Type: MessagePacket, Data: m.Data, Binary: m.Binary})
	}
	c.queued += n
	if b == nil || c.ws == nil || c.writing {
		c.kickLocked()
	} else {
		c.writing = true
		c.srv.wg.Add(1) // as kickLocked: the flush holds the writer's count
		b.conns = append(b.conns, c)
	}
	c.mu.Unlock()
	return nil
}

// SendNow is Send for a reply that has nothing to be coalesced with (an
// acknowledgement, say): when the session is on a websocket with nothing
// queued and no write in progress, it writes msgs on the calling goroutine
// with one non-blocking write, and leaves only what the socket did not take
// to the writer goroutine. Otherwise it is Send. Like Send it never blocks
// on the network. A broadcast should use Send, which lets a connection's
// writer coalesce many messages into one write.
func (c *Conn) SendNow(msgs ...Message) error {
	n := 0
	for _, m := range msgs {
		n += len(m.Data) + 1
	}
	c.mu.Lock()
	t := c.ws
	if t == nil || c.writing || c.state != stateOpen || (c.queue != nil && len(*c.queue) > 0) ||
		c.queued+n > c.srv.opts.MaxBufferedBytes || !t.raw.directOK(longestMessage(msgs), c.srv.opts.PerMessageDeflate) {
		c.mu.Unlock()
		return c.Send(msgs...)
	}
	c.writing = true
	c.srv.wg.Add(1) // as kickLocked: the direct write holds the writer's count
	c.mu.Unlock()

	// An error is queued-and-lost, as with a failing writer: Send succeeded.
	c.endDirectWrite(t, t.raw.writeDirect(msgs), 0)
	return nil
}

// endDirectWrite ends a direct write (SendNow, a Batch's flush) made with
// the writer's role and one count of the server's WaitGroup, after which
// queuedDone bytes are no longer queued. On err the session closes; when
// nothing is left to write the role ends; otherwise (more was queued
// meanwhile, the socket did not take everything, or the session is
// closing) the writer goroutine takes over, with the count.
func (c *Conn) endDirectWrite(t *wsTransport, err error, queuedDone int) {
	c.mu.Lock()
	c.queued -= queuedDone
	switch {
	case err != nil:
		c.writing = false
		c.mu.Unlock()
		c.srv.wg.Done()
		c.close("transport error", closeImmediate)
	case c.state == stateClosed || (c.state == stateOpen && c.queue == nil && !t.raw.hasTail()):
		c.writing = false
		c.mu.Unlock()
		c.srv.wg.Done()
	default:
		c.mu.Unlock()
		go c.writeLoop(t)
	}
}

func longestMessage(msgs []Message) int {
	n := 0
	for _, m := range msgs {
		n = max(n, len(m.Data))
	}
	return n
}

// Close closes the session with reason, which onClose receives. What is
// queued is flushed first, briefly: on websocket for at most a second, then
// a close frame; on polling with the next long-poll, which also gets a close
// packet (the session ends after PingTimeout if none comes). Close does not
// block; calling it again has no effect.
func (c *Conn) Close(reason string) { c.close(reason, closeGraceful) }

func (c *Conn) close(reason string, mode closeMode) {
	c.mu.Lock()
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	if c.state == stateClosing && mode != closeImmediate {
		// A server shutdown does not wait for a polling client to come
		// back for the close packet of a session already closing.
		if mode == closeShutdown && c.ws == nil && c.probe == nil && !c.polling {
			c.finishLocked()
			return
		}
		if mode == closeShutdown {
			c.shutdown = true
		}
		c.mu.Unlock()
		return
	}
	if c.reason == "" {
		c.reason = reason
	}
	c.stopTimersLocked()
	// A graceful close lets an upgrade in progress finish, so that what is
	// queued (a DISCONNECT, say) goes out on the websocket before the close
	// frame, as engine.io does; the upgrade timeout still bounds it.
	if p := c.probe; p != nil && mode != closeGraceful {
		c.probe = nil
		c.upgrading = false
		_ = p.raw.Close()
	}
	if c.ws != nil {
		c.state = stateClosing
		if mode == closeImmediate {
			_ = c.ws.raw.Close() // the reader ends and finishes the session
		} else {
			_ = c.ws.raw.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
			c.kickLocked()
		}
		c.mu.Unlock()
		return
	}
	if mode == closeImmediate || (mode == closeShutdown && !c.polling) {
		c.finishLocked() // a pending GET answers "1"
		return
	}
	c.state = stateClosing
	c.shutdown = mode == closeShutdown
	if c.polling {
		c.signalLocked()
	} else {
		c.armCloseTimerLocked()
	}
	c.mu.Unlock()
}

// armCloseTimerLocked ends a closing polling session if no GET comes to
// collect its close packet within PingTimeout.
func (c *Conn) armCloseTimerLocked() {
	if c.closeTimer != nil {
		return
	}
	c.closeTimer = time.AfterFunc(c.srv.opts.PingTimeout, func() {
		c.mu.Lock()
		if c.state == stateClosing {
			c.finishLocked()
			return
		}
		c.mu.Unlock()
	})
}

// finish ends the session: see finishLocked.
func (c *Conn) finish(reason string) {
	c.mu.Lock()
	if c.reason == "" {
		c.reason = reason
	}
	c.finishLocked()
}

// finishLocked marks the session closed, removes it from the server and
// calls onClose on a new goroutine once no onMessage runs. It unlocks c.mu.
func (c *Conn) finishLocked() {
	if c.state == stateClosed {
		c.mu.Unlock()
		return
	}
	c.state = stateClosed
	c.stopTimersLocked()
	if p := c.probe; p != nil {
		c.probe = nil
		_ = p.raw.Close()
	}
	releaseQueue(c.takeLocked())
	c.signalLocked()
	reason := c.reason
	c.mu.Unlock()

	c.srv.remove(c)
	// The session's WaitGroup count, taken in newConn, is released here.
	go func() {
		defer c.srv.wg.Done()
		c.ready.Wait() // onConnection has returned: the handlers are set
		c.recvMu.Lock()
		c.done = true
		c.recvMu.Unlock()
		c.mu.Lock()
		onClose := c.onClose
		c.mu.Unlock()
		if onClose != nil {
			c.callSafe("onClose", func() { onClose(reason) })
		}
	}()
}

func (c *Conn) stopTimersLocked() {
	c.hbGen++
	if c.hbTimer != nil {
		c.hbTimer.Stop()
		c.hbTimer = nil
	}
	if c.closeTimer != nil {
		c.closeTimer.Stop()
		c.closeTimer = nil
	}
	if c.upgradeTimer != nil {
		c.upgradeTimer.Stop()
		c.upgradeTimer = nil
	}
}

// callSafe runs f, recovering and logging a panic; it reports whether f
// returned normally.
func (c *Conn) callSafe(what string, f func()) (ok bool) {
	defer func() {
		if v := recover(); v != nil {
			c.srv.log.Error("engineio: panic in "+what, "sid", c.id, "panic", v, "stack", string(debug.Stack()))
			ok = false
		}
	}()
	f()
	return true
}

func (c *Conn) pushLocked(p Packet) {
	if c.queue == nil {
		c.queue = queuePool.Get().(*[]Packet)
	}
	*c.queue = append(*c.queue, p)
}

// takeLocked removes and returns the queue.
func (c *Conn) takeLocked() *[]Packet {
	q := c.queue
	c.queue = nil
	return q
}

// kickLocked makes the active transport write what is queued.
func (c *Conn) kickLocked() {
	if c.ws == nil {
		c.signalLocked()
		return
	}
	if c.writing {
		return
	}
	c.writing = true
	c.srv.wg.Add(1) // the session's count is held, so the counter is not zero
	go c.writeLoop(c.ws)
}

// signalLocked wakes the pending GET, if any.
func (c *Conn) signalLocked() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// armHeartbeatLocked schedules the next heartbeat step after d: a ping when
// !waiting, the ping timeout when waiting.
func (c *Conn) armHeartbeatLocked(d time.Duration, waiting bool) {
	if c.hbTimer != nil {
		c.hbTimer.Stop()
	}
	c.hbGen++
	gen := c.hbGen
	c.hbWait = waiting
	c.hbTimer = time.AfterFunc(d, func() { c.heartbeat(gen) })
}

func (c *Conn) heartbeat(gen uint64) {
	c.mu.Lock()
	if c.state != stateOpen || gen != c.hbGen {
		c.mu.Unlock()
		return
	}
	if c.hbWait {
		c.mu.Unlock()
		c.close("ping timeout", closeImmediate)
		return
	}
	c.pushLocked(Packet{Type: Ping})
	c.queued++
	c.kickLocked()
	c.armHeartbeatLocked(c.srv.opts.PingTimeout, true)
	c.mu.Unlock()
}

func (c *Conn) pong() {
	c.mu.Lock()
	if c.state == stateOpen && c.hbWait {
		c.armHeartbeatLocked(c.srv.opts.PingInterval, false)
	}
	c.mu.Unlock()
}

// handlePacket processes one packet from the client on the active
// transport; false means the session is closing and reading should stop.
func (c *Conn) handlePacket(p Packet) bool {
	switch p.Type {
	case MessagePacket:
		c.deliver(p.Data, p.Binary)
	case Pong:
		c.pong()
	case Close:
		c.close("transport close", closeImmediate)
		return false
	case Ping:
		// Engine.IO v4 clients never ping outside an upgrade probe.
		c.close("transport error", closeImmediate)
		return false
	default: // open, upgrade, noop: ignored, as in engine.io
	}
	c.mu.Lock()
	open := c.state == stateOpen
	c.mu.Unlock()
	return open
}

// deliver calls onMessage unless the session finished.
func (c *Conn) deliver(data []byte, binary bool) {
	c.recvMu.Lock()
	defer c.recvMu.Unlock()
	if c.done {
		return
	}
	c.mu.Lock()
	h := c.onMessage
	c.mu.Unlock()
	if h == nil {
		return
	}
	defer func() {
		if v := recover(); v != nil {
			c.srv.log.Error("engineio: panic in onMessage", "sid", c.id, "panic", v, "stack", string(debug.Stack()))
			c.close("transport error", closeImmediate)
		}
	}()
	h(data, binary)
}
