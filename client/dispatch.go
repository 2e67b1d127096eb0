package client

import (
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/switchboard-io/switchboard/internal/worker"
)

type jobKind uint8

const (
	jobEvent jobKind = iota
	jobConnect
	jobDisconnect
	jobConnectError
	jobAck
)

// job is one handler invocation queued on a Manager's dispatcher. It is a
// value type so queueing an event costs no allocation.
type job struct {
	kind   jobKind
	s      *Socket
	name   string // event name
	args   []json.RawMessage
	att    [][]byte
	id     uint64 // ack id requested by the server, valid when hasID
	hasID  bool
	reason string            // jobDisconnect
	err    error             // jobConnectError, jobAck
	ackFn  func(Args, error) // jobAck
}

func (j *job) run() {
	switch j.kind {
	case jobEvent:
		j.s.runEvent(j)
	case jobConnect, jobDisconnect, jobConnectError:
		j.s.runReserved(j)
	case jobAck:
		j.ackFn(Args{Raw: j.args, Attachments: j.att}, j.err)
	}
}

// dispatcher runs jobs one at a time, in the order they were pushed, on a
// goroutine that runs only while jobs are queued. push never blocks, so the
// reading goroutines never wait for handlers; the queue is unbounded. While
// the Manager's connection runs, the goroutine waits for the next burst, so
// that its stack, grown by the handlers, is not grown again for every event.
type dispatcher struct {
	mu      sync.Mutex
	queue   []job
	spare   []job
	running bool
	pool    *worker.Pool

	// more is set while the running job has others behind it in its
	// chunk of the batch: Engine.send then queues its packets, and the
	// chunk's last send writes them all at once, so that a burst's acks go
	// out together. Chunks, not the whole batch: a server waiting for acks
	// (a durable room's window) gets them while the rest of the burst is
	// handled, instead of all at its end.
	more atomic.Bool
}

// ackChunk is how many jobs' sends are written together at most.
const ackChunk = 32

func (d *dispatcher) push(j job) {
	d.mu.Lock()
	d.queue = append(d.queue, j)
	if !d.running {
		d.running = true
		if d.pool != nil {
			d.pool.Go(d.run)
		} else {
			go d.run()
		}
	}
	d.mu.Unlock()
}

// keepWorker says whether the goroutine waits for the next burst (while
// the Manager runs) or ends when the queue is empty (otherwise).
func (d *dispatcher) keepWorker(keep bool) {
	d.mu.Lock()
	switch {
	case keep && d.pool == nil:
		d.pool = worker.New(1)
	case !keep && d.pool != nil:
		d.pool.Close()
		d.pool = nil
	}
	d.mu.Unlock()
}

func (d *dispatcher) run() {
	for {
		d.mu.Lock()
		batch := d.queue
		if len(batch) == 0 {
			d.running = false
			d.mu.Unlock()
			return
		}
		d.queue, d.spare = d.spare[:0], nil
		d.mu.Unlock()
		for i := range batch {
			d.more.Store(i+1 < len(batch) && (i+1)%ackChunk != 0)
			batch[i].run()
			batch[i] = job{}
		}
		d.mu.Lock()
		if cap(batch) <= 1024 {
			d.spare = batch[:0]
		}
		d.mu.Unlock()
	}
}
