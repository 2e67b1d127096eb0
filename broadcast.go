package switchboard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/switchboard-io/switchboard/parser"
)

// BroadcastOperator selects sockets by rooms and flags and acts on them. It
// is immutable: every method returns a new operator, so one can be kept and
// reused from several goroutines.
type BroadcastOperator struct {
	nsp     *Namespace
	rooms   []string
	except  []string
	flags   BroadcastFlags
	timeout time.Duration
}

func (b *BroadcastOperator) clone() *BroadcastOperator {
	c := *b
	c.rooms = append([]string(nil), b.rooms...)
	c.except = append([]string(nil), b.except...)
	return &c
}

// To adds rooms: the broadcast reaches sockets in any of them, once each.
func (b *BroadcastOperator) To(rooms ...string) *BroadcastOperator {
	c := b.clone()
	c.rooms = appendUnique(c.rooms, rooms)
	return c
}

// In is the same as To.
func (b *BroadcastOperator) In(rooms ...string) *BroadcastOperator { return b.To(rooms...) }

// Except excludes the sockets in any of the rooms.
func (b *BroadcastOperator) Except(rooms ...string) *BroadcastOperator {
	c := b.clone()
	c.except = appendUnique(c.except, rooms)
	return c
}

// Volatile drops the event for clients whose transport is not ready.
func (b *BroadcastOperator) Volatile() *BroadcastOperator {
	c := b.clone()
	c.flags.Volatile = true
	return c
}

// Local restricts the broadcast to this node.
func (b *BroadcastOperator) Local() *BroadcastOperator {
	c := b.clone()
	c.flags.Local = true
	return c
}

// Timeout sets how long EmitWithAck waits for the clients' answers.
func (b *BroadcastOperator) Timeout(d time.Duration) *BroadcastOperator {
	c := b.clone()
	c.timeout = d
	c.flags.Timeout = d
	return c
}

func (b *BroadcastOperator) options() BroadcastOptions {
	return BroadcastOptions{Rooms: b.rooms, Except: b.except, Flags: b.flags}
}

// Emit sends an event to the selected sockets. The packet is encoded once
// whatever the number of receivers.
func (b *BroadcastOperator) Emit(event string, args ...any) error {
	if reservedEvents[event] {
		return fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range b.nsp.targets() {
		p := &parser.Packet{Type: parser.Event, Namespace: ns.name, Data: data, Attachments: atts}
		errs = append(errs, ns.adapter.Broadcast(p, b.options()))
	}
	return errors.Join(errs...)
}

// EmitWithAck sends an event to the selected sockets and waits for one
// answer from each, for the Timeout (ErrAckTimeout, returned with the
// answers that did arrive) or until ctx ends.
func (b *BroadcastOperator) EmitWithAck(ctx context.Context, event string, args ...any) ([]Args, error) {
	if reservedEvents[event] {
		return nil, fmt.Errorf("%w: %q", ErrReservedEvent, event)
	}
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return nil, err
	}
	var (
		mu       sync.Mutex
		answers  []Args
		targets  = b.nsp.targets()
		expected = -1 // unknown until every adapter reported its count
		pending  = len(targets)
		counted  int
		changed  = make(chan struct{}, 1)
	)
	notify := func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	for _, ns := range targets {
		p := &parser.Packet{Type: parser.Event, Namespace: ns.name, Data: data, Attachments: atts}
		err := ns.adapter.BroadcastWithAck(p, b.options(),
			func(n int) {
				mu.Lock()
				counted += n
				pending--
				if pending == 0 {
					expected = counted
				}
				mu.Unlock()
				notify()
			},
			func(a Args) {
				mu.Lock()
				answers = append(answers, a)
				mu.Unlock()
				notify()
			})
		if err != nil {
			return nil, err
		}
	}
	if len(targets) == 0 {
		expected = 0
	}
	var timeout <-chan time.Time
	if b.timeout > 0 {
		t := time.NewTimer(b.timeout)
		defer t.Stop()
		timeout = t.C
	}
	snapshot := func() []Args {
		mu.Lock()
		defer mu.Unlock()
		return append([]Args(nil), answers...)
	}
	for {
		mu.Lock()
		done := expected >= 0 && len(answers) >= expected
		mu.Unlock()
		if done {
			return snapshot(), nil
		}
		select {
		case <-changed:
		case <-timeout:
			return snapshot(), ErrAckTimeout
		case <-ctx.Done():
			return snapshot(), ctx.Err()
		}
	}
}

// FetchSockets returns the selected sockets, across the cluster.
func (b *BroadcastOperator) FetchSockets(ctx context.Context) ([]*RemoteSocket, error) {
	var out []*RemoteSocket
	for _, ns := range b.nsp.targets() {
		socks, err := ns.adapter.FetchSockets(ctx, b.options())
		if err != nil {
			return out, err
		}
		for _, s := range socks {
			s.nsp = ns
		}
		out = append(out, socks...)
	}
	return out, nil
}

// SocketsJoin makes the selected sockets join the rooms.
func (b *BroadcastOperator) SocketsJoin(rooms ...string) error {
	var errs []error
	for _, ns := range b.nsp.targets() {
		errs = append(errs, ns.adapter.AddSockets(b.options(), rooms))
	}
	return errors.Join(errs...)
}

// SocketsLeave makes the selected sockets leave the rooms.
func (b *BroadcastOperator) SocketsLeave(rooms ...string) error {
	var errs []error
	for _, ns := range b.nsp.targets() {
		errs = append(errs, ns.adapter.DelSockets(b.options(), rooms))
	}
	return errors.Join(errs...)
}

// DisconnectSockets disconnects the selected sockets (see Socket.Disconnect).
func (b *BroadcastOperator) DisconnectSockets(close bool) error {
	var errs []error
	for _, ns := range b.nsp.targets() {
		errs = append(errs, ns.adapter.DisconnectSockets(b.options(), close))
	}
	return errors.Join(errs...)
}

func appendUnique(dst, add []string) []string {
	for _, r := range add {
		dup := false
		for _, have := range dst {
			if have == r {
				dup = true
				break
			}
		}
		if !dup {
			dst = append(dst, r)
		}
	}
	return dst
}

// RemoteSocket describes a socket returned by FetchSockets, on this node or
// another one of the cluster, and acts on it through the adapter.
type RemoteSocket struct {
	ID        string
	Handshake Handshake
	Rooms     []string
	Data      any
	nsp       *Namespace
}

// Emit sends an event to the socket.
func (r *RemoteSocket) Emit(event string, args ...any) error {
	return r.nsp.To(r.ID).Emit(event, args...)
}

// Join makes the socket join rooms.
func (r *RemoteSocket) Join(rooms ...string) error { return r.nsp.In(r.ID).SocketsJoin(rooms...) }

// Leave makes the socket leave rooms.
func (r *RemoteSocket) Leave(rooms ...string) error { return r.nsp.In(r.ID).SocketsLeave(rooms...) }

// Disconnect disconnects the socket.
func (r *RemoteSocket) Disconnect(close bool) error {
	return r.nsp.In(r.ID).DisconnectSockets(close)
}
