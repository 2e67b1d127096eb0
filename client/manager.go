package client

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/switchboard-io/switchboard/parser"
)

// Manager is one Engine.IO connection shared by the sockets of its
// namespaces, like the JavaScript client's Manager. It opens the connection
// when a socket connects, reconnects with exponential backoff after the
// connection is lost, and closes it when no socket remains active.
//
// Methods are safe for concurrent use.
//
// Handlers: every handler of every socket of a Manager (On, Once, OnAny, the
// reserved events and EmitWithAckFunc callbacks) runs on one goroutine, one
// at a time, in the order the packets arrived. That goroutine exists only
// while handlers are queued. Acknowledgements awaited by EmitWithAck are
// delivered by the reading goroutine, so a handler may call EmitWithAck; a
// handler that blocks delays the handlers queued after it, not reading.
type Manager struct {
	base       *url.URL
	opts       Options
	httpc      *http.Client
	ownedTrans *http.Transport // closed by Close when we created it

	d  dispatcher
	wg sync.WaitGroup // run loops

	// Lock order: Manager.mu, then Socket.mu, then Engine.mu and dispatcher.mu.
	mu        sync.Mutex
	nsps      map[string]*Socket
	eng       *Engine // the open session, nil if none
	runCancel context.CancelFunc
}

// NewManager returns a Manager for the server at rawURL (scheme http,
// https, ws or wss; its path is ignored, its query is sent with every
// request). It does not connect: call Socket(nsp).Connect. A malformed URL is
// reported as a "connect_error" on connect.
func NewManager(rawURL string, opts *Options) *Manager {
	m := &Manager{opts: opts.withDefaults(), nsps: make(map[string]*Socket)}
	u, err := url.Parse(rawURL)
	if err != nil {
		u = &url.URL{Scheme: "http", Host: "invalid.invalid"}
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	}
	if q := u.Query(); len(q) > 0 {
		if m.opts.Query == nil {
			m.opts.Query = url.Values{}
		}
		for k, vs := range q {
			if _, ok := m.opts.Query[k]; !ok {
				m.opts.Query[k] = vs
			}
		}
	}
	u = &url.URL{Scheme: u.Scheme, Host: u.Host, User: u.User}
	m.base = u
	if m.opts.HTTPClient != nil {
		m.httpc = m.opts.HTTPClient
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 4
		m.ownedTrans = t
		m.httpc = &http.Client{Transport: t}
	}
	return m
}

