package redis_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/client"
	"github.com/switchboard-io/switchboard/redis"
)

// Cross-node fan-out: node A broadcasts, the clients are on node B (or, for
// "local", on A itself, without Redis). Run with
//
//	go test -run '^$' -bench 'BenchmarkFanout' -benchtime 20000x ./redis/
//
// Each broadcast carries its send time; the benchmark reports broadcasts/s
// (each reaching every client of its namespace), deliveries/s, and the
// delivery latency p50/p99. "throughput" sends as fast as 4 goroutines per
// namespace can; "paced" sends 1,000 broadcasts/s in all, for latency
// without queueing. "served=1of4": node A broadcasts on 4 namespaces and
// node B serves only the first (only its deliveries are counted).

const fanoutClients = 4 // clients per namespace on the receiving node

type fanoutMode struct {
	name    string
	cluster bool
	sharded bool
}

var fanoutModes = []fanoutMode{{"local", false, false}, {"stream", true, false}, {"sharded", true, true}}

func BenchmarkFanout(b *testing.B) {
	for _, shape := range []struct {
		name         string
		nsps, served int
		paced        bool
	}{
		{"throughput/nsp=1", 1, 1, false},
		{"throughput/nsp=4", 4, 4, false},
		{"throughput/nsp=4/served=1of4", 4, 1, false},
		{"paced/nsp=1", 1, 1, true},
		{"paced/nsp=4/served=1of4", 4, 1, true},
	} {
		for _, m := range fanoutModes {
			if !m.cluster && shape.served != shape.nsps {
				continue
			}
			b.Run(shape.name+"/"+m.name, func(b *testing.B) { benchFanout(b, m, shape.nsps, shape.served, shape.paced) })
		}
	}
}

