// Package switchboard is a Socket.IO v5 server (Engine.IO v4) for Go: the
// official socket.io clients connect to it unchanged.
//
// A Server is an http.Handler. Namespaces hold middlewares and a connection
// handler; a Socket is one client connected to one namespace:
//
//	srv := switchboard.NewServer(nil)
//	srv.Of("/").OnConnection(func(s *switchboard.Socket) {
//		s.Join("lobby")
//		s.On("chat", func(text string, ack switchboard.AckFunc) {
//			s.To("lobby").Emit("chat", text) // everyone in lobby but the sender
//			ack("ok")
//		})
//	})
//	http.Handle("/socket.io/", srv)
//
// # Handlers and goroutines
//
// Middlewares, connection handlers and event handlers of one connection run
// one at a time, in the order the packets arrived, on a goroutine that lives
// only while that connection has work queued. Acknowledgements are resolved on
// the connection's read loop, so a handler may block in EmitWithAck without
// stalling its own connection's acks. Emit never blocks on the network: each
// connection has a bounded outbound queue, written by a goroutine that exists
// only while there is something to write and coalesces everything queued
// into one write; a client that lets the queue overflow is disconnected as a
// slow consumer. An acknowledgement answered on an idle websocket is written
// at once by the answering goroutine with one non-blocking write (what the
// socket does not take goes to the writer), in order with everything else;
// one answered after its handler returned (from a goroutine or a store
// callback) is queued, so that a burst of them shares one write. An idle
// websocket holds no goroutine at all (engineio.Options.ReleaseIdleReaderAfter).
//
// Handler arguments are decoded from JSON into the handler's parameter types;
// a []byte parameter receives a binary attachment, and a trailing AckFunc
// parameter answers the client's acknowledgement request.
//
// # Missed events
//
// Options.ConnectionStateRecovery turns on socket.io's connection-state
// recovery. Options.Store (bolt.Open, memory.NewStore, redis.NewStore) with
// Options.Identity enables durable rooms: Socket.JoinDurable subscribes an
// identity, Namespace.Publish and Socket.Publish store an event before
// returning, and subscribers get every event at least once, in order, with
// an acknowledgement request, across reconnects and restarts.
//
// # Clusters
//
// Options.Adapter carries rooms and broadcasts across servers; package redis
// provides one compatible with socket.io's Redis streams adapter.
package switchboard
