package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard/engineio"
	"github.com/switchboard-io/switchboard/internal/callback"
	"github.com/switchboard-io/switchboard/parser"
)

// Disconnect reasons passed to "disconnect" handlers, as in the JavaScript
// client. Only ReasonServerDisconnect, ReasonClientDisconnect and
// ReasonForcedClose are not followed by an automatic reconnection.
const (
	ReasonServerDisconnect = "io server disconnect" // the server sent DISCONNECT
	ReasonClientDisconnect = "io client disconnect" // Socket.Disconnect
	ReasonForcedClose      = "forced close"         // Manager.Close
	ReasonPingTimeout      = "ping timeout"         // no ping within pingInterval+pingTimeout
	ReasonTransportClose   = "transport close"      // the connection was closed
	ReasonTransportError   = "transport error"      // the connection failed
	ReasonParseError       = "parse error"          // the server sent an invalid packet
)

// Socket is a client of one namespace, multiplexed on its Manager's
// connection. Its methods are safe for concurrent use; see Manager for the
// goroutine handlers run on.
type Socket struct {
	m       *Manager
	nsp     string
	nextAck atomic.Uint64

	mu        sync.Mutex
	active    bool // Connect called, and not Disconnect, DISCONNECT or CONNECT_ERROR since
	connected bool
	id        string
	pid       string // recovery session id, "" when recovery is off
	offset    string // offset of the last event received while pid is set
	recovered bool
	eng       *Engine     // session the CONNECT was sent on
	sendBuf   []outPacket // packets emitted while disconnected
	recvBuf   []job       // events received before the CONNECT reply
	acks      map[uint64]*pendingAck
	handlers  map[string][]*handler // copy-on-write
	anys      []func(string, Args)  // copy-on-write
}

type handler struct {
	fn   *callback.Func // events
	conn func()         // "connect"
	disc func(string)   // "disconnect"
	cerr func(error)    // "connect_error"
	once bool
}

type pendingAck struct {
	ch    chan ackResult    // EmitWithAck
	fn    func(Args, error) // EmitWithAckFunc
	timer *time.Timer
	sent  bool // written to a session (not in sendBuf)
}

type ackResult struct {
	args Args
	err  error
}

func newSocket(m *Manager, nsp string) *Socket {
	return &Socket{m: m, nsp: nsp, acks: make(map[uint64]*pendingAck), handlers: make(map[string][]*handler)}
}

// Dial connects to the namespace given by rawURL's path ("/" when empty),
// like io("http://host/ns") in JavaScript, on a new Manager, and waits until
// the socket is connected. It returns the first connection error: a
// *ConnectError when the server refused the namespace, another error when
// the server could not be reached; the Manager is then closed. Close the
// socket's Manager (or Disconnect the socket) when done.
func Dial(ctx context.Context, rawURL string, opts *Options) (*Socket, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("client: dial: %w", err)
	}
	m := NewManager(rawURL, opts)
	s := m.Socket(u.Path)
	res := make(chan error, 1)
	s.Once("connect", func() {
		select {
		case res <- nil:
		default:
		}
	})
	s.Once("connect_error", func(err error) {
		select {
		case res <- err:
		default:
		}
	})
	s.Connect()
	select {
	case err = <-res:
	case <-ctx.Done():
		err = ctx.Err()
	}
	s.Off("connect")
	s.Off("connect_error")
	if err != nil {
		m.Close()
		return nil, err
	}
	return s, nil
}

// Manager returns the socket's Manager.
func (s *Socket) Manager() *Manager { return s.m }

// Namespace returns the socket's namespace, such as "/".
func (s *Socket) Namespace() string { return s.nsp }

// ID returns the socket id the server assigned in its CONNECT reply, "" when
// not connected.
func (s *Socket) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.connected {
		return ""
	}
	return s.id
}

// Connected reports whether the namespace is connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Active reports whether the socket is connected or trying to (re)connect.
func (s *Socket) Active() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

// Recovered reports whether the last connection restored the previous
// session (connection-state recovery): same id, missed events replayed.
func (s *Socket) Recovered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.recovered
}

// Connect starts connecting the namespace, opening the Manager's
// connection if needed, and returns at once. "connect" or "connect_error"
// handlers report the outcome.
func (s *Socket) Connect() {
	s.mu.Lock()
	if s.connected {
		s.mu.Unlock()
		return
	}
	s.active = true
	s.mu.Unlock()
	if e := s.m.open(); e != nil {
		s.sendConnect(e)
	}
}

