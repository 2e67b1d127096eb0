package switchboard

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
