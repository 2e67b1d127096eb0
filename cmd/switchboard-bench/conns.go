package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/switchboard-io/switchboard/client"
)

// connsScenario: open n websocket connections that stay idle (the client
// answers the server's pings) for the measurement time, and measure the
// server's resident memory per connection and its idle CPU.
type connsScenario struct {
	n      int
	settle time.Duration
}

func (s *connsScenario) flags(fs *flag.FlagSet, _ *config) {
	fs.IntVar(&s.n, "n", 1000, "connections (the open-files hard limit bounds it, about 19,000 here)")
	fs.DurationVar(&s.settle, "settle", 2*time.Second, "wait before each RSS reading")
}

func (s *connsScenario) run(ctx context.Context, c *config) (*Result, error) {
	if s.n < 1 {
		return nil, errors.New("-n must be at least 1")
	}
	res := &Result{Params: map[string]any{"n": s.n, "hold": c.duration.String()}}
	var rss0 int64
	var g0 float64
	if c.serverPID > 0 {
		var err error
		if rss0, err = procRSS(c.serverPID); err != nil {
			return nil, err
		}
	}
	if c.statsURL != "" {
		st, err := serverStats(c.statsURL)
		if err != nil {
			return nil, err
		}
		g0 = st["goroutines"]
	}

	var dropped atomic.Int64
	t0 := time.Now()
	socks, err := c.dialAll(ctx, s.n, func(_ int, sk *client.Socket) error {
		sk.On("disconnect", func(string) { dropped.Add(1) })
		return nil
	})
	defer func() { c.closeAll(socks) }()
	openTime := time.Since(t0)
	if err != nil {
		return nil, fmt.Errorf("opened %d of %d: %w", len(socks), s.n, err)
	}
	res.add("conns", float64(len(socks)), "sockets", "")
	res.add("open_rate", perSecond(float64(len(socks)), openTime.Seconds()), "conns/s", "")

	sleep(ctx, s.settle)
	if c.statsURL != "" {
		st, err := serverStats(c.statsURL)
		if err != nil {
			return nil, err
		}
		res.add("server_goroutines_per_conn", (st["goroutines"]-g0)/float64(len(socks)), "goroutines", "lower")
	}
	var rss1 int64
	if c.serverPID > 0 {
		if rss1, err = procRSS(c.serverPID); err != nil {
			return nil, err
		}
	}

	// Hold: the connections idle, answering pings.
	meter := startCPU(c.serverPID)
	sleep(ctx, c.duration)
	cpu, wall, cpuErr := meter.stop()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	connected := connectedCount(socks)

	if c.serverPID > 0 {
		rss2, err := procRSS(c.serverPID)
		if err != nil {
			return nil, err
		}
		n := float64(len(socks))
		res.add("server_rss_before_mb", float64(rss0)/(1<<20), "MiB", "")
		res.add("server_rss_after_mb", float64(rss2)/(1<<20), "MiB", "")
		res.add("rss_per_conn_kb", float64(rss2-rss0)/1024/n, "KiB", "lower")
		res.add("rss_per_conn_open_kb", float64(rss1-rss0)/1024/n, "KiB", "")
		res.add("server_idle_cpu", perSecond(cpu, wall), "cores", "lower")
	}
	meter.report(res, wall)
	res.add("still_connected", float64(connected), "sockets", "higher")
	res.add("disconnects", float64(dropped.Load()), "sockets", "lower")
	if connected < len(socks) {
		return res, fmt.Errorf("%d of %d connections dropped while idle", len(socks)-connected, len(socks))
	}
	return res, cpuErr
}

// connectedCount reports the sockets still connected.
func connectedCount(socks []*client.Socket) int {
	n := 0
	for _, s := range socks {
		if s.Connected() {
			n++
		}
	}
	return n
}
