package switchboard

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard/engineio"
	"github.com/switchboard-io/switchboard/internal/callback"
	"github.com/switchboard-io/switchboard/parser"
)

// AckFunc answers an acknowledgement request. Declare it as the last
// parameter of an event handler; calling it more than once sends one answer.
type AckFunc = callback.AckFunc

// Handshake is what the client sent when it connected.
type Handshake struct {
	Headers http.Header     // headers of the Engine.IO handshake request
	Query   url.Values      // query of the handshake request
	Auth    json.RawMessage // the CONNECT payload (socket.io's auth option); nil if none
	Address string          // remote IP address
	Time    time.Time       // when the namespace connection was made
	URL     string          // request URI of the handshake
	Secure  bool            // whether the handshake came over TLS
	XDomain bool            // whether the request carried an Origin header
}

// Socket is one client connected to one namespace. Its methods are safe for
// concurrent use.
type Socket struct {
	id          string
	pid         string // private id for connection-state recovery; "" when off
	identity    string // stable subscriber identity; "" if none
	nsp         *Namespace
	client      *client
	auth        string // the CONNECT payload; "" if none (a string: 8 bytes less per socket than a slice)
	connectedAt int64  // Unix nanoseconds of the namespace connection, for Handshake.Time

	mu           sync.Mutex
	handlers     []eventHandler // a slice, searched in order: sockets have few handlers, and a map costs ~250 bytes per socket
	anyHandlers  []func(event string, args []json.RawMessage)
	discHandlers []discHandler // "disconnecting" and "disconnect", in one slice
	data         any
	connected    bool
	recovered    bool // set before the socket is visible, read without mu; here to share the flags' padding word
	closing      bool
	acks         map[uint64]func(Args, error)
	pumps        map[string]*durablePump // durable deliveries, by room
}

func newSocket(ns *Namespace, c *client, auth json.RawMessage) *Socket {
	if len(auth) == 0 || string(auth) == "null" {
		auth = nil
	}
	return &Socket{
		id:          newID(),
		nsp:         ns,
		client:      c,
		auth:        string(auth),
		connectedAt: time.Now().UnixNano(),
	}
}

// newID returns a 20-character random id, like socket.io's.
func newID() string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ID returns the socket id, which is also the name of the socket's own room.
func (s *Socket) ID() string { return s.id }

// Recovered reports whether the socket was restored by connection-state
// recovery: same id, rooms and data as before the drop, and the events it
// missed were sent before the connection handler ran.
func (s *Socket) Recovered() bool { return s.recovered }

// Namespace returns the namespace the socket is connected to.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// Handshake returns the details of the client's connection. Headers, Query
// and URL are made from the handshake request on each call: an idle
// connection keeps no parsed copy of them.
func (s *Socket) Handshake() Handshake {
	r := s.client.conn.Request()
	addr := r.RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	return Handshake{
		Headers: r.Header,
		Query:   r.URL.Query(),
		Auth:    s.authJSON(),
		Address: addr,
		Time:    time.Unix(0, s.connectedAt),
		URL:     r.RequestURI,
		Secure:  r.TLS != nil,
		XDomain: r.Header.Get("Origin") != "",
	}
}

// Transport returns the current Engine.IO transport: "polling" or "websocket".
func (s *Socket) Transport() string { return s.client.conn.Transport() }