func benchFanout(b *testing.B, m fanoutMode, nsps, served int, paced bool) {
	var newAdapter func(*switchboard.Namespace) switchboard.Adapter
	var a, recv *switchboard.Server
	if m.cluster {
		c := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
		if err := c.Ping(context.Background()).Err(); err != nil {
			b.Skipf("SKIPPING: no Redis at %s: %v", redisAddr(), err)
		}
		defer c.Close()
		name := fmt.Sprintf("sbbench:%s:%d", runID, time.Now().UnixNano())
		defer func() {
			keys, _ := c.Keys(context.Background(), name+"*").Result()
			if len(keys) > 0 {
				c.Del(context.Background(), keys...)
			}
		}()
		o := &redis.Options{StreamName: name, ChannelPrefix: name, SessionKeyPrefix: name + ":session:", Sharded: m.sharded}
		newAdapter = func(ns *switchboard.Namespace) switchboard.Adapter { return redis.NewAdapter(c, o)(ns) }
		a = switchboard.NewServer(&switchboard.Options{Adapter: newAdapter})
		recv = switchboard.NewServer(&switchboard.Options{Adapter: newAdapter})
	} else {
		a = switchboard.NewServer(nil)
		recv = a
	}
	hs := httptest.NewServer(recv)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Close(ctx)
		if recv != a {
			_ = recv.Close(ctx)
		}
		hs.Close()
	}()
	names := make([]string, nsps)
	for i := range names {
		names[i] = fmt.Sprintf("/n%d", i)
		a.Of(names[i])
		if i < served {
			recv.Of(names[i])
		}
	}

	base := time.Now()
	var (
		delivered atomic.Int64
		mu        sync.Mutex
		lat       = make([]time.Duration, 0, 1<<16)
		sample    atomic.Int64
	)
	for i := 0; i < served; i++ {
		for range fanoutClients {
			mgr := client.NewManager(hs.URL, &client.Options{Transports: []string{"websocket"}})
			defer mgr.Close()
			s := mgr.Socket(names[i])
			s.On("m", func(sent int64) {
				delivered.Add(1)
				// Keep about 64k samples whatever b.N.
				if sample.Add(1)%int64(max(1, b.N*fanoutClients*served/nsps/65536)) == 0 {
					d := time.Since(base) - time.Duration(sent)*time.Microsecond
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			})
			ok := make(chan struct{})
			s.Once("connect", func() { close(ok) })
			s.Connect()
			select {
			case <-ok:
			case <-time.After(waitLimit):
				b.Fatal("client connect timed out")
			}
		}
	}
	// Broadcasts are split evenly over the namespaces; only the served
	// ones count.
	per := b.N / nsps
	want := int64(per * served * fanoutClients)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	senders := 4
	interval := time.Duration(0)
	if paced {
		senders = 1
		interval = time.Duration(nsps) * time.Millisecond // 1,000/s in all
	}
	for _, nsp := range names {
		ns := a.Of(nsp)
		for g := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				next := time.Now()
				for i := g; i < per; i += senders {
					if interval > 0 {
						next = next.Add(interval)
						time.Sleep(time.Until(next))
					}
					if err := ns.Emit("m", int64(time.Since(base)/time.Microsecond)); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	deadline := time.Now().Add(time.Minute)
	for delivered.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", delivered.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	mu.Lock()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
	mu.Unlock()
	b.ReportMetric(float64(per*served)/elapsed.Seconds(), "bcasts/s")
	b.ReportMetric(float64(want)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(0, "ns/op")

}

// BenchmarkRecoveryScan measures connection-state recovery when the
// stream holds other namespaces' traffic: a client of "/" drops, node A
// broadcasts 5,000 events on "/other" and 10 on "/", and the client comes
// back to node B. In the compatible layout the restore scans the 5,010
// entries of the shared stream; in sharded mode only the 10 of "/"'s
// stream. Reported: the time from reconnecting to the tenth replayed event.
//
//	go test -run '^$' -bench 'BenchmarkRecoveryScan' -benchtime 20x ./redis/
func BenchmarkRecoveryScan(b *testing.B) {
	for _, sharded := range []bool{false, true} {
		name := "stream"
		if sharded {
			name = "sharded"
		}
		b.Run(name, func(b *testing.B) { benchRecoveryScan(b, sharded, 5000) })
	}
}

func benchRecoveryScan(b *testing.B, sharded bool, filler int) {
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr(), PoolSize: 64})
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Skipf("SKIPPING: no Redis at %s: %v", redisAddr(), err)
	}
	defer c.Close()
	name := fmt.Sprintf("sbbench:%s:%d", runID, time.Now().UnixNano())
	defer func() {
		keys, _ := c.Keys(context.Background(), name+"*").Result()
		if len(keys) > 0 {
			c.Del(context.Background(), keys...)
		}
	}()
	o := &redis.Options{StreamName: name, ChannelPrefix: name, SessionKeyPrefix: name + ":session:", Sharded: sharded}
	opts := &switchboard.Options{Adapter: redis.NewAdapter(c, o), ConnectionStateRecovery: &switchboard.RecoveryOptions{}}
	a := switchboard.NewServer(opts)
	opts2 := *opts
	opts2.Adapter = redis.NewAdapter(c, o)
	recv := switchboard.NewServer(&opts2)
	a.Of("/other")
	hs := httptest.NewServer(recv)
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = a.Close(ctx)
		_ = recv.Close(ctx)
		hs.Close()
	}()
	mgr := client.NewManager(hs.URL, &client.Options{Transports: []string{"websocket"}, DisableReconnection: true})
	defer mgr.Close()
	s := mgr.Socket("/")
	got := make(chan struct{}, 64)
	conns := make(chan bool, 4)
	s.On("m", func(int) { got <- struct{}{} })
	s.On("connect", func() { conns <- s.Recovered() })
	s.Connect()
	<-conns
	// The client needs an offset to recover from.
	if err := a.Emit("m", 0); err != nil {
		b.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(waitLimit):
		b.Fatal("first event missing")
	}
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		mgr.Engine().CloseTransport()
		deadline := time.Now().Add(waitLimit)
		for {
			keys, _ := c.Keys(context.Background(), o.SessionKeyPrefix+"*").Result()
			if len(keys) > 0 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatal("no session persisted")
			}
			time.Sleep(time.Millisecond)
		}
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := g; j < filler; j += 16 {
					_ = a.Of("/other").Emit("m", j)
				}
			}()
		}
		wg.Wait()
		for j := range 10 {
			_ = a.Emit("m", j)
		}
		b.StartTimer()
		start := time.Now()
		s.Connect()
		select {
		case rec := <-conns:
			if !rec {
				b.Fatal("not recovered")
			}
		case <-time.After(waitLimit):
			b.Fatal("no reconnection")
		}
		for range 10 {
			select {
			case <-got:
			case <-time.After(waitLimit):
				b.Fatal("replay incomplete")
			}
		}
		total += time.Since(start)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/recovery")
	b.ReportMetric(0, "ns/op")
}