// Disconnect disconnects the namespace: it sends DISCONNECT if connected,
// calls "disconnect" handlers with reason "io client disconnect", does not
// reconnect, and closes the Manager's connection (waiting for its network
// goroutines) when no other socket is active.
func (s *Socket) Disconnect() {
	s.mu.Lock()
	wasActive := s.active
	if s.connected {
		s.eng.send(encodePacket(nil, &parser.Packet{Type: parser.Disconnect, Namespace: s.nsp})...)
	}
	s.active = false
	s.resetLocked(ReasonClientDisconnect)
	s.mu.Unlock()
	if wasActive {
		s.m.closeIfIdle(true)
	}
}

// deactivate marks the socket inactive and disconnected, failing the acks
// in flight; connected sockets get "disconnect" with reason.
func (s *Socket) deactivate(reason string) {
	s.mu.Lock()
	s.active = false
	s.resetLocked(reason)
	s.mu.Unlock()
}

// resetLocked ends the connection of the namespace.
func (s *Socket) resetLocked(reason string) {
	was := s.connected
	s.connected = false
	s.eng = nil
	s.recvBuf = nil
	for id, a := range s.acks {
		if a.sent {
			delete(s.acks, id)
			s.resolveAck(a, Args{}, ErrDisconnected)
		}
	}
	if was {
		s.m.d.push(job{kind: jobDisconnect, s: s, reason: reason})
	}
}

// onEngineClose is called by the run loop when session e closed.
func (s *Socket) onEngineClose(e *Engine, reason string) {
	s.mu.Lock()
	if s.eng == e {
		s.resetLocked(reason)
	}
	s.mu.Unlock()
}

