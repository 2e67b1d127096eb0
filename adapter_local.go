package switchboard

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/switchboard-io/switchboard/engineio"
	"github.com/switchboard-io/switchboard/parser"
)

// LocalAdapter is the in-memory Adapter of one namespace on one node: the
// room index and delivery to local sockets. It is the default adapter, and
// cluster adapters embed it for their local part, as socket.io's cluster
// adapters extend its in-memory adapter.
type LocalAdapter struct {
	ns *Namespace

	mu    sync.RWMutex
	rooms map[string]*roomMembers // room → members
	joins map[string][]string     // socket → rooms in join order

	recovery *recoveryLog // nil unless connection-state recovery is on
}

var _ Adapter = (*LocalAdapter)(nil)

// NewLocalAdapter returns the in-memory adapter of ns; it fits
// Options.Adapter.
func NewLocalAdapter(ns *Namespace) Adapter { return NewLocal(ns) }

// NewLocal returns the in-memory adapter of ns as its concrete type, for
// cluster adapters that embed it.
func NewLocal(ns *Namespace) *LocalAdapter {
	a := &LocalAdapter{
		ns:    ns,
		rooms: make(map[string]*roomMembers),
		joins: make(map[string][]string),
	}
	if r := ns.srv.opts.ConnectionStateRecovery; r != nil {
		a.recovery = newRecoveryLog(*r)
	}
	return a
}

// AddAll implements Adapter.
func (a *LocalAdapter) AddAll(id string, rooms []string) {
	s := a.ns.Socket(id)
	if s == nil {
		return
	}
	var events []RoomEvent
	a.mu.Lock()
	for _, room := range rooms {
		members := a.rooms[room]
		if members == nil {
			members = &roomMembers{}
			a.rooms[room] = members
			events = append(events, RoomEvent{Kind: CreateRoom, Room: room})
		}
		if members.get(id) == nil {
			members.add(id, s)
			a.joins[id] = append(a.joins[id], room)
			events = append(events, RoomEvent{Kind: JoinRoom, Room: room, SocketID: id})
		}
	}
	a.mu.Unlock()
	a.fire(events)
}

// Del implements Adapter.
func (a *LocalAdapter) Del(id, room string) {
	a.mu.Lock()
	events := a.delLocked(id, room, nil)
	list := a.joins[id]
	for i, r := range list {
		if r == room {
			a.joins[id] = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	a.mu.Unlock()
	a.fire(events)
}

func (a *LocalAdapter) delLocked(id, room string, events []RoomEvent) []RoomEvent {
	members := a.rooms[room]
	if members.get(id) == nil {
		return events
	}
	members.remove(id)
	events = append(events, RoomEvent{Kind: LeaveRoom, Room: room, SocketID: id})
	if members.len() == 0 {
		delete(a.rooms, room)
		events = append(events, RoomEvent{Kind: DeleteRoom, Room: room})
	}
	return events
}

// DelAll implements Adapter.
func (a *LocalAdapter) DelAll(id string) {
	a.mu.Lock()
	var events []RoomEvent
	for _, room := range a.joins[id] {
		events = a.delLocked(id, room, events)
	}
	delete(a.joins, id)
	a.mu.Unlock()
	a.fire(events)
}

func (a *LocalAdapter) fire(events []RoomEvent) {
	for _, ev := range events {
		a.ns.emitRoomEvent(ev)
	}
}

// Rooms implements Adapter.
func (a *LocalAdapter) Rooms(id string) []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return append([]string(nil), a.joins[id]...)
}

// Sockets implements Adapter.
func (a *LocalAdapter) Sockets(rooms []string) []string {
	socks := a.selectSockets(BroadcastOptions{Rooms: rooms})
	ids := make([]string, len(socks))
	for i, s := range socks {
		ids[i] = s.id
	}
	return ids
}

// RoomNames returns the rooms that currently have local members.
func (a *LocalAdapter) RoomNames() []string {
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]string, 0, len(a.rooms))
	for r := range a.rooms {
		out = append(out, r)
	}
	return out
}

