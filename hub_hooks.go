package switchboard

import (
	"context"
	"time"
)

// Hooks used by the standalone hub (package hub). They are small on purpose:
// everything else the hub does goes through the ordinary API.

// StopDurable stops durable delivery of room to this connection only and
// makes it leave the room. Unlike LeaveDurable, the identity's subscription
// and cursor are kept: its other connections keep receiving, and the next
// connection of the identity resumes from the cursor. It does nothing for
// a room the socket does not receive durably.
func (s *Socket) StopDurable(room string) {
	s.nsp.durable.stop(s, room)
	s.Leave(durableMarker(room))
	s.Leave(room)
}

// IsRecoverable reports whether a socket that disconnected with reason
// keeps its state for connection-state recovery (when recovery is on):
// "transport close", "transport error", "ping timeout", "forced close",
// "server shutting down", "forced server close" and "slow consumer".
func IsRecoverable(reason string) bool { return recoverableReasons[reason] }

// UnsubscribeDurable is LeaveDurable without its race: it first stops the
// delivery pumps of the identity's connections on this node, dropping
// acknowledgements not yet saved and waiting for any save in progress, and
// only then deletes the subscription, so that no late save of the cursor
// recreates it. The connections also leave the room.
func (s *Socket) UnsubscribeDurable(ctx context.Context, room string) error {
	store := s.nsp.srv.opts.Store
	if store == nil {
		return ErrNoStore
	}
	if s.identity == "" {
		return ErrNoIdentity
	}
	for _, peer := range s.nsp.socketsOf(s.identity) {
		peer.mu.Lock()
		p := peer.pumps[room]
		delete(peer.pumps, room)
		peer.mu.Unlock()
		if p != nil {
			s.nsp.durable.remove(p)
			if err := p.discard(ctx); err != nil {
				return err
			}
		}
		peer.Leave(durableMarker(room))
		peer.Leave(room)
	}
	return store.DeleteCursor(ctx, durableKey(s.nsp.name, room), s.identity)
}

// discard stops the pump without saving what it has not saved yet, and
// waits until its goroutine is done.
func (p *durablePump) discard(ctx context.Context) error {
	p.mu.Lock()
	p.closed, p.dirty = true, false
	if p.timer != nil {
		p.timer.Stop()
	}
	p.mu.Unlock()
	for {
		p.mu.Lock()
		running := p.running
		p.mu.Unlock()
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
