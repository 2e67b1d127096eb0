package engineio

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"testing"
	"time"
)

// When no epoll instance can be made, the poller says so once and stops
// trying: later parks are refused without a new attempt or a new log
// line, and readers are no longer watched (the sweep would interrupt
// them for nothing).
func TestPollerWithoutEpoll(t *testing.T) {
	orig := openEpoll
	var attempts atomic.Int32
	openEpoll = func() (*epollInstance, error) {
		attempts.Add(1)
		return nil, errors.New("no epoll here")
	}
	t.Cleanup(func() { openEpoll = orig })
	var logs atomic.Int32
	p := newPoller(func(string, ...any) { logs.Add(1) }, 20*time.Millisecond)
	a, b := &wsTransport{}, &wsTransport{}
	if p.add(10, a) || p.add(11, b) {
		t.Fatal("add succeeded without an epoll instance")
	}
	if n := attempts.Load(); n != 1 {
		t.Errorf("%d attempts to make an epoll instance, want 1", n)
	}
	if n := logs.Load(); n != 1 {
		t.Errorf("%d log lines, want 1", n)
	}
	p.watch(a)
	p.mu.Lock()
	watched, sweeping := len(p.active), p.sweeping
	p.mu.Unlock()
	if watched != 0 || sweeping {
		t.Errorf("broken poller watches %d readers (sweeping %v), want none", watched, sweeping)
	}
	if p.count() != 0 {
		t.Errorf("count = %d", p.count())
	}
}

// The sweep interrupts a reader only when it waits for a message and has
// started none for sweepsPerRelease sweeps in a row: a read resets the
// count, a busy reader is never interrupted, and an interrupted wait sees
// its read deadline passed. (Sweeps are called by hand; the poller's own
// timer is an hour away.)
func TestSweepInterruptsOnlySilentWaiters(t *testing.T) {
	p := newPoller(func(string, ...any) {}, time.Hour)
	t.Cleanup(func() { p.sweep.Stop() })
	newReader := func() (*wsTransport, net.Conn) {
		local, remote := net.Pipe()
		t.Cleanup(func() { local.Close(); remote.Close() })
		tr := &wsTransport{raw: &batchConn{Conn: local}}
		tr.park.owner = &Conn{state: stateOpen}
		p.watch(tr)
		return tr, local
	}
	quiet, quietConn := newReader()
	chatty, _ := newReader()
	busy, _ := newReader()
	quiet.park.state.Store(readerWaiting)
	chatty.park.state.Store(readerWaiting)
	busy.park.state.Store(readerBusy)

	for i := range 2 * sweepsPerRelease {
		chatty.park.reads.Add(1) // a message between every two sweeps
		p.sweepIdle()
		interrupted := quiet.park.state.Load() == readerInterrupted
		if want := i+1 >= sweepsPerRelease; interrupted != want {
			t.Fatalf("after %d sweeps: silent waiter interrupted = %v, want %v", i+1, interrupted, want)
		}
	}
	if s := chatty.park.state.Load(); s != readerWaiting {
		t.Errorf("a reader with a message between sweeps: state %d, want still waiting", s)
	}
	if s := busy.park.state.Load(); s != readerBusy {
		t.Errorf("a busy reader: state %d, want untouched", s)
	}
	if _, err := quietConn.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the interrupted reader's read: %v, want its deadline passed", err)
	}
}
