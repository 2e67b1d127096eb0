package switchboard

import "sync/atomic"

// Stats are the server's counters since it started, for metrics.
type Stats struct {
	Connections map[string]int // open Engine.IO connections by transport ("polling", "websocket")
	Sockets     int            // connected sockets, all namespaces
	EventsIn    uint64         // events received from clients
	EventsOut   uint64         // events queued to clients (a broadcast counts once per receiver)
	BytesIn     uint64         // Engine.IO message bytes received
	BytesOut    uint64         // Engine.IO message bytes queued
}

type counters struct {
	eventsIn, eventsOut, bytesIn, bytesOut atomic.Uint64
}

// Stats returns a snapshot of the server's counters. It walks the open
// connections, so call it at scrape intervals, not per event.
func (s *Server) Stats() Stats {
	st := Stats{
		Connections: map[string]int{},
		EventsIn:    s.counters.eventsIn.Load(),
		EventsOut:   s.counters.eventsOut.Load(),
		BytesIn:     s.counters.bytesIn.Load(),
		BytesOut:    s.counters.bytesOut.Load(),
	}
	s.clientsMu.Lock()
	for c := range s.clients {
		st.Connections[c.conn.Transport()]++
	}
	s.clientsMu.Unlock()
	s.mu.RLock()
	for _, ns := range s.nsps {
		st.Sockets += ns.SocketCount()
	}
	s.mu.RUnlock()
	return st
}
