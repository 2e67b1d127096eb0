package client

import (
	"context"
	"net"
	"sync"
	"syscall"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/internal/nbwrite"
)

// batchMax is the size at which a batch is written out before its end.
const batchMax = 64 << 10

// batchConn coalesces the websocket frames of one write batch into one
// Write on the network connection: between begin and flush, writes are
// appended to a buffer (flushed early past batchMax).
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
	err      error
	// The socket's descriptor access for flushNow, looked up once
	// (SyscallConn allocates): nil when there is none.
	rc        syscall.RawConn
	rcChecked bool
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.batching {
		// A control frame between batches: after what a non-blocking
		// flush left over, which may end mid-frame.
		if c.flushLocked(); c.err != nil {
			err := c.err
			c.err = nil
			return 0, err
		}
		return c.Conn.Write(p)
	}
	if c.err != nil {
		return 0, c.err
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= batchMax {
		c.flushLocked()
	}
	return len(p), nil
}

func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// flush ends the batch, writing what is buffered, and returns the first
// write error of the batch.
func (c *batchConn) flush() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	c.flushLocked()
	err := c.err
	c.err = nil
	if cap(c.buf) > 4*batchMax {
		c.buf = nil
	}
	return err
}

// flushNow ends the batch with one non-blocking write. What the socket did
// not take stays buffered, ahead of anything written later, and pending
// reports it: the next flush (or Write) writes it first.
func (c *batchConn) flushNow() (pending bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.batching = false
	if err := c.err; err != nil {
		c.err = nil
		c.buf = c.buf[:0]
		return false, err
	}
	if len(c.buf) == 0 {
		return false, nil
	}
	if !c.rcChecked {
		c.rcChecked = true
		if sc, ok := c.Conn.(syscall.Conn); ok {
			c.rc, _ = sc.SyscallConn()
		}
	}
	if c.rc == nil {
		return true, nil // no descriptor: the writer goroutine writes it
	}
	n, werr := nbwrite.Write(c.rc, c.buf) // never waits: the writer does
	if werr != nil {
		c.buf = c.buf[:0]
		return false, werr
	}
	c.buf = c.buf[:copy(c.buf, c.buf[n:])]
	return len(c.buf) > 0, nil
}

func (c *batchConn) flushLocked() {
	if len(c.buf) > 0 && c.err == nil {
		_, c.err = c.Conn.Write(c.buf)
	}
	c.buf = c.buf[:0]
}

// batchingDialer returns a copy of d whose connections are batchConns,
// and a function returning the last one dialed (nil when d dials TLS
// itself through NetDialTLSContext on a wss URL, which is left alone).
func batchingDialer(d *websocket.Dialer, secure bool) (*websocket.Dialer, func() *batchConn) {
	if secure && d.NetDialTLSContext != nil {
		return d, func() *batchConn { return nil }
	}
	c := *d
	dial := d.NetDialContext
	if dial == nil {
		if nd := d.NetDial; nd != nil {
			dial = func(_ context.Context, network, addr string) (net.Conn, error) { return nd(network, addr) }
		} else {
			var nd net.Dialer
			dial = nd.DialContext
		}
	}
	var (
		mu   sync.Mutex
		last *batchConn
	)
	c.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		bc := &batchConn{Conn: conn}
		mu.Lock()
		last = bc
		mu.Unlock()
		return bc, nil
	}
	c.NetDial = nil
	return &c, func() *batchConn {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}