// sendConnect sends the namespace CONNECT on session e, once per session.
func (s *Socket) sendConnect(e *Engine) {
	auth := s.m.opts.Auth
	if f := s.m.opts.AuthFunc; f != nil {
		auth = f()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.active || s.connected || s.eng == e {
		return
	}
	data, err := connectPayload(auth, s.pid, s.offset)
	if err != nil {
		s.active = false
		s.m.d.push(job{kind: jobConnectError, s: s, err: err})
		return
	}
	s.eng = e
	e.send(encodePacket(nil, &parser.Packet{Type: parser.Connect, Namespace: s.nsp, Data: data})...)
}

// connectPayload builds the CONNECT payload: auth, plus pid and offset for
// connection-state recovery (auth's own keys win, as Object.assign).
func connectPayload(auth any, pid, offset string) (json.RawMessage, error) {
	var a []byte
	if auth != nil {
		var err error
		if a, err = json.Marshal(auth); err != nil {
			return nil, fmt.Errorf("client: auth: %w", err)
		}
		a = bytes.TrimSpace(a)
		if string(a) == "null" {
			a = nil
		} else if len(a) < 2 || a[0] != '{' {
			return nil, fmt.Errorf("client: auth must encode as a JSON object, got %.20s", a)
		}
	}
	if pid == "" {
		return a, nil
	}
	b := []byte(`{"pid":`)
	b = appendJSONString(b, pid)
	if offset != "" {
		b = append(b, `,"offset":`...)
		b = appendJSONString(b, offset)
	}
	if inner := bytes.TrimSpace(a[min(1, len(a)):max(len(a)-1, 0)]); len(inner) > 0 {
		b = append(b, ',')
		b = append(b, inner...)
	}
	return append(b, '}'), nil
}

func appendJSONString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

// encodePacket appends the Engine.IO packets of p to dst: the text packet
// in a pooled buffer, then the attachments.
func encodePacket(dst []outPacket, p *parser.Packet) []outPacket {
	bp := getBuf()
	*bp = parser.AppendEncode(*bp, p)
	dst = append(dst, outPacket{Packet: engineio.Packet{Type: engineio.MessagePacket, Data: *bp}, buf: bp})
	for _, a := range p.Attachments {
		dst = append(dst, outPacket{Packet: engineio.Packet{Type: engineio.MessagePacket, Data: a, Binary: true}})
	}
	return dst
}

// onPacket handles a packet for this namespace, on the reading goroutine.
func (s *Socket) onPacket(e *Engine, p *parser.Packet) {
	switch p.Type {
	case parser.Connect:
		s.onConnect(e, p)
	case parser.Event, parser.BinaryEvent:
		s.onEvent(e, p)
	case parser.Ack, parser.BinaryAck:
		s.onAck(p)
	case parser.Disconnect:
		s.mu.Lock()
		if s.eng != e || !s.active {
			s.mu.Unlock()
			return
		}
		s.active = false
		s.resetLocked(ReasonServerDisconnect)
		s.mu.Unlock()
		s.m.closeIfIdle(false)
	case parser.ConnectError:
		s.mu.Lock()
		if s.eng != e || !s.active {
			s.mu.Unlock()
			return
		}
		s.active = false
		s.resetLocked("")
		s.m.d.push(job{kind: jobConnectError, s: s, err: parseConnectError(p.Data)})
		s.mu.Unlock()
		s.m.closeIfIdle(false)
	}
}

func parseConnectError(data json.RawMessage) *ConnectError {
	var obj struct {
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &obj); err == nil {
		return &ConnectError{Message: obj.Message, Data: obj.Data}
	}
	var msg string
	json.Unmarshal(data, &msg)
	return &ConnectError{Message: msg}
}

func (s *Socket) onConnect(e *Engine, p *parser.Packet) {
	var r struct {
		SID string `json:"sid"`
		PID string `json:"pid"`
	}
	json.Unmarshal(p.Data, &r)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng != e || !s.active || s.connected {
		return
	}
	if r.SID == "" {
		s.active = false
		s.eng = nil
		s.m.d.push(job{kind: jobConnectError, s: s, err: errors.New("client: CONNECT reply without sid (a Socket.IO v2 server?)")})
		return
	}
	s.id = r.SID
	s.recovered = r.PID != "" && r.PID == s.pid
	s.pid = r.PID
	s.connected = true
	for _, j := range s.recvBuf {
		s.m.d.push(j)
	}
	s.recvBuf = nil
	if len(s.sendBuf) > 0 && e.send(s.sendBuf...) == nil {
		// On failure the session is closing: the buffer waits for the
		// next connection.
		for _, a := range s.acks {
			a.sent = true
		}
		clear(s.sendBuf)
		s.sendBuf = nil
	}
	s.m.d.push(job{kind: jobConnect, s: s})
}

func (s *Socket) onEvent(e *Engine, p *parser.Packet) {
	name, args, err := p.EventName()
	if err != nil {
		return
	}
	j := job{kind: jobEvent, s: s, name: name, args: args, att: p.Attachments, id: p.ID, hasID: p.HasID}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.eng != e || !s.active {
		return
	}
	if s.pid != "" && len(args) > 0 {
		if last := args[len(args)-1]; len(last) > 0 && last[0] == '"' {
			var off string
			if json.Unmarshal(last, &off) == nil {
				s.offset = off
			}
		}
	}
	if !s.connected {
		s.recvBuf = append(s.recvBuf, j)
		return
	}
	s.m.d.push(j)
}

func (s *Socket) onAck(p *parser.Packet) {
	if !p.HasID {
		return
	}
	s.mu.Lock()
	a := s.acks[p.ID]
	delete(s.acks, p.ID)
	if a != nil {
		args, err := p.Args()
		s.resolveAck(a, Args{Raw: args, Attachments: p.Attachments}, err)
	}
	s.mu.Unlock()
}

// resolveAck delivers an ack result; the caller removed a from s.acks.
func (s *Socket) resolveAck(a *pendingAck, args Args, err error) {
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.ch != nil {
		a.ch <- ackResult{args, err}
		return
	}
	s.m.d.push(job{kind: jobAck, s: s, args: args.Raw, att: args.Attachments, err: err, ackFn: a.fn})
}

// removeAck forgets ack id and reports whether it was pending.
func (s *Socket) removeAck(id uint64) *pendingAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.acks[id]
	delete(s.acks, id)
	return a
}

// runEvent calls the handlers of an event, on the dispatcher.
func (s *Socket) runEvent(j *job) {
	s.mu.Lock()
	anys := s.anys
	hs := s.takeLocked(j.name)
	s.mu.Unlock()
	var ack callback.AckFunc
	if j.hasID {
		ack = s.ackFunc(j.id)
	}
	args := Args{Raw: j.args, Attachments: j.att}
	for _, f := range anys {
		f(j.name, args)
	}
	for _, h := range hs {
		h.fn.Call(j.args, j.att, ack)
	}
}

// runReserved calls the handlers of "connect", "disconnect" or
// "connect_error", on the dispatcher.
func (s *Socket) runReserved(j *job) {
	name := "connect"
	switch j.kind {
	case jobDisconnect:
		name = "disconnect"
	case jobConnectError:
		name = "connect_error"
	}
	s.mu.Lock()
	hs := s.takeLocked(name)
	s.mu.Unlock()
	for _, h := range hs {
		switch {
		case h.conn != nil:
			h.conn()
		case h.disc != nil:
			h.disc(j.reason)
		case h.cerr != nil:
			h.cerr(j.err)
		}
	}
}

