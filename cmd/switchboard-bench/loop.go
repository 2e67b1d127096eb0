package main

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// closedLoop is what the closed-loop scenarios (echo, handshake, durable
// publish, tcp-echo) share: workers repeat an operation until the
// measurement ends, and the ones that started while it ran are counted and
// timed.
type closedLoop struct {
	// ops bounds every operation: it ends opTimeout after the measurement
	// would, so that an answer that never comes fails the operation, without
	// a timer per operation (7% of the tool's CPU in echo).
	ops       context.Context
	cancelOps context.CancelFunc
	measure   atomic.Bool
	stop      chan struct{}
	wg        sync.WaitGroup
	count     atomic.Int64 // completed, started while measured
	failed    atomic.Int64
	lat       histogram

	errMu    sync.Mutex
	firstErr error
}

// opTimeout is how long after the end of the measurement an operation may
// still wait for its answer.
const opTimeout = 10 * time.Second

func newClosedLoop(ctx context.Context, c *config) *closedLoop {
	ops, cancel := context.WithTimeout(ctx, c.warmup+c.duration+opTimeout)
	return &closedLoop{ops: ops, cancelOps: cancel, stop: make(chan struct{})}
}

// stopped reports whether the workers should end.
func (l *closedLoop) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// waitUntil reports whether a worker should go on, after waiting until t
// when paced is set; it returns false as soon as the workers should end.
func (l *closedLoop) waitUntil(t time.Time, paced bool) bool {
	if !paced {
		return !l.stopped()
	}
	d := time.Until(t)
	if d <= 0 {
		return !l.stopped()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-l.stop:
		return false
	case <-timer.C:
		return true
	}
}

// fail counts a failed operation and keeps the first error for the report.
func (l *closedLoop) fail(err error) {
	l.failed.Add(1)
	l.errMu.Lock()
	if l.firstErr == nil {
		l.firstErr = err
	}
	l.errMu.Unlock()
}

// done records an operation that took d; measured is measure.Load() taken
// when it started.
func (l *closedLoop) done(measured bool, d time.Duration) {
	if measured {
		l.count.Add(1)
		l.lat.Record(d)
	}
}

// finish runs the measurement window, stops and waits for the workers, and
// records the count's rates as rate (in unit), the latency as latency, the
// failures and the first of them. It returns the CPU meter's error.
func (l *closedLoop) finish(ctx context.Context, c *config, res *Result, rate, unit, latency string) error {
	meter, cpu, wall, cpuErr := measureWindow(ctx, c, &l.measure)
	close(l.stop)
	l.wg.Wait()
	l.cancelOps()
	res.addRates(rate, float64(l.count.Load()), unit, c.serverPID, cpu, wall)
	meter.report(res, wall)
	res.addLatency(latency, &l.lat)
	res.add("failed", float64(l.failed.Load()), unit, "lower")
	if l.firstErr != nil {
		res.note("first failure: %v", l.firstErr)
	}
	return cpuErr
}