// selectSockets returns the local sockets matching opts, each once. It holds
// the read lock only while collecting, never while writing to sockets.
func (a *LocalAdapter) selectSockets(opts BroadcastOptions) []*Socket {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var excluded map[string]struct{}
	if len(opts.Except) > 0 {
		excluded = make(map[string]struct{})
		for _, r := range opts.Except {
			a.rooms[r].each(func(id string, _ *Socket) { excluded[id] = struct{}{} })
		}
	}
	var out []*Socket
	switch {
	case len(opts.Rooms) == 0:
		out = make([]*Socket, 0, len(a.joins))
		for id := range a.joins {
			if _, x := excluded[id]; x {
				continue
			}
			// Every connected socket is in its own room.
			if s := a.rooms[id].get(id); s != nil {
				out = append(out, s)
			}
		}
	case len(opts.Rooms) == 1:
		members := a.rooms[opts.Rooms[0]]
		out = make([]*Socket, 0, members.len())
		members.each(func(id string, s *Socket) {
			if _, x := excluded[id]; !x {
				out = append(out, s)
			}
		})
	default:
		seen := make(map[string]struct{})
		for _, r := range opts.Rooms {
			a.rooms[r].each(func(id string, s *Socket) {
				if _, x := excluded[id]; x {
					return
				}
				if _, dup := seen[id]; dup {
					return
				}
				seen[id] = struct{}{}
				out = append(out, s)
			})
		}
	}
	return out
}

// Broadcast implements Adapter: the packet is encoded once and the same
// bytes are queued on every selected connection.
func (a *LocalAdapter) Broadcast(p *parser.Packet, opts BroadcastOptions) error {
	if a.recovery != nil && storable(p, opts) {
		p = a.recovery.append(p, opts)
	}
	a.Deliver(p, opts)
	return nil
}

// unheard reports whether a broadcast to room would reach no socket and
// leave nothing behind: the room has no member and there is no recovery
// log.
func (a *LocalAdapter) unheard(room string) bool {
	if a.recovery != nil {
		return false
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.rooms[room] == nil
}

// Deliver sends a packet to the local sockets selected by opts, encoding it
// once. Unlike Broadcast it keeps nothing for recovery: cluster adapters
// call it with packets that already carry their offset.
func (a *LocalAdapter) Deliver(p *parser.Packet, opts BroadcastOptions) {
	targets := a.selectSockets(opts)
	if len(targets) == 0 {
		return // nothing to encode for
	}
	msgs := encodeMessages(p)
	// One goroutine (per core) writes to the connections in turn, rather
	// than one writer goroutine started per connection.
	var b engineio.Batch
	for _, s := range targets {
		deliver(&b, s, msgs, opts.Flags.Volatile)
	}
	b.Flush()
	a.ns.srv.count(p, msgs, len(targets))
}

// deliver queues msgs for s; b.Flush writes them.
func deliver(b *engineio.Batch, s *Socket, msgs []engineio.Message, volatile bool) {
	conn := s.client.conn
	if volatile && !conn.Writable() {
		return
	}
	// A full queue closes that connection (slow consumer); the broadcast
	// goes on for everyone else.
	_ = conn.SendBatched(b, msgs...)
}

// BroadcastWithAck implements Adapter.
func (a *LocalAdapter) BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, clientCount func(int), ack func(Args)) error {
	q := *p
	q.ID, q.HasID = a.ns.nextAckID(), true
	msgs := encodeMessages(&q)
	n := 0
	var b engineio.Batch
	defer b.Flush()
	for _, s := range a.selectSockets(opts) {
		if !s.addAck(q.ID, func(args Args, err error) {
			if err == nil {
				ack(args)
			}
		}) {
			continue
		}
		n++
		deliver(&b, s, msgs, opts.Flags.Volatile)
	}
	clientCount(n)
	return nil
}

// FetchSockets implements Adapter.
func (a *LocalAdapter) FetchSockets(_ context.Context, opts BroadcastOptions) ([]*RemoteSocket, error) {
	socks := a.selectSockets(opts)
	out := make([]*RemoteSocket, len(socks))
	for i, s := range socks {
		out[i] = &RemoteSocket{ID: s.id, Handshake: s.Handshake(), Rooms: a.Rooms(s.id), Data: s.Data(), nsp: a.ns}
	}
	return out, nil
}

