package hub

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchboard-io/switchboard"
)

// Presence events sent to room members.
const (
	PresenceJoinEvent  = "switchboard:join"
	PresenceLeaveEvent = "switchboard:leave"
)

// PresenceNotice is the argument of switchboard:join and switchboard:leave.
type PresenceNotice struct {
	Room     string `json:"room"`
	Identity string `json:"identity"`
}

// rooms follows the room lifecycle events of the default namespace: how
// many local connections each hub room has (for the HTTP API and metrics),
// and, for presence rooms, which identities are in it.
//
// Presence is per identity and counts connections: an identity joins with
// its first connection and leaves with its last one. A connection that
// drops with a recoverable reason stays counted for the recovery window;
// if it is recovered in time nothing is announced (its rooms come back
// with it), otherwise its leave is announced when the window ends.
type rooms struct {
	h *Hub

	mu       sync.Mutex
	members  map[string]int                                 // room → local connections
	presence map[string]map[string]map[string]*presenceConn // room → identity → sid
	dropping map[string]bool                                // sids closing with a recoverable reason
	closed   bool
}

type presenceConn struct {
	timer *time.Timer // non-nil while the connection is in its recovery grace
}

func newRooms(h *Hub) *rooms {
	return &rooms{
		h:        h,
		members:  make(map[string]int),
		presence: make(map[string]map[string]map[string]*presenceConn),
		dropping: make(map[string]bool),
	}
}

// hubRoom reports whether a room event concerns a room clients use, as
// opposed to a socket's own room or the durable machinery's marker rooms.
func hubRoom(ev switchboard.RoomEvent) bool {
	return ev.Room != ev.SocketID && !strings.HasPrefix(ev.Room, "\x00")
}

func (r *rooms) onRoomEvent(ev switchboard.RoomEvent) {
	if ev.Kind != switchboard.JoinRoom && ev.Kind != switchboard.LeaveRoom {
		return // create/delete are derived from the member counts below
	}
	if !hubRoom(ev) {
		return
	}
	identity := ""
	if s := r.h.ns.Socket(ev.SocketID); s != nil {
		if info := infoOf(s.Data()); info != nil {
			identity = info.Identity
		}
	}
	presence := r.h.cfg.PresenceRooms.Match(ev.Room) && identity != ""
	var notice string
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	n := r.members[ev.Room]
	if ev.Kind == switchboard.JoinRoom {
		r.members[ev.Room] = n + 1
		if n == 0 {
			r.lifecycle("create-room", ev.Room, "")
		}
		r.lifecycle("join-room", ev.Room, ev.SocketID)
		if presence && r.joinLocked(ev.Room, identity, ev.SocketID) {
			notice = r.transitionLocked(true, ev.Room, identity, ev.SocketID)
		}
	} else {
		if n <= 1 {
			delete(r.members, ev.Room)
		} else {
			r.members[ev.Room] = n - 1
		}
		r.lifecycle("leave-room", ev.Room, ev.SocketID)
		if n == 1 {
			r.lifecycle("delete-room", ev.Room, "")
		}
		if presence && r.leaveLocked(ev.Room, identity, ev.SocketID) {
			notice = r.transitionLocked(false, ev.Room, identity, ev.SocketID)
		}
	}
	r.mu.Unlock()
	if notice != "" {
		r.announce(notice, ev.Room, identity, ev.SocketID)
	}
}

// transitionLocked handles an identity's arrival in (join) or departure
// from a room on this node: announced at once on a single node, handed to
// the cluster (in order, under r.mu) otherwise. It returns the notice to
// announce after unlocking, if any.
func (r *rooms) transitionLocked(join bool, room, identity, sid string) string {
	if c := r.h.cluster; c != nil {
		if join {
			c.join(room, identity, sid)
		} else {
			c.leave(room, identity)
		}
		return ""
	}
	if join {
		return PresenceJoinEvent
	}
	return PresenceLeaveEvent
}

func (r *rooms) lifecycle(kind, room, sid string) {
	r.h.metrics.roomEvents.WithLabelValues(kind).Inc()
	if sid == "" {
		r.h.log.Debug("room lifecycle", "event", kind, "room", room)
	} else {
		r.h.log.Debug("room lifecycle", "event", kind, "room", room, "sid", sid)
	}
}

