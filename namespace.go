package switchboard

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard/internal/callback"
	"github.com/switchboard-io/switchboard/parser"
)

// Namespace is a communication channel multiplexed over a connection, with
// its own middlewares, connection handler, sockets, rooms and adapter. A
// namespace returned by OfFunc or OfRegexp is a parent: what is set on it
// applies to each child namespace it creates. Methods are safe for
// concurrent use.
type Namespace struct {
	srv     *Server
	name    string
	parent  *Namespace
	match   func(string, json.RawMessage) bool // parents only
	adapter Adapter                            // nil for parents
	ackIDs  atomic.Uint64
	durable durableHub

	unknownAcks atomic.Uint64

	mu           sync.RWMutex
	middlewares  []func(*Socket) error
	onConnection []func(*Socket)
	sockets      map[string]*Socket
	children     []*Namespace
	roomHandlers []func(RoomEvent)
	serverEvents map[string]*callback.Func
}

func newNamespace(srv *Server, name string, parent *Namespace) *Namespace {
	ns := &Namespace{
		srv:          srv,
		name:         name,
		parent:       parent,
		sockets:      make(map[string]*Socket),
		serverEvents: make(map[string]*callback.Func),
	}
	ns.durable.ns = ns
	if name != "" {
		ns.adapter = srv.opts.Adapter(ns)
	}
	return ns
}

// Name returns the namespace name, such as "/" or "/chat"; "" for a parent.
func (ns *Namespace) Name() string { return ns.name }

// Server returns the server the namespace belongs to.
func (ns *Namespace) Server() *Server { return ns.srv }

// Adapter returns the namespace's adapter (nil for a parent namespace).
func (ns *Namespace) Adapter() Adapter { return ns.adapter }

// Use adds a middleware. Middlewares run in order for every connecting
// socket, before the connection handler; the first error refuses the
// connection and reaches the client as connect_error (see ConnectError).
func (ns *Namespace) Use(mw func(*Socket) error) {
	ns.mu.Lock()
	ns.middlewares = append(ns.middlewares, mw)
	ns.mu.Unlock()
}

// OnConnection adds a connection handler, called for every socket that
// connected (after the middlewares accepted it and after the client was told).
func (ns *Namespace) OnConnection(fn func(*Socket)) {
	ns.mu.Lock()
	ns.onConnection = append(ns.onConnection, fn)
	ns.mu.Unlock()
}

// OnRoomEvent adds a handler for room lifecycle events (create-room,
// delete-room, join-room, leave-room) of this namespace, which fire on the
// node holding the socket, in the order socket.io fires them.
func (ns *Namespace) OnRoomEvent(fn func(RoomEvent)) {
	ns.mu.Lock()
	ns.roomHandlers = append(ns.roomHandlers, fn)
	ns.mu.Unlock()
}

// OnServerSideEmit registers the handler of an event sent by another node
// with ServerSideEmit. Handler shapes are as for Socket.On.
func (ns *Namespace) OnServerSideEmit(event string, fn any) {
	cb, err := callback.New(fn)
	if err != nil {
		panic("switchboard: " + err.Error())
	}
	ns.mu.Lock()
	ns.serverEvents[event] = cb
	ns.mu.Unlock()
}

// HandleServerSideEmit delivers an event from another node to the handler
// registered with OnServerSideEmit. Adapters call it; ack is nil when the
// sender wants no answer.
func (ns *Namespace) HandleServerSideEmit(event string, args []json.RawMessage, attachments [][]byte, ack AckFunc) {
	ns.mu.RLock()
	h := ns.serverEvents[event]
	ns.mu.RUnlock()
	if h == nil {
		return
	}
	if err := h.Call(args, attachments, ack); err != nil {
		ns.srv.opts.Logger.Debug("switchboard: server-side event handler error", "event", event, "err", err)
	}
}

// ServerSideEmit sends an event to the other nodes of a cluster (not to
// this one). With a timeout (ctx deadline) and ack wanted, it waits for one
// answer per other node.
func (ns *Namespace) ServerSideEmit(ctx context.Context, event string, args ...any) error {
	_, err := ns.adapter.ServerSideEmit(ctx, event, args, false)
	return err
}

// ServerSideEmitWithAck is ServerSideEmit waiting for one answer per other
// node, until ctx ends.
func (ns *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	return ns.adapter.ServerSideEmit(ctx, event, args, true)
}

// Socket returns a socket connected to this node's namespace by id, or nil.
func (ns *Namespace) Socket(id string) *Socket {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.sockets[id]
}

// SocketCount returns the number of sockets connected to this node's namespace.
func (ns *Namespace) SocketCount() int {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return len(ns.sockets)
}

func (ns *Namespace) addChild(c *Namespace) {
	ns.mu.Lock()
	ns.children = append(ns.children, c)
	ns.mu.Unlock()
}