// Conn returns the Engine.IO connection the socket runs on, shared with the
// client's other namespaces (socket.io's socket.conn). Closing it drops the
// transport: the client sees "transport close" and reconnects.
func (s *Socket) Conn() *engineio.Conn { return s.client.conn }

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Data returns the value last given to SetData (socket.io's socket.data).
func (s *Socket) Data() any {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.data
}

// SetData attaches an application value to the socket. It travels with
// FetchSockets and should be JSON-encodable when a cluster adapter is used.
func (s *Socket) SetData(v any) {
	s.mu.Lock()
	s.data = v
	s.mu.Unlock()
	s.keepSession()
}

// On registers the handler of an event, replacing any earlier one. fn is a
// func whose parameters are decoded from the event's arguments in order
// (missing ones are zero values, extra ones ignored; a final variadic
// parameter takes the rest), optionally followed by an AckFunc. Two events
// are special: "disconnecting" and "disconnect" take func(reason string) and
// may have several handlers. On panics if fn has an unusable shape.
func (s *Socket) On(event string, fn any) {
	if event == "disconnect" || event == "disconnecting" {
		f, ok := fn.(func(string))
		if !ok {
			panic(fmt.Sprintf("switchboard: %q handler must be func(reason string), got %T", event, fn))
		}
		s.mu.Lock()
		s.discHandlers = append(s.discHandlers, discHandler{f, event == "disconnecting"})
		s.mu.Unlock()
		return
	}
	cb, err := callback.New(fn)
	if err != nil {
		panic("switchboard: " + err.Error())
	}
	s.mu.Lock()
	if i := s.handlerIndexLocked(event); i >= 0 {
		s.handlers[i].fn = cb
	} else {
		s.handlers = append(s.handlers, eventHandler{event, cb})
	}
	s.mu.Unlock()
}

// Off removes the handler of an event.
func (s *Socket) Off(event string) {
	s.mu.Lock()
	if i := s.handlerIndexLocked(event); i >= 0 {
		s.handlers = slices.Delete(s.handlers, i, i+1)
	}
	s.mu.Unlock()
}

// discHandler is a "disconnecting" or "disconnect" handler.
type discHandler struct {
	fn            func(reason string)
	disconnecting bool
}

// authJSON returns the CONNECT payload, nil if none.
func (s *Socket) authJSON() json.RawMessage {
	if s.auth == "" {
		return nil
	}
	return json.RawMessage(s.auth)
}

// eventHandler is one event's handler on a socket.
type eventHandler struct {
	event string
	fn    *callback.Func
}

func (s *Socket) handlerIndexLocked(event string) int {
	for i := range s.handlers {
		if s.handlers[i].event == event {
			return i
		}
	}
	return -1
}

// OnAny registers a handler called for every incoming event, before the
// event's own handler. args are the raw JSON arguments.
func (s *Socket) OnAny(fn func(event string, args []json.RawMessage)) {
	s.mu.Lock()
	s.anyHandlers = append(s.anyHandlers, fn)
	s.mu.Unlock()
}

// Emit sends an event to this client. It returns ErrReservedEvent for
// reserved names, ErrDisconnected after disconnect, and a JSON error if an
// argument cannot be encoded. []byte arguments travel as binary attachments.
func (s *Socket) Emit(event string, args ...any) error {
	return s.emit(emitFlags{}, event, args)
}

// Volatile returns an emitter whose events are dropped instead of queued
// when the client's transport is not ready to send (socket.io's volatile).
func (s *Socket) Volatile() *Emitter { return &Emitter{s: s, flags: emitFlags{volatile: true}} }

// Timeout returns an emitter whose EmitWithAck fails with ErrAckTimeout
// after d.
func (s *Socket) Timeout(d time.Duration) *Emitter {
	return &Emitter{s: s, flags: emitFlags{timeout: d}}
}

// EmitWithAck sends an event and waits for the client's acknowledgement or
// for ctx to end.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return (&Emitter{s: s}).EmitWithAck(ctx, event, args...)
}

// Emitter emits on one socket with flags (volatile, timeout).
type Emitter struct {
	s     *Socket
	flags emitFlags
}

type emitFlags struct {
	volatile bool
	timeout  time.Duration
}

// Volatile marks the emit volatile.
func (e *Emitter) Volatile() *Emitter { f := e.flags; f.volatile = true; return &Emitter{e.s, f} }

// Timeout sets the acknowledgement timeout.
func (e *Emitter) Timeout(d time.Duration) *Emitter {
	f := e.flags
	f.timeout = d
	return &Emitter{e.s, f}
}

// Emit sends an event with the emitter's flags.
func (e *Emitter) Emit(event string, args ...any) error { return e.s.emit(e.flags, event, args) }

// EmitWithAck sends an event asking for an acknowledgement and waits for it,
// for the emitter's timeout (ErrAckTimeout), for ctx, or for the socket to
// disconnect (ErrDisconnected).
func (e *Emitter) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	s := e.s
	if reservedEvents[event] {
		return Args{}, fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return Args{}, err
	}
	type result struct {
		args Args
		err  error
	}
	done := make(chan result, 1)
	id := s.nsp.nextAckID()
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return Args{}, ErrDisconnected
	}
	s.addAckLocked(id, func(a Args, err error) { done <- result{a, err} })
	s.mu.Unlock()
	p := &parser.Packet{Type: parser.Event, Namespace: s.nsp.name, ID: id, HasID: true, Data: data, Attachments: atts}
	if err := s.client.send(p); err != nil {
		s.dropAck(id)
		return Args{}, err
	}
	var timeout <-chan time.Time
	if e.flags.timeout > 0 {
		t := time.NewTimer(e.flags.timeout)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case r := <-done:
		return r.args, r.err
	case <-timeout:
		s.dropAck(id)
		return Args{}, ErrAckTimeout
	case <-ctx.Done():
		s.dropAck(id)
		return Args{}, ctx.Err()
	}
}

