package client

import (
	"context"
	"net"
	"sync"

	"github.com/gorilla/websocket"
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
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.batching {
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
