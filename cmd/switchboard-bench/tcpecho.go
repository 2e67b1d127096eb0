package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"
)

// The raw-TCP echo floor: what one loopback request/response costs a plain
// Go program on this machine, measured with the echo scenario's load
// pattern (n clients, one round trip in flight each) so that the echo
// figures of the servers can be read as a share of it. tcp-floor-server
// echoes every byte back; tcp-echo sends size-byte messages and waits for
// each.

type tcpEchoScenario struct {
	n    int
	size int
}

func (e *tcpEchoScenario) flags(fs *flag.FlagSet, _ *config) {
	fs.IntVar(&e.n, "n", 50, "clients")
	fs.IntVar(&e.size, "size", 96, "bytes per message (about an echo event's frame)")
}

func (e *tcpEchoScenario) run(ctx context.Context, c *config) (*Result, error) {
	if e.n < 1 || e.size < 1 {
		return nil, errors.New("-n and -size must be at least 1")
	}
	u, err := url.Parse(c.url)
	if err != nil {
		return nil, err
	}
	res := &Result{Params: map[string]any{"n": e.n, "size": e.size, "duration": c.duration.String()}}
	conns := make([]net.Conn, 0, e.n)
	defer func() {
		for _, cn := range conns {
			_ = cn.Close()
		}
	}()
	var d net.Dialer
	for range e.n {
		cn, err := d.DialContext(ctx, "tcp", u.Host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", u.Host, err)
		}
		conns = append(conns, cn)
	}
	l := newClosedLoop(ctx, c)
	for _, cn := range conns {
		l.wg.Go(func() {
			out := make([]byte, e.size)
			in := make([]byte, e.size)
			for i := range out {
				out[i] = 'x'
			}
			// One deadline for the run, as the other scenarios' operations have.
			if dl, ok := l.ops.Deadline(); ok {
				_ = cn.SetDeadline(dl)
			}
			for !l.stopped() {
				m := l.measure.Load()
				t0 := time.Now()
				if _, err := cn.Write(out); err != nil {
					l.fail(err)
					return
				}
				if _, err := io.ReadFull(cn, in); err != nil {
					l.fail(err)
					return
				}
				l.done(m, time.Since(t0))
			}
		})
	}
	cpuErr := l.finish(ctx, c, res, "round_trips", "echoes", "latency")
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, cpuErr
}
