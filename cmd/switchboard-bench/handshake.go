package main

import (
	"context"
	"errors"
	"flag"
	"sync"
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
	var (
		count, failed, started atomic.Int64
		measure                atomic.Bool
		lat                    histogram
		errMu                  sync.Mutex
		firstErr               error
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range h.concurrency {
		wg.Go(func() {
			for started.Add(1) <= h.max {
				select {
				case <-stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				m := measure.Load()
				t0 := time.Now()
				s, err := c.dial(ctx)
				d := time.Since(t0)
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					sleep(ctx, 100*time.Millisecond) // do not spin on a refusing server
					continue
				}
				_ = s.Manager().Close()
				if m {
					count.Add(1)
					lat.Record(d)
				}
			}
		})
	}
	meter, cpu, wall, cpuErr := measureWindow(ctx, c, &measure)
	close(stop)
	wg.Wait()

	n := float64(count.Load())
	res.addRates("handshakes", n, "conns", c.serverPID, cpu, wall)
	meter.report(res, wall)
	res.addLatency("connect", &lat)
	res.add("failed", float64(failed.Load()), "conns", "lower")
	if firstErr != nil {
		res.note("first failure: %v", firstErr)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, cpuErr
}