// AddSockets implements Adapter. Each socket's MaxRoomsPerSocket still
// applies: a socket that would exceed it joins none of the rooms.
func (a *LocalAdapter) AddSockets(opts BroadcastOptions, rooms []string) error {
	var errs []error
	for _, s := range a.selectSockets(opts) {
		if err := s.Join(rooms...); err != nil {
			errs = append(errs, fmt.Errorf("socket %s: %w", s.id, err))
		}
	}
	return errors.Join(errs...)
}

// DelSockets implements Adapter.
func (a *LocalAdapter) DelSockets(opts BroadcastOptions, rooms []string) error {
	for _, s := range a.selectSockets(opts) {
		for _, r := range rooms {
			s.Leave(r)
		}
	}
	return nil
}

// DisconnectSockets implements Adapter.
func (a *LocalAdapter) DisconnectSockets(opts BroadcastOptions, close bool) error {
	for _, s := range a.selectSockets(opts) {
		s.Disconnect(close)
	}
	return nil
}

// ServerSideEmit implements Adapter: a single node has no other node to
// tell, so it returns no answers.
func (a *LocalAdapter) ServerSideEmit(context.Context, string, []any, bool) ([]Args, error) {
	return nil, nil
}

// ServerCount implements Adapter: one node.
func (a *LocalAdapter) ServerCount(context.Context) (int, error) { return 1, nil }

// PersistSession implements Adapter; sessions are kept in memory for
// RecoveryOptions.MaxDisconnectionDuration.
func (a *LocalAdapter) PersistSession(_ context.Context, st *SessionState) error {
	if a.recovery != nil {
		a.recovery.persist(*st)
	}
	return nil
}

// RestoreSession implements Adapter.
func (a *LocalAdapter) RestoreSession(_ context.Context, pid, offset string) (*SessionState, []*parser.Packet, error) {
	if a.recovery == nil {
		return nil, nil, ErrSessionNotFound
	}
	return a.recovery.restore(pid, offset)
}

// Close implements Adapter.
func (a *LocalAdapter) Close() error { return nil }

// roomMembers is a room's local members. Most rooms have one (every
// socket's own room), kept without a map: a map costs an idle connection
// about 250 bytes. A nil *roomMembers is an empty room. Larger rooms keep
// their members in join order (a leaving member's place goes to the last),
// so a broadcast writes to them in a stable order, as socket.io does.
type roomMembers struct {
	id   string  // the only member's id, when many is nil
	one  *Socket // the only member, when many is nil
	many *memberList
}

// memberList is the members of a room with more than one, in join order.
type memberList struct {
	list  []*Socket
	index map[string]int32 // position in list, by id
}

func (m *roomMembers) get(id string) *Socket {
	switch {
	case m == nil:
		return nil
	case m.many != nil:
		if i, ok := m.many.index[id]; ok {
			return m.many.list[i]
		}
	case m.one != nil && m.id == id:
		return m.one
	}
	return nil
}

func (m *roomMembers) add(id string, s *Socket) {
	switch {
	case m.many != nil:
		l := m.many
		if i, ok := l.index[id]; ok {
			l.list[i] = s
			return
		}
		l.index[id] = int32(len(l.list))
		l.list = append(l.list, s)
	case m.one == nil || m.id == id:
		m.id, m.one = id, s
	default:
		m.many = &memberList{list: []*Socket{m.one, s}, index: map[string]int32{m.id: 0, id: 1}}
		m.id, m.one = "", nil
	}
}

func (m *roomMembers) remove(id string) {
	switch {
	case m.many != nil:
		l := m.many
		i, ok := l.index[id]
		if !ok {
			return
		}
		last := len(l.list) - 1
		if int(i) != last {
			moved := l.list[last]
			l.list[i] = moved
			l.index[moved.id] = i
		}
		l.list[last] = nil
		l.list = l.list[:last]
		delete(l.index, id)
	case m.id == id:
		m.id, m.one = "", nil
	}
}

func (m *roomMembers) len() int {
	switch {
	case m == nil:
		return 0
	case m.many != nil:
		return len(m.many.list)
	case m.one != nil:
		return 1
	}
	return 0
}

// each calls fn for every member, in join order (see roomMembers).
func (m *roomMembers) each(fn func(id string, s *Socket)) {
	switch {
	case m == nil:
	case m.many != nil:
		for _, s := range m.many.list {
			fn(s.id, s)
		}
	case m.one != nil:
		fn(m.id, m.one)
	}
}
