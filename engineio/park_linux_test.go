package engineio

import (
	"errors"
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
