package engineio

import (
	"os"
	"sync"
	"syscall"
	"time"
)

// poller waits, with an epoll instance of its own, for parked websockets to
// become readable. That instance is itself registered with the Go runtime's
// network poller (an epoll descriptor is pollable), so the poller's
// goroutine waits like any network read: no thread blocks in epoll_wait.
// A thread blocked in a syscall costs far more than it seems with one P:
// the runtime's monitor keeps taking the P back from it and handing it to
// another thread, and its own sleeps shrink to microseconds while that
// goes on (measured: a connection parking and resuming for every message
// cost 44 µs of server CPU per message that way, mostly context switches).
//
// The goroutine runs only while a connection is parked: the instance is
// dropped, and its goroutine ends, when the last one leaves.
//
// The poller also decides when a reader parks: a sweep (a timer, armed
// while any reader runs) runs sweepsPerRelease times per `every` and
// interrupts the wait of each reader that started no message for that
// many sweeps in a row. One timer for all connections, instead of a read
// deadline set and cleared around every message, costs a busy connection
// nothing and wakes the process once per sweep rather than once per
// connection going quiet. Several sweeps per period spread the parking
// out (2,000 connections sending every 300 ms, each parking in between:
// echo p99 4.2–6.2 ms with one sweep per period, 2.7–3.6 ms with four).
type poller struct {
	log    func(msg string, args ...any)
	every  time.Duration
	mu     sync.Mutex
	ep     *epollInstance // nil while none is parked
	fds    map[int]*wsTransport
	broken bool // no epoll instance could be made: readers never park

	active   map[*wsTransport]struct{} // running readers that may park
	sweep    *time.Timer
	sweeping bool // sweep is armed or running
}

// epollInstance is one epoll descriptor and its goroutine; a connection's
// park.inSet names the one it was added to.
type epollInstance struct {
	fd   int
	file *os.File // fd, registered with the runtime's poller
	rc   syscall.RawConn
}

func newPoller(log func(string, ...any), every time.Duration) *poller {
	return &poller{log: log, every: every, fds: make(map[int]*wsTransport), active: make(map[*wsTransport]struct{})}
}

// watch lets the sweep park t's reader, which has just started; its
// owner is set.
func (p *poller) watch(t *wsTransport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken {
		return
	}
	p.active[t] = struct{}{}
	t.park.sweptReads = t.park.reads.Load()
	t.park.quietSweeps = 0
	if p.sweeping {
		return
	}
	p.sweeping = true
	if p.sweep == nil {
		p.sweep = time.AfterFunc(p.sweepInterval(), p.sweepIdle)
	} else {
		p.sweep.Reset(p.sweepInterval())
	}
}

// unwatch forgets a reader that ends without parking.
func (p *poller) unwatch(t *wsTransport) {
	p.mu.Lock()
	delete(p.active, t)
	p.mu.Unlock()
}

// sweepsPerRelease is how many sweeps a reader must stay silent for.
const sweepsPerRelease = 4

func (p *poller) sweepInterval() time.Duration {
	return max(p.every/sweepsPerRelease, time.Millisecond)
}

// sweepIdle interrupts the readers that have waited without a message for
// sweepsPerRelease sweeps, and re-arms while any reader runs.
func (p *poller) sweepIdle() {
	var silent []*wsTransport
	p.mu.Lock()
	if p.broken {
		clear(p.active) // they could not park: stop interrupting them
	}
	for t := range p.active {
		ps := &t.park
		if r := ps.reads.Load(); r != ps.sweptReads {
			ps.sweptReads, ps.quietSweeps = r, 0
			continue
		}
		if ps.quietSweeps < sweepsPerRelease {
			ps.quietSweeps++
		}
		if ps.quietSweeps == sweepsPerRelease && ps.state.Load() == readerWaiting {
			silent = append(silent, t)
		}
	}
	p.mu.Unlock()
	// Outside p.mu: interrupting takes each Conn's mu.
	for _, t := range silent {
		t.interruptIfWaiting()
	}
	p.mu.Lock()
	if len(p.active) == 0 {
		p.sweeping = false
	} else {
		p.sweep.Reset(p.sweepInterval())
	}
	p.mu.Unlock()
}

// openEpoll is newEpollInstance; tests make it fail.
var openEpoll = newEpollInstance

