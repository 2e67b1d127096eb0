package switchboard

import (
	"context"
	"time"

	"github.com/switchboard-io/switchboard/parser"
)

// Adapter keeps the rooms of one namespace and carries broadcasts and socket
// operations to the sockets they select: on this node only (LocalAdapter) or
// across a cluster. Every method is called concurrently and must be safe for
// it. Methods that select sockets take BroadcastOptions: sockets in any of
// Rooms (all sockets when empty) minus sockets in any of Except.
type Adapter interface {
	// AddAll adds a local socket to rooms, firing create-room and join-room.
	AddAll(id string, rooms []string)
	// Del removes a local socket from a room, firing leave-room and, when
	// the room empties, delete-room.
	Del(id, room string)
	// DelAll removes a local socket from every room, in join order.
	DelAll(id string)
	// Rooms returns the rooms of a local socket, in join order.
	Rooms(id string) []string
	// Sockets returns the ids of the local sockets in any of rooms (all
	// when rooms is empty).
	Sockets(rooms []string) []string

	// Broadcast sends a packet to the selected sockets. p.Namespace is the
	// adapter's namespace; p must not be modified.
	Broadcast(p *parser.Packet, opts BroadcastOptions) error
	// BroadcastWithAck sends a packet asking every selected socket for an
	// acknowledgement. clientCount is called exactly once, with the number
	// of sockets reached on all nodes together (a cluster adapter sums the
	// nodes' counts first); ack is called once per answer, before or after.
	BroadcastWithAck(p *parser.Packet, opts BroadcastOptions, clientCount func(int), ack func(Args)) error

	// FetchSockets describes the selected sockets.
	FetchSockets(ctx context.Context, opts BroadcastOptions) ([]*RemoteSocket, error)
	// AddSockets makes the selected sockets join rooms.
	AddSockets(opts BroadcastOptions, rooms []string) error
	// DelSockets makes the selected sockets leave rooms.
	DelSockets(opts BroadcastOptions, rooms []string) error
	// DisconnectSockets disconnects the selected sockets.
	DisconnectSockets(opts BroadcastOptions, close bool) error

	// ServerSideEmit sends an event to the other nodes' namespaces; with
	// wantAck it waits, until ctx ends, for one answer per other node.
	ServerSideEmit(ctx context.Context, event string, args []any, wantAck bool) ([]Args, error)
	// ServerCount returns the number of nodes, this one included.
	ServerCount(ctx context.Context) (int, error)

	// PersistSession keeps the state of a socket that dropped with a
	// recoverable reason, for connection-state recovery.
	PersistSession(ctx context.Context, session *SessionState) error
	// RestoreSession takes back the state saved under pid and returns it with
	// the packets the socket missed after offset. It returns
	// ErrSessionNotFound when the session or the offset is unknown or expired.
	RestoreSession(ctx context.Context, pid, offset string) (*SessionState, []*parser.Packet, error)

	// Close stops the adapter's background work.
	Close() error
}

// SessionKeeper is an optional interface for cluster adapters that save the
// session of every connected socket ahead of time (with recovery on), so
// that a socket whose node dies without running its disconnect code can
// still be recovered on another node. KeepSession is called after the
// socket connected and after each change of its rooms or its Data;
// ForgetSession when it disconnects for a reason that is not recoverable.
// Both must not block on the network: save in the background.
type SessionKeeper interface {
	KeepSession(st *SessionState)
	ForgetSession(pid string)
}

// SessionState is what connection-state recovery keeps of a disconnected
// socket: its id, private id, rooms (its own included) and data. Cluster
// adapters carry Data as JSON.
type SessionState struct {
	SID   string
	PID   string
	Rooms []string
	Data  any
}

// BroadcastOptions selects sockets: those in any of Rooms (every socket of
// the namespace when Rooms is empty), minus those in any of Except.
type BroadcastOptions struct {
	Rooms  []string
	Except []string
	Flags  BroadcastFlags
}

// Reaches reports whether a broadcast with these options reaches a socket
// that is in rooms (its own room included): in none of Except, and in one
// of Rooms unless Rooms is empty. Recovery uses it to pick the missed events
// of a returning socket.
func (o BroadcastOptions) Reaches(rooms map[string]bool) bool {
	for _, r := range o.Except {
		if rooms[r] {
			return false
		}
	}
	if len(o.Rooms) == 0 {
		return true
	}
	for _, r := range o.Rooms {
		if rooms[r] {
			return true
		}
	}
	return false
}

// BroadcastFlags modify a broadcast.
type BroadcastFlags struct {
	Volatile bool          // drop for clients whose transport is not ready
	Local    bool          // this node only
	Timeout  time.Duration // acknowledgement timeout, 0 for none
}

// RoomEventKind names a room lifecycle event.
type RoomEventKind string

// The room lifecycle events, named as in socket.io.
const (
	CreateRoom RoomEventKind = "create-room"
	DeleteRoom RoomEventKind = "delete-room"
	JoinRoom   RoomEventKind = "join-room"
	LeaveRoom  RoomEventKind = "leave-room"
)

// RoomEvent is a room lifecycle event. SocketID is empty for create-room
// and delete-room.
type RoomEvent struct {
	Kind     RoomEventKind
	Room     string
	SocketID string
}
