package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
)

// tcp-floor-server is the raw-TCP floors' server: a plain Go program doing
// the least a server can for each load pattern, so that the servers'
// figures can be read against it. A connection's first byte picks its role:
//   - tcpFanoutReceiver: the connection is added to the receivers and gets
//     tcpFanoutReady back; it then only receives;
//   - tcpFanoutPublisher: every read from the connection is written to
//     every receiver, one write(2) per receiver, as a server that does not
//     coalesce writes sends an event to a room;
//   - anything else (tcp-echo's first byte): every byte read is written
//     back, the first one included.
const (
	tcpFanoutReceiver  = 'R'
	tcpFanoutPublisher = 'P'
	tcpFanoutReady     = 'k'
)

// runTCPFloorServer listens on 127.0.0.1 at PORT (default 3000) and serves
// until SIGINT or SIGTERM.
func runTCPFloorServer(stdout io.Writer) error {
	port := os.Getenv("PORT")
	if port == "" {
		port = "3000"
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(stdout, "tcp-floor-server listening on %s pid %d\n", ln.Addr(), os.Getpid())
	return serveTCPFloor(ctx, ln)
}

// serveTCPFloor serves ln until ctx ends; it closes ln and every connection
// and returns once their goroutines ended.
func serveTCPFloor(ctx context.Context, ln net.Listener) error {
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conns     = map[net.Conn]struct{}{}
		receivers []net.Conn // under mu
	)
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		<-ctx.Done()
		_ = ln.Close()
		mu.Lock()
		for cn := range conns {
			_ = cn.Close()
		}
		mu.Unlock()
	}()
	defer func() {
		<-stopped
		wg.Wait()
	}()
	for {
		cn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		mu.Lock()
		if ctx.Err() != nil {
			mu.Unlock()
			_ = cn.Close()
			continue
		}
		conns[cn] = struct{}{}
		mu.Unlock()
		wg.Go(func() {
			defer func() {
				mu.Lock()
				delete(conns, cn)
				if i := slices.Index(receivers, cn); i >= 0 {
					// A new slice: a publisher may be writing to the old one.
					receivers = slices.Concat(receivers[:i], receivers[i+1:])
				}
				mu.Unlock()
				_ = cn.Close()
			}()
			buf := make([]byte, 4096)
			n, err := cn.Read(buf)
			if err != nil || n == 0 {
				return
			}
			switch buf[0] {
			case tcpFanoutReceiver:
				mu.Lock()
				receivers = append(slices.Clip(receivers), cn) // a new slice, as above
				mu.Unlock()
				if _, err := cn.Write([]byte{tcpFanoutReady}); err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, cn) // until the receiver goes
			case tcpFanoutPublisher:
				fanOut := func(p []byte) {
					mu.Lock()
					rs := receivers // never changed in place
					mu.Unlock()
					for _, r := range rs {
						_, _ = r.Write(p) // a gone receiver is its own goroutine's business
					}
				}
				if n > 1 {
					fanOut(buf[1:n])
				}
				for {
					n, err := cn.Read(buf)
					if n > 0 {
						fanOut(buf[:n])
					}
					if err != nil {
						return
					}
				}
			default:
				for {
					if _, err := cn.Write(buf[:n]); err != nil {
						return
					}
					if n, err = cn.Read(buf); err != nil {
						return
					}
				}
			}
		})
	}
}