// joinLocked adds a connection to a presence room and reports whether its
// identity just arrived.
func (r *rooms) joinLocked(room, identity, sid string) bool {
	ids := r.presence[room]
	if ids == nil {
		ids = make(map[string]map[string]*presenceConn)
		r.presence[room] = ids
	}
	conns := ids[identity]
	if c := conns[sid]; c != nil {
		// A recovered connection coming back within its grace.
		if c.timer != nil {
			c.timer.Stop()
			c.timer = nil
		}
		return false
	}
	if conns == nil {
		conns = make(map[string]*presenceConn)
		ids[identity] = conns
	}
	conns[sid] = &presenceConn{}
	return len(conns) == 1
}

// leaveLocked removes a connection from a presence room (or starts its
// recovery grace) and reports whether its identity just left.
func (r *rooms) leaveLocked(room, identity, sid string) bool {
	conns := r.presence[room][identity]
	c := conns[sid]
	if c == nil {
		return false
	}
	if r.dropping[sid] {
		if c.timer == nil {
			c.timer = time.AfterFunc(r.h.recoveryWindow, func() { r.expire(room, identity, sid, c) })
		}
		return false
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	return r.removeLocked(room, identity, sid)
}

func (r *rooms) removeLocked(room, identity, sid string) bool {
	ids := r.presence[room]
	conns := ids[identity]
	delete(conns, sid)
	if len(conns) > 0 {
		return false
	}
	delete(ids, identity)
	if len(ids) == 0 {
		delete(r.presence, room)
	}
	return true
}

// expire ends the grace of a connection that was not recovered in time.
func (r *rooms) expire(room, identity, sid string, c *presenceConn) {
	r.mu.Lock()
	if r.closed || r.presence[room][identity][sid] != c || c.timer == nil {
		r.mu.Unlock()
		return
	}
	notice := ""
	if r.removeLocked(room, identity, sid) {
		notice = r.transitionLocked(false, room, identity, sid)
	}
	r.mu.Unlock()
	if notice != "" {
		r.announce(notice, room, identity, sid)
	}
}

func (r *rooms) announce(event, room, identity, sid string) {
	r.h.metrics.presenceEvents.WithLabelValues(event).Inc()
	r.h.log.Debug("presence", "event", event, "room", room, "identity", identity)
	b := r.h.ns.To(room)
	if event == PresenceJoinEvent && sid != "" {
		b = b.Except(sid)
	}
	if err := b.Emit(event, PresenceNotice{Room: room, Identity: identity}); err != nil {
		r.h.log.Warn("presence notice not sent", "room", room, "err", err)
	}
}

// setDropping marks a connection as closing with a recoverable reason
// (between its disconnecting and disconnect handlers).
func (r *rooms) setDropping(sid string, on bool) {
	r.mu.Lock()
	if on {
		r.dropping[sid] = true
	} else {
		delete(r.dropping, sid)
	}
	r.mu.Unlock()
}

// identities returns the identities present in a room, sorted: across
// the cluster when clustered.
func (r *rooms) identities(ctx context.Context, room string) ([]string, error) {
	if c := r.h.cluster; c != nil {
		return c.identities(ctx, room)
	}
	return r.localIdentities(room), nil
}

type roomIdentity struct{ room, identity string }

// localPresence lists the (room, identity) pairs present on this node.
func (r *rooms) localPresence() []roomIdentity {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []roomIdentity
	for room, ids := range r.presence {
		for id := range ids {
			out = append(out, roomIdentity{room, id})
		}
	}
	return out
}

func (r *rooms) localIdentities(room string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, 0, len(r.presence[room]))
	for id := range r.presence[room] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// localMembers returns the rooms with local members and their counts.
func (r *rooms) localMembers() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.members))
	for k, v := range r.members {
		out[k] = v
	}
	return out
}

func (r *rooms) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.members)
}

// close stops the grace timers; nothing is announced afterwards.
func (r *rooms) close() {
	r.mu.Lock()
	r.closed = true
	for _, ids := range r.presence {
		for _, conns := range ids {
			for _, c := range conns {
				if c.timer != nil {
					c.timer.Stop()
				}
			}
		}
	}
	r.mu.Unlock()
}
