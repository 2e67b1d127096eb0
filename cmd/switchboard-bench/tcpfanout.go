package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// The raw-TCP fan-out floor (tcp-fanout against tcp-floor-server): the
// fan-out scenario's pattern with a plain Go server that writes each event
// to every receiver with one write(2), read by plain Go receivers, one
// goroutine each, on the load tool's core. Paced, its latency is the least
// that a load tool of this kind on this machine can observe of an event's
// burst: what the servers' fanout-paced latencies compare against.

// tcpFanoutHeader is a raw event's fixed part: seq, ts and the measured
// flag, 8 bytes each (little-endian); the padding follows.
const tcpFanoutHeader = 24

type tcpFanoutLink struct {
	size  int // padding bytes per event
	conns []net.Conn
	pub   net.Conn
	msg   []byte
	wg    sync.WaitGroup

	closing atomic.Bool
}

func (l *tcpFanoutLink) open(ctx context.Context, c *config, st *fanoutState, recv []fanoutReceiver, dropped *atomic.Int64) error {
	u, err := url.Parse(c.url)
	if err != nil {
		return err
	}
	d := net.Dialer{Timeout: c.dialTimout}
	dial := func(role byte) (net.Conn, error) {
		cn, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", u.Host, err)
		}
		l.conns = append(l.conns, cn)
		if _, err := cn.Write([]byte{role}); err != nil {
			return nil, err
		}
		return cn, nil
	}
	l.msg = make([]byte, tcpFanoutHeader+l.size)
	for i := range l.msg[tcpFanoutHeader:] {
		l.msg[tcpFanoutHeader+i] = 'x'
	}
	for i := range recv {
		cn, err := dial(tcpFanoutReceiver)
		if err != nil {
			return fmt.Errorf("opening receivers: %w", err)
		}
		// Registered with the server once it answers: only then publish.
		ready := []byte{0}
		_ = cn.SetReadDeadline(time.Now().Add(c.dialTimout))
		if _, err := io.ReadFull(cn, ready); err != nil || ready[0] != tcpFanoutReady {
			return fmt.Errorf("opening receivers: no ready byte (%v)", err)
		}
		_ = cn.SetReadDeadline(time.Time{})
		r := &recv[i]
		l.wg.Go(func() {
			in := make([]byte, len(l.msg))
			for {
				if _, err := io.ReadFull(cn, in); err != nil {
					if !l.closing.Load() {
						dropped.Add(1)
					}
					return
				}
				seq := int64(binary.LittleEndian.Uint64(in))
				ts := int64(binary.LittleEndian.Uint64(in[8:]))
				st.record(r, seq, ts, binary.LittleEndian.Uint64(in[16:]) == 1)
			}
		})
	}
	if l.pub, err = dial(tcpFanoutPublisher); err != nil {
		return fmt.Errorf("opening the publisher: %w", err)
	}
	return nil
}

func (l *tcpFanoutLink) publish(seq, ts int64, measured bool) error {
	binary.LittleEndian.PutUint64(l.msg, uint64(seq))
	binary.LittleEndian.PutUint64(l.msg[8:], uint64(ts))
	var m uint64
	if measured {
		m = 1
	}
	binary.LittleEndian.PutUint64(l.msg[16:], m)
	_, err := l.pub.Write(l.msg)
	return err
}

func (l *tcpFanoutLink) close() {
	l.closing.Store(true)
	for _, cn := range l.conns {
		_ = cn.Close()
	}
	l.wg.Wait()
}
