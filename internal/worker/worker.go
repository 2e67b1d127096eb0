// Package worker runs short tasks on goroutines that outlive them.
//
// A goroutine started per burst of work (a connection's handler queue, a
// client's event dispatcher) begins with the runtime's smallest stack and,
// when the task goes deeper than that (a handler, an encoder, a write),
// grows it by copying, once or twice per burst: on a busy server that was a
// sixth of the CPU. A Pool keeps a few finished goroutines waiting, with
// their grown stacks, and hands them the next task.
package worker

import "sync"

// Pool runs tasks on idle workers, or on new goroutines when none is idle.
// At most maxIdle workers wait for tasks; the rest end when their task
// returns. The zero Pool is not usable: use New.
type Pool struct {
	mu      sync.Mutex
	idle    []chan func() // one per waiting worker, most recent last
	maxIdle int
	closed  bool
}

// New returns a Pool keeping at most maxIdle idle workers (at least one).
func New(maxIdle int) *Pool { return &Pool{maxIdle: max(maxIdle, 1)} }

// Go runs f on another goroutine, an idle worker if there is one. It never
// blocks. A task that panics is not recovered here: tasks handle their own.
func (p *Pool) Go(f func()) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		// The most recently idle worker: its stack is the likeliest to be
		// in the cache.
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w <- f // buffered: never blocks
		return
	}
	p.mu.Unlock()
	go p.work(f)
}

func (p *Pool) work(f func()) {
	var w chan func()
	for {
		f()
		f = nil // an idle worker keeps nothing of its last task alive
		p.mu.Lock()
		if p.closed || len(p.idle) >= p.maxIdle {
			p.mu.Unlock()
			return
		}
		if w == nil {
			w = make(chan func(), 1)
		}
		p.idle = append(p.idle, w)
		p.mu.Unlock()
		// A plain receive, not a select: waking a worker is the cost Go
		// pays per task. Close closes w.
		var ok bool
		if f, ok = <-w; !ok {
			return
		}
	}
}

// Close ends the idle workers, and each busy one when its task returns.
// Tasks given to Go afterwards still run, each on a goroutine of its own.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	for _, w := range p.idle {
		close(w)
	}
	p.idle = nil
}

// Idle returns how many workers wait for a task.
func (p *Pool) Idle() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.idle)
}