func newEpollInstance() (*epollInstance, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// Non-blocking, so that os.NewFile registers it with the runtime.
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, err
	}
	file := os.NewFile(uintptr(fd), "engineio-poller")
	rc, err := file.SyscallConn()
	if err == nil {
		// Fails (os.ErrNoDeadline) unless the runtime's poller took it.
		err = file.SetReadDeadline(time.Time{})
	}
	if err != nil {
		_ = file.Close()
		return nil, err
	}
	return &epollInstance{fd: fd, file: file, rc: rc}, nil
}

// add registers fd for one readiness event (EPOLLONESHOT); false if epoll
// refuses it.
func (p *poller) add(fd int, t *wsTransport) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.broken {
		return false
	}
	if p.ep == nil {
		ep, err := openEpoll()
		if err != nil {
			p.broken = true // once: not at every park
			p.log("engineio: no epoll instance; idle readers keep their goroutine", "err", err)
			return false
		}
		p.ep = ep
		go p.run(ep)
	}
	// A connection stays in the set between parks (EPOLLONESHOT disabled
	// it when it fired): re-arming it is one epoll_ctl instead of two.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	var err error = syscall.ENOENT
	if t.park.inSet == p.ep {
		err = syscall.EpollCtl(p.ep.fd, syscall.EPOLL_CTL_MOD, fd, &ev)
	}
	if err == syscall.ENOENT {
		err = syscall.EpollCtl(p.ep.fd, syscall.EPOLL_CTL_ADD, fd, &ev)
	}
	if err != nil {
		t.park.inSet = nil
		return false
	}
	t.park.inSet = p.ep
	p.fds[fd] = t
	delete(p.active, t)
	return true
}

// remove unregisters fd if t holds it.
func (p *poller) remove(fd int, t *wsTransport) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fds[fd] != t {
		return
	}
	delete(p.fds, fd)
	_ = syscall.EpollCtl(p.ep.fd, syscall.EPOLL_CTL_DEL, fd, nil)
	t.park.inSet = nil
	if len(p.fds) == 0 {
		p.detachLocked()
	}
}

// detachLocked drops the current instance; its goroutine notices (woken by
// the deadline if it waits) and closes it.
func (p *poller) detachLocked() {
	_ = p.ep.file.SetReadDeadline(time.Unix(1, 0))
	p.ep = nil
}

func (p *poller) run(ep *epollInstance) {
	defer ep.file.Close()
	events := make([]syscall.EpollEvent, 128)
	var ready []*wsTransport
	var stop bool
	err := ep.rc.Read(func(uintptr) bool {
		stop, ready = p.drain(ep, events, ready)
		return stop
	})
	if stop {
		return
	}
	p.mu.Lock()
	if p.ep != ep {
		p.mu.Unlock()
		return // detached: the deadline woke us
	}
	// The instance failed: resume every parked reader (each then waits
	// for itself) and start afresh at the next park.
	p.log("engineio: waiting for parked connections failed", "err", err)
	for fd, t := range p.fds {
		delete(p.fds, fd)
		ready = append(ready, t)
	}
	p.ep = nil
	p.mu.Unlock()
	for _, t := range ready {
		t.wake()
	}
}

// drain takes every pending event off ep without waiting and resumes the
// readers they name (ready is scratch space, returned for reuse). It
// reports true when ep is no longer the poller's (the goroutine then
// ends), false to wait for more.
func (p *poller) drain(ep *epollInstance, events []syscall.EpollEvent, ready []*wsTransport) (bool, []*wsTransport) {
	for {
		n, err := syscall.EpollWait(ep.fd, events, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			p.log("engineio: epoll_wait failed", "err", err)
			n = 0
		}
		ready = ready[:0]
		p.mu.Lock()
		if p.ep != ep {
			p.mu.Unlock()
			return true, ready
		}
		for _, ev := range events[:n] {
			fd := int(ev.Fd)
			if t := p.fds[fd]; t != nil {
				delete(p.fds, fd) // and EPOLLONESHOT disabled it in the set
				ready = append(ready, t)
			}
		}
		done := len(p.fds) == 0
		if done {
			p.ep = nil
		}
		p.mu.Unlock()
		for i, t := range ready {
			t.wake()
			ready[i] = nil // keep nothing of a resumed connection
		}
		if done || n < len(events) {
			return done, ready
		}
	}
}

// count returns the parked connections.
func (p *poller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.fds)
}
