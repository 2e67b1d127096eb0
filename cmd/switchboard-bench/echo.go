package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// echoScenario: n clients each keep inflight echo round trips going
// (emit with an acknowledgement, wait for it, emit the next).
type echoScenario struct {
	n        int
	inflight int
	size     int
	interval time.Duration
}

func (e *echoScenario) flags(fs *flag.FlagSet, _ *config) {
	fs.IntVar(&e.n, "n", 50, "clients")
	fs.IntVar(&e.inflight, "inflight", 1, "round trips each client keeps in flight")
	fs.IntVar(&e.size, "size", 64, "bytes of the string argument echoed with the sequence number")
	fs.DurationVar(&e.interval, "interval", 0, "paced: each round trip starts this long after the previous one started (clients spread evenly over it); 0: flat-out")
}

func (e *echoScenario) run(ctx context.Context, c *config) (*Result, error) {
	if e.n < 1 || e.inflight < 1 || e.interval < 0 {
		return nil, errors.New("-n and -inflight must be at least 1, -interval not negative")
	}
	res := &Result{Params: map[string]any{
		"n": e.n, "inflight": e.inflight, "size": e.size, "duration": c.duration.String(),
	}}
	if e.interval > 0 {
		res.Params["interval"] = e.interval.String()
	}
	socks, err := c.dialAll(ctx, e.n, nil)
	defer func() { c.closeAll(socks) }()
	if err != nil {
		return nil, fmt.Errorf("opening clients: %w", err)
	}

	pad := strings.Repeat("x", e.size)
	var mismatch atomic.Int64
	l := newClosedLoop(ctx, c)
	for i, s := range socks {
		for j := range e.inflight {
			l.wg.Go(func() {
				seq := int64(i)<<32 | int64(j)<<24
				// Paced workers start spread over one interval.
				next := time.Now().Add(e.interval * time.Duration(i*e.inflight+j) / time.Duration(e.n*e.inflight))
				for l.waitUntil(next, e.interval > 0) {
					next = next.Add(e.interval)
					seq++
					m := l.measure.Load()
					t0 := time.Now()
					a, err := s.EmitWithAck(l.ops, "echo", seq, pad)
					rtt := time.Since(t0)
					if err != nil {
						l.fail(err)
						return
					}
					if a.Len() != 2 || string(a.Raw[0]) != strconv.FormatInt(seq, 10) {
						mismatch.Add(1)
					}
					l.done(m, rtt)
				}
			})
		}
	}
	cpuErr := l.finish(ctx, c, res, "round_trips", "acks", "latency")
	res.add("mismatched", float64(mismatch.Load()), "acks", "lower")
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, cpuErr
}
