package engineio

import "runtime"

// A Batch lets one goroutine write what a broadcast queued on many
// connections, in the order they were added, instead of starting one writer
// goroutine per connection. Queue each connection's messages with
// SendBatched, then call Flush once. A Batch is used by one goroutine.
type Batch struct {
	conns []*Conn
}

// batchChunk is the fewest connections a flushing goroutine takes: below
// it, spreading a batch over more cores costs more than it saves.
const batchChunk = 64

// SendBatched is Send, except that when no write is in progress on c's
// websocket, c joins b (which then holds c's writer role) instead of
// starting its writer. A connection on polling, or with a write in progress,
// is served as by Send.
func (c *Conn) SendBatched(b *Batch, msgs ...Message) error { return c.send(b, msgs) }

// Flush writes the batch's connections on as many goroutines as there are
// cores to use (one per batchChunk connections at least), each writing its
// connections in turn with one non-blocking write each; a connection whose
// socket does not take everything gets its writer goroutine. Flush does not
// block, and the Batch is empty afterwards.
func (b *Batch) Flush() {
	conns := b.conns
	b.conns = nil
	if len(conns) == 0 {
		return
	}
	parts := min(runtime.GOMAXPROCS(0), (len(conns)+batchChunk-1)/batchChunk)
	size := (len(conns) + parts - 1) / parts
	for len(conns) > 0 {
		chunk := conns[:min(size, len(conns))]
		conns = conns[len(chunk):]
		go flushConns(chunk)
	}
}

func flushConns(conns []*Conn) {
	for i, c := range conns {
		c.flushQueued()
		conns[i] = nil
	}
}

// flushQueued writes what is queued on c with one non-blocking write and
// leaves the rest, or anything it does not handle, to c's writer. The
// caller holds c's writer role and one count of the server's WaitGroup.
func (c *Conn) flushQueued() {
	c.mu.Lock()
	t := c.ws // set: a batch takes websocket sessions only
	if c.state != stateOpen || t.raw.hasTail() || c.queue == nil ||
		!t.raw.directOK(longestPacket(*c.queue), c.srv.opts.PerMessageDeflate) {
		c.mu.Unlock()
		go c.writeLoop(t)
		return
	}
	q := c.takeLocked()
	c.mu.Unlock()

	err := t.raw.writePacketsDirect(*q)
	n := packetBytes(q)
	releaseQueue(q)
	c.endDirectWrite(t, err, n)
}

func longestPacket(pkts []Packet) int {
	n := 0
	for _, p := range pkts {
		n = max(n, len(p.Data))
	}
	return n
}
