package engineio

import (
	"sync"
	"syscall"
)

// poller waits, with epoll, for parked websockets to become readable. Its
// goroutine runs only while a connection is parked: it ends at the first
// wait that finds none left.
type poller struct {
	log  func(msg string, args ...any)
	mu   sync.Mutex
	epfd int // -1 while no goroutine runs
	fds  map[int]*wsTransport
}

func newPoller(log func(string, ...any)) *poller {
	return &poller{log: log, epfd: -1, fds: make(map[int]*wsTransport)}
}

// pollWaitMillis bounds one epoll_wait, so that the goroutine notices that
// nothing is parked any more.
const pollWaitMillis = 200

// add registers fd for one readiness event (EPOLLONESHOT); false if epoll
// refuses it.
func (p *poller) add(fd int, t *wsTransport) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.epfd < 0 {
		epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.log("engineio: epoll_create1 failed; idle readers keep their goroutine", "err", err)
			return false
		}
		p.epfd = epfd
		go p.run(epfd)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return false
	}
	p.fds[fd] = t
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
	if p.epfd >= 0 {
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	}
}

func (p *poller) run(epfd int) {
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(epfd, events, pollWaitMillis)
		if err != nil && err != syscall.EINTR {
			p.log("engineio: epoll_wait failed", "err", err)
		}
		var ready []*wsTransport
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			fd := int(ev.Fd)
			if t := p.fds[fd]; t != nil {
				delete(p.fds, fd)
				_ = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, fd, nil)
				ready = append(ready, t)
			}
		}
		done := len(p.fds) == 0
		if done {
			p.epfd = -1
		}
		p.mu.Unlock()
		for _, t := range ready {
			t.wake()
		}
		if done {
			_ = syscall.Close(epfd)
			return
		}
	}
}

// count returns the parked connections.
func (p *poller) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.fds)
}