func (s *Socket) dropAck(id uint64) {
	s.mu.Lock()
	delete(s.acks, id)
	s.mu.Unlock()
}

func (s *Socket) emit(flags emitFlags, event string, args []any) error {
	if reservedEvents[event] {
		return fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	if !s.Connected() {
		return ErrDisconnected
	}
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return err
	}
	p := &parser.Packet{Type: parser.Event, Namespace: s.nsp.name, Data: data, Attachments: atts}
	if s.pid != "" {
		// With recovery on, socket.io routes socket.emit through the
		// adapter so that the event gets an offset and is kept.
		return s.nsp.adapter.Broadcast(p, BroadcastOptions{Rooms: []string{s.id}, Flags: BroadcastFlags{Volatile: flags.volatile}})
	}
	if flags.volatile && !s.client.conn.Writable() {
		return nil
	}
	return s.client.send(p)
}

// Join adds the socket to rooms. It fails with ErrTooManyRooms, adding none
// of them, if the socket would be in more than Options.MaxRoomsPerSocket.
func (s *Socket) Join(rooms ...string) error {
	current := s.nsp.adapter.Rooms(s.id)
	have := make(map[string]bool, len(current))
	for _, r := range current {
		have[r] = true
	}
	n := len(current)
	for _, r := range rooms {
		if !have[r] {
			have[r] = true
			n++
		}
	}
	if max := s.nsp.srv.opts.MaxRoomsPerSocket; n > max {
		return fmt.Errorf("%w: joining %d room(s) would make %d, the limit is %d", ErrTooManyRooms, len(rooms), n, max)
	}
	s.nsp.adapter.AddAll(s.id, rooms)
	s.keepSession()
	return nil
}

// keepSession gives a SessionKeeper adapter the socket's current state.
func (s *Socket) keepSession() {
	if k, ok := s.nsp.adapter.(SessionKeeper); ok && s.pid != "" && s.Connected() {
		k.KeepSession(&SessionState{SID: s.id, PID: s.pid, Rooms: s.nsp.adapter.Rooms(s.id), Data: s.Data()})
	}
}

// Leave removes the socket from a room.
func (s *Socket) Leave(room string) {
	s.nsp.adapter.Del(s.id, room)
	s.keepSession()
}

// Rooms returns the rooms the socket is in, its own room included, in the
// order joined.
func (s *Socket) Rooms() []string { return s.nsp.adapter.Rooms(s.id) }

// To starts a broadcast to the rooms that excludes this socket.
func (s *Socket) To(rooms ...string) *BroadcastOperator {
	return s.Broadcast().To(rooms...)
}

// In is the same as To.
func (s *Socket) In(rooms ...string) *BroadcastOperator { return s.To(rooms...) }

// Except starts a broadcast to every socket of the namespace but this one
// and those in the rooms.
func (s *Socket) Except(rooms ...string) *BroadcastOperator {
	return s.Broadcast().Except(rooms...)
}

// Broadcast starts a broadcast to every socket of the namespace but this one.
func (s *Socket) Broadcast() *BroadcastOperator {
	return s.nsp.newBroadcast().Except(s.id)
}

// Disconnect disconnects the socket from its namespace with reason "server
// namespace disconnect"; the client does not reconnect by itself. With
// close, the whole underlying connection is closed, disconnecting the
// client's sockets on every namespace. The disconnect handlers run on the
// connection's handler goroutine, after any handler already running.
func (s *Socket) Disconnect(close bool) {
	if close {
		s.client.disconnectAll()
		return
	}
	s.serverDisconnect()
}

func (s *Socket) serverDisconnect() {
	s.mu.Lock()
	if !s.connected || s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.mu.Unlock()
	// Queue the close before telling the client, so that a transport close
	// the client answers with cannot overtake it with another reason.
	s.client.queue.push(func() { s.onClose("server namespace disconnect", true) })
	_ = s.client.send(&parser.Packet{Type: parser.Disconnect, Namespace: s.nsp.name})
}

