package switchboard

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/switchboard-io/switchboard/engineio"
	"github.com/switchboard-io/switchboard/internal/worker"
	"github.com/switchboard-io/switchboard/parser"
)

// client is one Engine.IO connection and the sockets it opened, one per
// namespace.
type client struct {
	srv   *Server
	conn  *engineio.Conn
	dec   *parser.Decoder // only touched by onMessage, which engineio serialises
	queue serialQueue

	mu           sync.Mutex
	sockets      []*Socket       // connected, one per namespace (a slice: most clients use one namespace, and a map costs an idle connection ~250 bytes)
	connecting   map[string]bool // nil when empty
	closed       bool
	closing      bool        // disconnectAll ran
	connectTimer *time.Timer // nil once a namespace connected
}

func newClient(srv *Server, conn *engineio.Conn) *client {
	c := &client{
		srv:  srv,
		conn: conn,
		dec:  parser.NewDecoder(&parser.DecoderOptions{MaxAttachments: srv.opts.MaxAttachments}),
	}
	c.queue.wg = &srv.work
	c.queue.pool = srv.workers
	c.queue.onPanic = c.onHandlerPanic
	t := time.AfterFunc(srv.opts.ConnectTimeout, func() {
		c.mu.Lock()
		idle := len(c.sockets) == 0 && !c.closed
		c.mu.Unlock()
		if idle {
			c.conn.Close("forced close")
		}
	})
	c.mu.Lock()
	c.connectTimer = t
	c.mu.Unlock()
	conn.SetHandlers(c.onMessage, c.onClose)
	return c
}

func (c *client) onHandlerPanic(v any) {
	c.srv.opts.Logger.Error("switchboard: panic in handler; closing its connection",
		"sid", c.conn.ID(), "panic", v, "stack", string(debug.Stack()))
	c.conn.Close("forced close")
}

func (c *client) onMessage(data []byte, binary bool) {
	c.srv.counters.bytesIn.Add(uint64(len(data)))
	// engineio reuses data after we return; the decoder copies what the
	// packet keeps (it never retains a message).
	var (
		p   *parser.Packet
		err error
	)
	if binary {
		p, err = c.dec.AddBinary(data)
	} else {
		p, err = c.dec.AddText(data)
	}
	if err != nil {
		c.srv.opts.Logger.Debug("switchboard: invalid packet; closing connection", "sid", c.conn.ID(), "err", err)
		c.conn.Close("parse error")
		return
	}
	if p != nil {
		c.handlePacket(p)
	}
}

func (c *client) handlePacket(p *parser.Packet) {
	c.mu.Lock()
	if c.closing {
		// disconnectAll ran: like socket.io, ignore what still comes in.
		c.mu.Unlock()
		return
	}
	s := c.socketLocked(p.Namespace)
	pending := c.connecting[p.Namespace]
	if p.Type == parser.Connect && s == nil && !pending {
		if c.connecting == nil {
			c.connecting = make(map[string]bool, 1)
		}
		c.connecting[p.Namespace] = true
	}
	c.mu.Unlock()
	switch {
	case p.Type == parser.Connect && s == nil && !pending:
		c.queue.push(func() { c.connect(p.Namespace, p.Data) })
	case s == nil || p.Type == parser.Connect || p.Type == parser.ConnectError:
		// Anything but CONNECT on a namespace not joined, a second CONNECT,
		// or a server-only packet type: the client is broken or hostile.
		c.conn.Close("parse error")
	case p.Type == parser.Disconnect:
		c.queue.push(func() { s.onClose("client namespace disconnect", false) })
	case p.Type == parser.Event || p.Type == parser.BinaryEvent:
		c.queue.push(func() { s.onEvent(p) })
	case p.Type == parser.Ack || p.Type == parser.BinaryAck:
		s.onAck(p)
	}
}