// takeLocked returns the handlers of event, removing the Once ones.
func (s *Socket) takeLocked(event string) []*handler {
	hs := s.handlers[event]
	for _, h := range hs {
		if h.once {
			keep := make([]*handler, 0, len(hs))
			for _, h := range hs {
				if !h.once {
					keep = append(keep, h)
				}
			}
			if len(keep) == 0 {
				delete(s.handlers, event)
			} else {
				s.handlers[event] = keep
			}
			break
		}
	}
	return hs
}

// ackFunc returns the callback answering the server's ack request id; only
// its first call sends.
func (s *Socket) ackFunc(id uint64) callback.AckFunc {
	var done atomic.Bool
	return func(args ...any) {
		if done.Swap(true) {
			return
		}
		data, att, err := parser.MarshalArgs(args...)
		if err != nil {
			return
		}
		p := parser.Packet{Type: parser.Ack, Namespace: s.nsp, ID: id, HasID: true, Data: data, Attachments: att}
		var tmp [1]outPacket
		pkts := encodePacket(tmp[:0], &p)
		s.mu.Lock()
		if !s.connected || s.eng.send(pkts...) != nil {
			releaseAll(pkts)
		}
		s.mu.Unlock()
	}
}

var reserved = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true,
}

// On registers fn for event. For "connect" fn must be a func(), for
// "disconnect" a func(reason string), for "connect_error" a func(err error).
// For other events fn may take any JSON-decodable parameters, each decoded
// from the matching argument ([]byte for binary ones; json.RawMessage keeps
// the raw JSON; missing ones are zero), optionally followed by a trailing
// AckFunc (func(...any)) to answer the server's ack request; a
// func(...any) gets every argument decoded generically, a func(Args) the
// raw list. Extra arguments are ignored; when an argument does not decode
// into its parameter the handler is not called. On panics if fn has
// another shape.
func (s *Socket) On(event string, fn any) { s.on(event, fn, false) }

// Once is On for a single call.
func (s *Socket) Once(event string, fn any) { s.on(event, fn, true) }

func (s *Socket) on(event string, fn any, once bool) {
	h := &handler{once: once}
	bad := false
	switch event {
	case "connect":
		f, ok := fn.(func())
		h.conn, bad = f, !ok || f == nil
	case "disconnect":
		f, ok := fn.(func(string))
		h.disc, bad = f, !ok || f == nil
	case "connect_error":
		f, ok := fn.(func(error))
		h.cerr, bad = f, !ok || f == nil
	default:
		f, err := callback.New(fn)
		if err != nil {
			panic(fmt.Sprintf("client: On(%q): %v", event, err))
		}
		h.fn = f
	}
	if bad {
		panic(fmt.Sprintf("client: On(%q): handler must be a non-nil %s, got %T", event, reservedShape[event], fn))
	}
	s.mu.Lock()
	hs := s.handlers[event]
	s.handlers[event] = append(hs[:len(hs):len(hs)], h)
	s.mu.Unlock()
}

var reservedShape = map[string]string{"connect": "func()", "disconnect": "func(string)", "connect_error": "func(error)"}

// Off removes every handler of event.
func (s *Socket) Off(event string) {
	s.mu.Lock()
	delete(s.handlers, event)
	s.mu.Unlock()
}

// OnAny registers fn to be called for every event, before the event's own
// handlers.
func (s *Socket) OnAny(fn func(event string, args Args)) {
	if fn == nil {
		panic("client: OnAny: nil handler")
	}
	s.mu.Lock()
	s.anys = append(s.anys[:len(s.anys):len(s.anys)], fn)
	s.mu.Unlock()
}

// OffAny removes every handler registered with OnAny.
func (s *Socket) OffAny() {
	s.mu.Lock()
	s.anys = nil
	s.mu.Unlock()
}

// Emit sends an event with args: values encoded with encoding/json, []byte
// values (also nested in []any and map[string]any) sent as binary
// attachments. While the socket is disconnected the event is buffered and
// sent, in order, after the next CONNECT, like the JavaScript client's
// sendBuffer. Emit returns an error only if args cannot be encoded or the
// event name is reserved. The []byte args must not be modified afterwards.
func (s *Socket) Emit(event string, args ...any) error {
	_, err := s.emit(event, args, false, nil)
	return err
}

// EmitWithAck emits an event asking for an acknowledgement and waits for
// it: it returns the ack's arguments, ErrAckTimeout after
// Options.AckTimeout (if set), ErrDisconnected if the socket disconnected
// after sending it, or ctx's error.
func (s *Socket) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return s.emitWithAck(ctx, event, args, false, s.m.opts.AckTimeout)
}

