package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/switchboard-io/switchboard/client"
)

// config holds the flags every scenario shares.
type config struct {
	url        string
	serverPID  int
	sources    []net.IP
	warmup     time.Duration
	duration   time.Duration
	timeout    time.Duration
	dialConc   int
	json       bool
	label      string
	statsURL   string
	dialTimout time.Duration

	next atomic.Uint64 // round-robin over sources
}

// addFlags registers the common flags on fs; finish validates them after
// parsing.
func (c *config) addFlags(fs *flag.FlagSet, defDuration time.Duration) (finish func() error) {
	fs.StringVar(&c.url, "url", "http://127.0.0.1:3000", "server `URL` (loopback only); its path is the namespace")
	fs.IntVar(&c.serverPID, "server-pid", 0, "server process `id`, for its CPU seconds (/proc/PID/stat) and RSS (/proc/PID/status); 0: not measured")
	sources := fs.String("sources", "127.0.0.1", "source addresses to spread connections over: a comma-separated `list` of loopback IPs, or a count n for 127.0.0.1..127.0.0.n")
	fs.DurationVar(&c.warmup, "warmup", time.Second, "load before the measurement starts")
	fs.DurationVar(&c.duration, "duration", defDuration, "measurement `time`")
	fs.DurationVar(&c.timeout, "timeout", 0, "bound on the whole run; default warmup+duration+2m")
	fs.IntVar(&c.dialConc, "dial-concurrency", 100, "connections opened at once while setting up")
	fs.BoolVar(&c.json, "json", false, "print the result as one JSON object")
	fs.StringVar(&c.label, "label", "", "name of the server under test, recorded in the result (e.g. switchboard, node)")
	fs.StringVar(&c.statsURL, "server-stats", "", "`URL` of the benchserver's /debug/stats (its -pprof address), for goroutines per connection")
	fs.DurationVar(&c.dialTimout, "dial-timeout", 20*time.Second, "bound on opening one connection")
	return func() error {
		ips, err := parseSources(*sources)
		if err != nil {
			return err
		}
		c.sources = ips
		if err := checkLoopbackURL(c.url); err != nil {
			return err
		}
		if c.statsURL != "" {
			if err := checkLoopbackURL(c.statsURL); err != nil {
				return err
			}
		}
		if c.duration <= 0 {
			return errors.New("-duration must be positive")
		}
		if c.warmup < 0 {
			return errors.New("-warmup must not be negative")
		}
		if c.timeout <= 0 {
			c.timeout = c.warmup + c.duration + 2*time.Minute
		}
		if c.dialConc < 1 {
			c.dialConc = 1
		}
		return nil
	}
}

// parseSources reads the -sources flag.
func parseSources(s string) ([]net.IP, error) {
	if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil {
		if n < 1 || n > 254 {
			return nil, fmt.Errorf("-sources %d: want 1..254", n)
		}
		ips := make([]net.IP, n)
		for i := range ips {
			ips[i] = net.IPv4(127, 0, 0, byte(i+1))
		}
		return ips, nil
	}
	var ips []net.IP
	for _, f := range strings.Split(s, ",") {
		ip := net.ParseIP(strings.TrimSpace(f))
		if ip == nil || !ip.IsLoopback() {
			return nil, fmt.Errorf("-sources: %q is not a loopback IP", f)
		}
		ips = append(ips, ip)
	}
	return ips, nil
}

// checkLoopbackURL refuses targets that are not on this machine: the tool
// is a load generator and only ever points at loopback.
func checkLoopbackURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("url %q: %w", raw, err)
	}
	switch u.Scheme {
	case "http", "ws":
	default:
		return fmt.Errorf("url %q: scheme must be http or ws", raw)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("url %q: only loopback targets (127.0.0.0/8, ::1, localhost) are allowed", raw)
	}
	return nil
}

// ipBindAddressNoPort is IP_BIND_ADDRESS_NO_PORT: bind the source address
// but pick the port at connect time, so each source address has the whole
// ephemeral range per destination and TIME_WAIT reuse works.
const ipBindAddressNoPort = 24

// clientOptions returns client options for the next connection: websocket
// only, no reconnection, the next source address.
func (c *config) clientOptions() *client.Options {
	src := c.sources[int(c.next.Add(1)-1)%len(c.sources)]
	nd := &net.Dialer{
		Timeout:   c.dialTimout,
		LocalAddr: &net.TCPAddr{IP: src},
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
			if err != nil {
				return err
			}
			return serr
		},
	}
	return &client.Options{
		Transports:          []string{"websocket"},
		DisableReconnection: true,
		Timeout:             c.dialTimout,
		Dialer: &websocket.Dialer{
			NetDialContext:   nd.DialContext,
			HandshakeTimeout: c.dialTimout,
		},
	}
}

// dial opens one socket on the namespace of c.url.
func (c *config) dial(ctx context.Context) (*client.Socket, error) {
	ctx, cancel := context.WithTimeout(ctx, c.dialTimout)
	defer cancel()
	return client.Dial(ctx, c.url, c.clientOptions())
}

// dialAll opens n sockets, c.dialConc at a time, calling setup on each
// (before it is counted as open; setup may register handlers and join
// rooms). It stops at the first error and returns the sockets opened so far.
func (c *config) dialAll(ctx context.Context, n int, setup func(i int, s *client.Socket) error) ([]*client.Socket, error) {
	socks := make([]*client.Socket, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
		nextIdx  atomic.Int64
	)
	workers := min(c.dialConc, n)
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(nextIdx.Add(1) - 1)
				if i >= n {
					return
				}
				s, err := c.dial(ctx)
				if err == nil && setup != nil {
					if err = setup(i, s); err != nil {
						_ = s.Manager().Close()
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = fmt.Errorf("connection %d: %w", i, err)
					}
					mu.Unlock()
					cancel()
					return
				}
				socks[i] = s
			}
		})
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	open := socks[:0]
	for _, s := range socks {
		if s != nil {
			open = append(open, s)
		}
	}
	return open, firstErr
}

// closeAll closes the sockets' managers, c.dialConc at a time.
func (c *config) closeAll(socks []*client.Socket) {
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(c.dialConc, len(socks)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(socks) {
					return
				}
				_ = socks[i].Manager().Close()
			}
		})
	}
	wg.Wait()
}