// connect runs on the dispatch queue: middlewares, then the CONNECT reply and
// the connection handlers.
func (c *client) connect(name string, auth json.RawMessage) {
	defer func() {
		c.mu.Lock()
		delete(c.connecting, name)
		if len(c.connecting) == 0 {
			c.connecting = nil // an idle connection keeps no empty map
		}
		c.mu.Unlock()
	}()
	ns := c.srv.lookupNamespace(name, auth)
	if ns == nil {
		c.send(&parser.Packet{Type: parser.ConnectError, Namespace: name, Data: json.RawMessage(`{"message":"Invalid namespace"}`)})
		return
	}
	s := newSocket(ns, c, auth)
	var restored *SessionState
	var missed []*parser.Packet
	if rec := c.srv.opts.ConnectionStateRecovery; rec != nil {
		s.pid = newID()
		if pid, offset, ok := recoveryAuth(auth); ok {
			st, pkts, err := ns.adapter.RestoreSession(context.Background(), pid, offset)
			if err == nil {
				restored, missed = st, pkts
				s.id, s.pid, s.recovered, s.data = st.SID, st.PID, true, st.Data
			}
		}
	}
	if restored == nil || c.srv.opts.ConnectionStateRecovery.RunMiddlewares {
		if err := ns.runMiddlewares(s); err != nil {
			c.send(&parser.Packet{Type: parser.ConnectError, Namespace: name, Data: connectErrorPayload(err)})
			return
		}
	}
	if c.srv.opts.Identity != nil {
		s.identity = c.srv.opts.Identity(s)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.sockets = append(c.sockets, s)
	c.stopConnectTimerLocked()
	c.mu.Unlock()
	var rooms []string
	if restored != nil {
		rooms = restored.Rooms
	}
	ns.connectSocket(s, rooms, missed)
}

func (c *client) removeSocket(s *Socket) {
	c.mu.Lock()
	for i, o := range c.sockets {
		if o == s {
			c.sockets = slices.Delete(c.sockets, i, i+1) // zeroes the freed slot
			break
		}
	}
	c.mu.Unlock()
}

// socketLocked returns the socket connected to the namespace, or nil.
func (c *client) socketLocked(namespace string) *Socket {
	for _, s := range c.sockets {
		if s.nsp.name == namespace {
			return s
		}
	}
	return nil
}

// stopConnectTimerLocked stops the connect timeout and lets the timer go:
// a connected client keeps none.
func (c *client) stopConnectTimerLocked() {
	if c.connectTimer != nil {
		c.connectTimer.Stop()
		c.connectTimer = nil
	}
}

func (c *client) onClose(reason string) {
	c.mu.Lock()
	c.stopConnectTimerLocked()
	c.closed = true
	c.mu.Unlock()
	c.queue.push(func() {
		c.mu.Lock()
		socks := make([]*Socket, 0, len(c.sockets))
		for _, s := range c.sockets {
			socks = append(socks, s)
		}
		c.mu.Unlock()
		for _, s := range socks {
			s.onClose(reason, false)
		}
		c.srv.removeClient(c)
	})
}

// send encodes and queues one packet.
func (c *client) send(p *parser.Packet) error {
	msgs := encodeMessages(p)
	c.srv.count(p, msgs, 1)
	return c.conn.Send(msgs...)
}

// sendNow is send for a reply with nothing to coalesce with (an ack): on an
// idle websocket it is written on the calling goroutine, without a writer
// goroutine (engineio.Conn.SendNow).
func (c *client) sendNow(p *parser.Packet) error {
	msgs := encodeMessages(p)
	c.srv.count(p, msgs, 1)
	return c.conn.SendNow(msgs...)
}

// count adds n deliveries of an encoded packet to the counters.
func (s *Server) count(p *parser.Packet, msgs []engineio.Message, n int) {
	if p.Type == parser.Event || p.Type == parser.BinaryEvent {
		s.counters.eventsOut.Add(uint64(n))
	}
	size := 0
	for _, m := range msgs {
		size += len(m.Data)
	}
	s.counters.bytesOut.Add(uint64(size * n))
}

// encodeMessages encodes a packet as Engine.IO messages: the text part, then
// one binary message per attachment. The result may be sent to many
// connections (encode once per broadcast).
func encodeMessages(p *parser.Packet) []engineio.Message {
	text, atts := parser.Encode(p)
	msgs := make([]engineio.Message, 1+len(atts))
	msgs[0] = engineio.Message{Data: text}
	for i, a := range atts {
		msgs[i+1] = engineio.Message{Data: a, Binary: true}
	}
	return msgs
}

// serialQueue runs functions one at a time in push order on a goroutine that
// is the connection's only while work is queued (a pooled worker), so idle
// connections cost no goroutine.
type serialQueue struct {
	mu      sync.Mutex
	items   []func()
	running bool
	wg      *sync.WaitGroup
	pool    *worker.Pool // runs the queue on a goroutine whose stack has grown already
	onPanic func(v any)
}

func (q *serialQueue) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		q.wg.Add(1)
		q.pool.Go(q.run)
	}
}

func (q *serialQueue) run() {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(q.items) == 0 {
			q.running = false
			q.items = nil
			q.mu.Unlock()
			return
		}
		f := q.items[0]
		q.items[0] = nil
		q.items = q.items[1:]
		q.mu.Unlock()
		q.call(f)
	}
}

func (q *serialQueue) call(f func()) {
	defer func() {
		if v := recover(); v != nil {
			if q.onPanic != nil {
				q.onPanic(v)
			} else {
				panic(fmt.Sprint(v))
			}
		}
	}()
	f()
}

// disconnectAll disconnects every socket of the connection, then closes it.
func (c *client) disconnectAll() {
	c.mu.Lock()
	c.closing = true
	socks := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		socks = append(socks, s)
	}
	c.mu.Unlock()
	for _, s := range socks {
		s.serverDisconnect()
	}
	c.queue.push(func() { c.conn.Close("forced server close") })
}