// Socket returns the socket of namespace nsp ("/" when empty), creating it
// on first use; the same namespace always gives the same Socket. It is not
// connected until its Connect is called.
func (m *Manager) Socket(nsp string) *Socket {
	if nsp == "" {
		nsp = "/"
	} else if nsp[0] != '/' {
		nsp = "/" + nsp
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.nsps[nsp]
	if s == nil {
		s = newSocket(m, nsp)
		m.nsps[nsp] = s
	}
	return s
}

// Engine returns the open Engine.IO session, or nil when none is open.
func (m *Manager) Engine() *Engine {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.eng
}

// Close disconnects every socket ("disconnect" handlers get reason
// "forced close"), stops reconnecting, closes the connection and waits for
// the Manager's network goroutines to end. Handlers already queued may
// still run after Close returns. Sockets may Connect again afterwards. Close
// always returns nil.
func (m *Manager) Close() error {
	m.mu.Lock()
	socks := make([]*Socket, 0, len(m.nsps))
	for _, s := range m.nsps {
		socks = append(socks, s)
	}
	m.stopLocked()
	m.mu.Unlock()
	for _, s := range socks {
		s.deactivate("forced close")
	}
	m.wg.Wait()
	m.closeIdleConns()
	return nil
}

func (m *Manager) closeIdleConns() {
	if m.ownedTrans != nil {
		m.ownedTrans.CloseIdleConnections()
	}
}

// stopLocked stops the run loop, which closes the session gracefully.
func (m *Manager) stopLocked() {
	if m.runCancel != nil {
		m.runCancel()
		m.runCancel = nil
	}
	m.eng = nil
}

// closeIfIdle closes the connection when no socket is active, as the
// JavaScript Manager does when its last socket disconnects. With wait it
// waits for the network goroutines; it must not wait when called from one.
func (m *Manager) closeIfIdle(wait bool) {
	m.mu.Lock()
	for _, s := range m.nsps {
		if s.Active() {
			m.mu.Unlock()
			return
		}
	}
	m.stopLocked()
	m.mu.Unlock()
	if wait {
		m.wg.Wait()
	}
}

// open makes sure the connection is open or opening and returns the open
// session, or nil when it is still opening (the run loop then sends the
// socket's CONNECT).
func (m *Manager) open() *Engine {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.eng != nil {
		return m.eng
	}
	if m.runCancel == nil {
		ctx, cancel := context.WithCancel(context.Background())
		m.runCancel = cancel
		m.wg.Add(1)
		go m.run(ctx)
	}
	return nil
}

// run opens the session, waits for it to close and reconnects, until ctx
// is canceled or reconnection ends.
func (m *Manager) run(ctx context.Context) {
	defer m.wg.Done()
	m.d.keepWorker(true)
	defer m.d.keepWorker(false)
	// Idle keep-alive connections hold goroutines; connections that become
	// idle later are closed too (until the next request).
	defer m.closeIdleConns()
	attempt := 0
	for {
		e, err := m.dial(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.connectError(err)
			if m.opts.DisableReconnection || !m.sleep(ctx, &attempt) {
				m.giveUp(ctx)
				return
			}
			continue
		}
		attempt = 0
		m.mu.Lock()
		if ctx.Err() != nil {
			m.mu.Unlock()
			e.terminate("forced close")
			return
		}
		m.eng = e
		socks := m.activeLocked()
		m.mu.Unlock()
		e.start()
		for _, s := range socks {
			s.sendConnect(e)
		}
		select {
		case <-e.done:
		case <-ctx.Done():
			e.shutdown("forced close")
		}
		<-e.done
		e.wg.Wait()
		reason := e.closedReason()
		m.mu.Lock()
		if m.eng == e {
			m.eng = nil
		}
		all := m.allLocked()
		m.mu.Unlock()
		if m.opts.DisableReconnection {
			// Give up before the sockets learn of the close, so that a
			// Connect made once they have starts a new run loop instead
			// of being left to this one, which is ending.
			m.giveUp(ctx)
		}
		for _, s := range all {
			s.onEngineClose(e, reason)
		}
		if ctx.Err() != nil || m.opts.DisableReconnection {
			return
		}
		if !m.sleep(ctx, &attempt) {
			m.giveUp(ctx)
			return
		}
	}
}

// giveUp marks the run loop as ended so a later Connect starts a new one.
func (m *Manager) giveUp(ctx context.Context) {
	m.mu.Lock()
	if ctx.Err() == nil && m.runCancel != nil {
		m.runCancel()
		m.runCancel = nil
	}
	m.mu.Unlock()
}

// sleep waits for the backoff delay of *attempt and counts it; it returns
// false when the attempts are exhausted or ctx is canceled.
func (m *Manager) sleep(ctx context.Context, attempt *int) bool {
	if n := m.opts.ReconnectionAttempts; n > 0 && *attempt >= n {
		return false
	}
	t := time.NewTimer(m.backoff(*attempt))
	defer t.Stop()
	*attempt++
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// backoff returns the delay before reconnection attempt n (from 0), as the
// JavaScript client computes it: ReconnectionDelay·2ⁿ ± RandomizationFactor,
// capped at ReconnectionDelayMax.
func (m *Manager) backoff(n int) time.Duration {
	ms := float64(m.opts.ReconnectionDelay) * math.Pow(2, float64(min(n, 62)))
	if j := m.opts.RandomizationFactor; j > 0 {
		r := rand.Float64()
		dev := math.Floor(r * j * ms)
		if int(math.Floor(r*10))&1 == 0 {
			ms -= dev
		} else {
			ms += dev
		}
	}
	return time.Duration(min(ms, float64(m.opts.ReconnectionDelayMax)))
}

// dial opens a session within Options.Timeout.
func (m *Manager) dial(ctx context.Context) (*Engine, error) {
	ctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	e := m.newEngine()
	if err := e.open(ctx); err != nil {
		e.cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("client: connect timeout: %w", err)
		}
		return nil, err
	}
	return e, nil
}

func (m *Manager) activeLocked() []*Socket {
	var socks []*Socket
	for _, s := range m.nsps {
		if s.Active() {
			socks = append(socks, s)
		}
	}
	return socks
}

func (m *Manager) allLocked() []*Socket {
	socks := make([]*Socket, 0, len(m.nsps))
	for _, s := range m.nsps {
		socks = append(socks, s)
	}
	return socks
}

// connectError reports a failed connection attempt to the active sockets
// that are not connected.
func (m *Manager) connectError(err error) {
	m.mu.Lock()
	socks := m.activeLocked()
	m.mu.Unlock()
	for _, s := range socks {
		s.mu.Lock()
		if s.active && !s.connected {
			m.d.push(job{kind: jobConnectError, s: s, err: err})
		}
		s.mu.Unlock()
	}
}

// onPacket routes a decoded packet to its namespace's socket. It runs on
// the session's reading goroutine.
func (m *Manager) onPacket(e *Engine, p *parser.Packet) {
	m.mu.Lock()
	s := m.nsps[p.Namespace]
	m.mu.Unlock()
	if s != nil {
		s.onPacket(e, p)
	}
}
