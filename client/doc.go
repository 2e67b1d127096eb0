// Package client is a Socket.IO v5 / Engine.IO v4 client, compatible with
// the JavaScript server (socket.io 4.x) and Switchboard. Its API follows
// socket.io-client:
//
//	s, err := client.Dial(ctx, "http://localhost:3000/chat", nil) // namespace "/chat"
//	if err != nil {
//		return err // a *client.ConnectError if the server refused the namespace
//	}
//	defer s.Manager().Close()
//	s.On("message", func(from string, text string) { fmt.Println(from, text) })
//	s.On("disconnect", func(reason string) { log.Print(reason) })
//	s.Emit("message", "hello")
//	res, err := s.Timeout(5*time.Second).EmitWithAck(ctx, "join", "room1")
//
// # Managers and sockets
//
// A Manager owns one Engine.IO connection; the Sockets it returns, one per
// namespace, share it. Socket.Connect opens the connection if needed and
// sends the namespace's CONNECT with Options.Auth. When the connection is
// lost the Manager reconnects with exponential backoff and reconnects every
// active socket; Socket.Disconnect and a DISCONNECT from the server end a
// socket for good, and the connection closes when no socket is active.
//
// Events emitted while disconnected are buffered and sent in order after the
// next CONNECT, except Volatile ones, which are dropped. Acknowledgements
// that were sent but not answered fail with ErrDisconnected on disconnect.
//
// Connection-state recovery: when the server enables it, the socket keeps
// the session id (pid) of the CONNECT reply and the offset of the last event
// (its last string argument, which handlers also receive) and sends both
// with the next CONNECT; Recovered then reports whether the server restored
// the session, and the missed events are delivered before "connect".
//
// # Handlers
//
// On accepts functions of many shapes (see Socket.On): arguments are decoded
// into the parameters with encoding/json, binary arguments into []byte, and
// a trailing AckFunc answers the server's acknowledgement request. The
// reserved events are "connect" (func()), "disconnect" (func(reason
// string)) and "connect_error" (func(err error)).
//
// All handlers of a Manager run on a single goroutine, one at a time, in the
// order the packets arrived; that goroutine waits for the next handlers
// while the Manager's connection runs and ends with it. The network
// goroutines never wait for handlers, and they deliver acknowledgements
// awaited by EmitWithAck directly, so a handler may call EmitWithAck. A slow handler delays the handlers after it, not reading:
// the queue grows instead.
//
// # Goroutines and lifetime
//
// Per open connection the client runs a reader, a writer (which batches
// queued packets into one POST when polling) and, while upgrading from
// polling, a websocket prober; no goroutine is started per message. An
// emit on an idle websocket is written by the emitting goroutine itself,
// with one non-blocking write; the writer takes over what the socket does
// not accept at once, so Emit never waits for the network. Handlers run
// for a burst of events (a server's many events arriving together) queue
// what they send, acknowledgements included, and every 32 handlers, or at
// the end of the burst, it goes out in one write. Manager.Close,
// or Socket.Disconnect of the last active socket, closes the connection and
// waits for those goroutines. All methods are safe for concurrent use.
package client