func (ns *Namespace) emitRoomEvent(ev RoomEvent) {
	ns.mu.RLock()
	hs := ns.roomHandlers
	ns.mu.RUnlock()
	for _, h := range hs {
		h(ev)
	}
}

// UnknownAcks returns how many acknowledgements clients sent for ids the
// namespace never asked for or stopped waiting for (they are ignored).
func (ns *Namespace) UnknownAcks() uint64 { return ns.unknownAcks.Load() }

func (ns *Namespace) nextAckID() uint64 { return ns.ackIDs.Add(1) - 1 }

func (ns *Namespace) runMiddlewares(s *Socket) error {
	var mws []func(*Socket) error
	if ns.parent != nil {
		ns.parent.mu.RLock()
		mws = append(mws, ns.parent.middlewares...)
		ns.parent.mu.RUnlock()
	}
	ns.mu.RLock()
	mws = append(mws, ns.middlewares...)
	ns.mu.RUnlock()
	for _, mw := range mws {
		if err := mw(s); err != nil {
			return err
		}
	}
	return nil
}

// connectSocket registers s, joins its own room (and, for a recovered
// socket, its saved rooms), sends the missed packets, answers CONNECT and
// calls the connection handlers, as socket.io's _doConnect does.
func (ns *Namespace) connectSocket(s *Socket, rooms []string, missed []*parser.Packet) {
	ns.mu.Lock()
	ns.sockets[s.id] = s
	ns.mu.Unlock()
	s.mu.Lock()
	s.connected = true
	s.mu.Unlock()
	ns.adapter.AddAll(s.id, []string{s.id})
	if len(rooms) > 0 {
		ns.adapter.AddAll(s.id, rooms)
	}
	for _, p := range missed {
		_ = s.client.send(p)
	}
	reply := map[string]string{"sid": s.id}
	if s.pid != "" {
		reply["pid"] = s.pid
	}
	replyJSON, _ := json.Marshal(reply)
	s.keepSession()
	_ = s.client.send(&parser.Packet{Type: parser.Connect, Namespace: ns.name, Data: replyJSON})
	ns.startSubscriptions(s)
	var handlers []func(*Socket)
	if ns.parent != nil {
		ns.parent.mu.RLock()
		handlers = append(handlers, ns.parent.onConnection...)
		ns.parent.mu.RUnlock()
	}
	ns.mu.RLock()
	handlers = append(handlers, ns.onConnection...)
	ns.mu.RUnlock()
	for _, h := range handlers {
		h(s)
	}
}

func (ns *Namespace) removeSocket(s *Socket) {
	ns.mu.Lock()
	if ns.sockets[s.id] == s {
		delete(ns.sockets, s.id)
	}
	ns.mu.Unlock()
}

func (ns *Namespace) newBroadcast() *BroadcastOperator { return &BroadcastOperator{nsp: ns} }

// To starts a broadcast to the sockets in any of the rooms.
func (ns *Namespace) To(rooms ...string) *BroadcastOperator { return ns.newBroadcast().To(rooms...) }

// In is the same as To.
func (ns *Namespace) In(rooms ...string) *BroadcastOperator { return ns.To(rooms...) }

// Except starts a broadcast to every socket not in any of the rooms.
func (ns *Namespace) Except(rooms ...string) *BroadcastOperator {
	return ns.newBroadcast().Except(rooms...)
}

// Volatile starts a volatile broadcast.
func (ns *Namespace) Volatile() *BroadcastOperator { return ns.newBroadcast().Volatile() }

// Local starts a broadcast to this node's sockets only.
func (ns *Namespace) Local() *BroadcastOperator { return ns.newBroadcast().Local() }

// Timeout starts a broadcast whose EmitWithAck waits at most d.
func (ns *Namespace) Timeout(d time.Duration) *BroadcastOperator {
	return ns.newBroadcast().Timeout(d)
}

// Emit sends an event to every socket of the namespace.
func (ns *Namespace) Emit(event string, args ...any) error {
	return ns.newBroadcast().Emit(event, args...)
}

// FetchSockets returns the sockets of the namespace, across the cluster.
func (ns *Namespace) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	return ns.newBroadcast().FetchSockets(ctx)
}

// SocketsJoin makes every socket of the namespace join the rooms.
func (ns *Namespace) SocketsJoin(rooms ...string) error {
	return ns.newBroadcast().SocketsJoin(rooms...)
}

// SocketsLeave makes every socket of the namespace leave the rooms.
func (ns *Namespace) SocketsLeave(rooms ...string) error {
	return ns.newBroadcast().SocketsLeave(rooms...)
}

// DisconnectSockets disconnects every socket of the namespace.
func (ns *Namespace) DisconnectSockets(close bool) error {
	return ns.newBroadcast().DisconnectSockets(close)
}

// targets returns the namespaces a broadcast on ns goes to: itself, or the
// children of a parent.
func (ns *Namespace) targets() []*Namespace {
	if ns.adapter != nil {
		return []*Namespace{ns}
	}
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return append([]*Namespace(nil), ns.children...)
}
