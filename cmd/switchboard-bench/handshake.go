package main

import (
	"context"
	"errors"
	"flag"
	"sync/atomic"
	"time"
)

// handshakeScenario: concurrency workers each open a connection (websocket
// handshake, Engine.IO open, Socket.IO CONNECT and its reply) and close it,
// over and over.
type handshakeScenario struct {
	concurrency int
	max         int64
}

func (h *handshakeScenario) flags(fs *flag.FlagSet, _ *config) {
	fs.IntVar(&h.concurrency, "concurrency", 16, "connections being opened at once")
	fs.Int64Var(&h.max, "max", 1_000_000, "stop after this many connections")
}

func (h *handshakeScenario) run(ctx context.Context, c *config) (*Result, error) {
	if h.concurrency < 1 {
		return nil, errors.New("-concurrency must be at least 1")
	}
	res := &Result{Params: map[string]any{
		"concurrency": h.concurrency, "duration": c.duration.String(), "sources": len(c.sources),
	}}
	var started atomic.Int64
	l := newClosedLoop(ctx, c)
	for range h.concurrency {
		l.wg.Go(func() {
			for started.Add(1) <= h.max && !l.stopped() && ctx.Err() == nil {
				m := l.measure.Load()
				t0 := time.Now()
				s, err := c.dial(ctx)
				d := time.Since(t0)
				if err != nil {
					l.fail(err)
					sleep(ctx, 100*time.Millisecond) // do not spin on a refusing server
					continue
				}
				_ = s.Manager().Close()
				l.done(m, d)
			}
		})
	}
	cpuErr := l.finish(ctx, c, res, "handshakes", "conns", "connect")
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, cpuErr
}
