// Package worker runs short tasks on goroutines that outlive them.
//
// A goroutine started per burst of work (a connection's handler queue, its
// websocket writer) begins with the runtime's smallest stack and, when the
// task goes deeper than that (a handler, an encoder, a write), grows it by
// copying, once or twice per burst: on a busy server that was a sixth of
// the CPU. A Pool keeps a few finished goroutines waiting, with their grown
// stacks, and hands them the next task.
package worker

import (
	"sync"
	"sync/atomic"
)

// Pool runs tasks on idle workers, or on new goroutines when none is idle.
// At most maxIdle workers wait for tasks; the rest end when their task
// returns. The zero Pool is not usable: use New.
type Pool struct {
	tasks   chan func() // unbuffered: a send succeeds only into a waiting worker
	quit    chan struct{}
	stop    sync.Once
	idle    atomic.Int32
	maxIdle int32
}

// New returns a Pool keeping at most maxIdle idle workers (at least one).
func New(maxIdle int) *Pool {
	return &Pool{tasks: make(chan func()), quit: make(chan struct{}), maxIdle: int32(max(maxIdle, 1))}
}

// Go runs f on another goroutine, an idle worker if there is one. It never
// blocks. A task that panics is not recovered here: tasks handle their own.
func (p *Pool) Go(f func()) {
	select {
	case p.tasks <- f:
	default:
		go p.work(f)
	}
}

func (p *Pool) work(f func()) {
	for {
		f()
		f = nil // not kept alive while idle
		if p.idle.Add(1) > p.maxIdle {
			p.idle.Add(-1)
			return
		}
		select {
		case f = <-p.tasks:
			p.idle.Add(-1)
		case <-p.quit:
			p.idle.Add(-1)
			return
		}
	}
}

// Close ends the idle workers, and each busy one when its task returns.
// Tasks given to Go afterwards still run, each on a goroutine of its own.
func (p *Pool) Close() { p.stop.Do(func() { close(p.quit) }) }

// Idle returns how many workers wait for a task.
func (p *Pool) Idle() int { return int(p.idle.Load()) }