// EmitWithAckFunc emits an event asking for an acknowledgement and returns
// at once; fn is called on the handler goroutine with the ack's arguments,
// or with ErrAckTimeout (after Options.AckTimeout, if set) or
// ErrDisconnected.
func (s *Socket) EmitWithAckFunc(event string, fn func(Args, error), args ...any) error {
	return s.emitWithAckFunc(event, fn, args, false, s.m.opts.AckTimeout)
}

// Volatile returns an Emitter whose events are dropped, instead of
// buffered, when the socket is disconnected or the transport is busy.
func (s *Socket) Volatile() *Emitter {
	return &Emitter{s: s, volatile: true, timeout: s.m.opts.AckTimeout}
}

// Timeout returns an Emitter whose acknowledgements time out after d
// (0: never), overriding Options.AckTimeout.
func (s *Socket) Timeout(d time.Duration) *Emitter { return &Emitter{s: s, timeout: d} }

// Emitter emits with flags, like socket.volatile and socket.timeout(ms) in
// JavaScript. It is immutable and safe for concurrent use.
type Emitter struct {
	s        *Socket
	volatile bool
	timeout  time.Duration
}

// Volatile returns a copy of the Emitter that drops events instead of
// buffering them.
func (em *Emitter) Volatile() *Emitter { c := *em; c.volatile = true; return &c }

// Timeout returns a copy of the Emitter with ack timeout d (0: never).
func (em *Emitter) Timeout(d time.Duration) *Emitter { c := *em; c.timeout = d; return &c }

// Emit is Socket.Emit with the Emitter's flags.
func (em *Emitter) Emit(event string, args ...any) error {
	_, err := em.s.emit(event, args, em.volatile, nil)
	return err
}

// EmitWithAck is Socket.EmitWithAck with the Emitter's flags.
func (em *Emitter) EmitWithAck(ctx context.Context, event string, args ...any) (Args, error) {
	return em.s.emitWithAck(ctx, event, args, em.volatile, em.timeout)
}

// EmitWithAckFunc is Socket.EmitWithAckFunc with the Emitter's flags.
func (em *Emitter) EmitWithAckFunc(event string, fn func(Args, error), args ...any) error {
	return em.s.emitWithAckFunc(event, fn, args, em.volatile, em.timeout)
}

func (s *Socket) emitWithAck(ctx context.Context, event string, args []any, volatile bool, timeout time.Duration) (Args, error) {
	a := &pendingAck{ch: make(chan ackResult, 1)}
	id, err := s.emit(event, args, volatile, a)
	if err != nil {
		return Args{}, err
	}
	var tc <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		tc = t.C
	}
	select {
	case r := <-a.ch:
		return r.args, r.err
	case <-tc:
		err = ErrAckTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}
	if s.removeAck(id) == nil { // resolved meanwhile
		r := <-a.ch
		return r.args, r.err
	}
	return Args{}, err
}

func (s *Socket) emitWithAckFunc(event string, fn func(Args, error), args []any, volatile bool, timeout time.Duration) error {
	if fn == nil {
		return errors.New("client: EmitWithAckFunc: nil callback")
	}
	a := &pendingAck{fn: fn}
	id, err := s.emit(event, args, volatile, a)
	if err != nil {
		return err
	}
	if timeout > 0 {
		s.mu.Lock() // a.timer is read under s.mu by resolveAck
		if s.acks[id] == a {
			a.timer = time.AfterFunc(timeout, func() {
				if s.removeAck(id) != nil {
					s.m.d.push(job{kind: jobAck, s: s, err: ErrAckTimeout, ackFn: fn})
				}
			})
		}
		s.mu.Unlock()
	}
	return nil
}

// emit encodes and sends (or buffers, or drops) an event; with a non-nil
// ack it registers it and returns its id.
func (s *Socket) emit(event string, args []any, volatile bool, ack *pendingAck) (uint64, error) {
	if reserved[event] {
		return 0, fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	data, att, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return 0, fmt.Errorf("client: emit %q: %w", event, err)
	}
	p := parser.Packet{Type: parser.Event, Namespace: s.nsp, Data: data, Attachments: att}
	if ack != nil {
		p.ID, p.HasID = s.nextAck.Add(1)-1, true
	}
	var tmp [1]outPacket
	pkts := encodePacket(tmp[:0], &p)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ack != nil {
		s.acks[p.ID] = ack
	}
	switch {
	case volatile && (!s.connected || !s.eng.writable()):
		releaseAll(pkts) // dropped; an ack then times out, as in JavaScript
	case s.connected && s.eng.send(pkts...) == nil:
		if ack != nil {
			ack.sent = true
		}
	default:
		s.sendBuf = append(s.sendBuf, pkts...)
	}
	return p.ID, nil
}