// onEvent runs on the dispatch queue.
func (s *Socket) onEvent(p *parser.Packet) {
	name, args, err := p.EventName()
	if err != nil {
		s.client.conn.Close("parse error")
		return
	}
	s.nsp.srv.counters.eventsIn.Add(1)
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return
	}
	var h *callback.Func
	if i := s.handlerIndexLocked(name); i >= 0 {
		h = s.handlers[i].fn
	}
	anys := s.anyHandlers
	s.mu.Unlock()
	if incomingReserved(name) {
		s.nsp.srv.opts.Logger.Debug("switchboard: client sent a reserved event; ignored", "sid", s.id, "event", name)
		return
	}
	var ack AckFunc
	var state *ackState
	if p.HasID {
		id := p.ID
		state = &ackState{}
		ack = func(args ...any) {
			if state.called.CompareAndSwap(false, true) {
				s.sendAck(id, args, state.late.Load())
			}
		}
	}
	// An ack called after the handler returned (from a goroutine or a store
	// callback, often many at once) goes through the connection's queue, so
	// that a burst of them shares one write.
	defer func() {
		if state != nil {
			state.late.Store(true)
		}
	}()
	for _, fn := range anys {
		fn(name, args)
	}
	if h == nil {
		return
	}
	if err := h.Call(args, p.Attachments, ack); err != nil {
		s.nsp.srv.opts.Logger.Debug("switchboard: event handler error", "sid", s.id, "event", name, "err", err)
	}
}

func incomingReserved(name string) bool {
	return reservedEvents[name] || name == "error"
}

// ackState is what an AckFunc of an incoming event keeps.
type ackState struct {
	called atomic.Bool // only the first call answers (no sync.Once: nobody waits for it)
	late   atomic.Bool // the handler has returned
}

// sendAck answers ack request id: inline (SendNow) while the handler runs,
// the reply a client waits for with nothing to coalesce with; queued (Send)
// when late.
func (s *Socket) sendAck(id uint64, args []any, late bool) {
	data, atts, err := parser.MarshalArgs(args...)
	if err != nil {
		s.nsp.srv.opts.Logger.Warn("switchboard: cannot encode ack", "sid", s.id, "err", err)
		return
	}
	p := &parser.Packet{Type: parser.Ack, Namespace: s.nsp.name, ID: id, HasID: true, Data: data, Attachments: atts}
	if late {
		_ = s.client.send(p)
		return
	}
	_ = s.client.sendNow(p)
}

// onAck runs on the read loop so that handlers blocked in EmitWithAck
// still get their answers.
func (s *Socket) onAck(p *parser.Packet) {
	if !p.HasID {
		return
	}
	s.mu.Lock()
	fn := s.acks[p.ID]
	delete(s.acks, p.ID)
	s.mu.Unlock()
	if fn == nil {
		// An answer to nothing asked (or asked and timed out): ignored.
		s.nsp.unknownAcks.Add(1)
		return
	}
	args, err := p.Args()
	fn(Args{Raw: args, Attachments: p.Attachments}, err)
}

// addAck registers a callback for a broadcast-with-ack packet id.
func (s *Socket) addAck(id uint64, fn func(Args, error)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected {
		return false
	}
	s.addAckLocked(id, fn)
	return true
}

// addAckLocked registers an ack callback; the map exists only once a socket
// has asked for an acknowledgement.
func (s *Socket) addAckLocked(id uint64, fn func(Args, error)) {
	if s.acks == nil {
		s.acks = make(map[uint64]func(Args, error))
	}
	s.acks[id] = fn
}

// onClose runs on the dispatch queue: disconnecting handlers, leave every
// room, then disconnect handlers.
func (s *Socket) onClose(reason string, _ bool) {
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return
	}
	handlers := s.discHandlers
	s.mu.Unlock()
	for _, h := range handlers {
		if h.disconnecting {
			h.fn(reason)
		}
	}
	if s.pid != "" && recoverableReasons[reason] {
		st := &SessionState{SID: s.id, PID: s.pid, Rooms: s.nsp.adapter.Rooms(s.id), Data: s.Data()}
		if err := s.nsp.adapter.PersistSession(context.Background(), st); err != nil {
			s.nsp.srv.opts.Logger.Warn("switchboard: cannot keep session for recovery", "sid", s.id, "err", err)
		}
	} else if k, ok := s.nsp.adapter.(SessionKeeper); ok && s.pid != "" {
		k.ForgetSession(s.pid)
	}
	s.nsp.durable.stopAll(s)
	s.nsp.adapter.DelAll(s.id)
	s.nsp.removeSocket(s)
	s.client.removeSocket(s)
	s.mu.Lock()
	s.connected = false
	acks := s.acks
	s.acks = nil
	handlers = s.discHandlers
	s.mu.Unlock()
	for _, fn := range acks {
		fn(Args{}, ErrDisconnected)
	}
	for _, h := range handlers {
		if !h.disconnecting {
			h.fn(reason)
		}
	}
}

// Args is an undecoded argument list: what EmitWithAck returns, and what a
// handler taking a single Args parameter receives (see Socket.On).
type Args = callback.Args
