// Package engineio implements the server side of Engine.IO v4, the transport
// under Socket.IO: the packet and payload codec, session handshake, HTTP
// long-polling and websocket transports, the polling→websocket upgrade and
// heartbeats. It behaves like Node's engine.io 6.6 on the wire.
//
// A Server is an http.Handler:
//
//	srv := engineio.NewServer(nil, func(c *engineio.Conn) {
//		c.SetHandlers(func(data []byte, binary bool) {
//			_ = c.Send(engineio.Message{Data: data, Binary: binary}) // echo
//		}, func(reason string) {
//			log.Println("closed:", reason)
//		})
//	})
//	mux.Handle("/engine.io/", srv)
//	defer srv.Close(ctx)
//
// Each session reads on one goroutine (the websocket reader, or the polling
// POST handler) and delivers messages in order. A websocket silent for
// Options.ReleaseIdleReaderAfter gives its reader goroutine up and waits in
// an epoll set (Linux), so idle connections hold no goroutine; the next data
// starts a new reader. Send never blocks on the
// network: messages go to a bounded per-connection queue drained by a writer
// goroutine that exists only while there is something to write and that
// coalesces all queued frames into one write. A connection whose queue would
// exceed Options.MaxBufferedBytes is closed as a slow consumer. Panics in
// callbacks and in the package's goroutines are recovered and logged, and
// close only the connection concerned.
package engineio
