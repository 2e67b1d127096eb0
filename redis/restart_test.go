package redis_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/redis"
)

// startGoNodeOn starts a Go node whose adapter comes from cl.
func startGoNodeOn(t *testing.T, cl *redis.Cluster) *goNode {
	t.Helper()
	srv := switchboard.NewServer(&switchboard.Options{Adapter: cl.Adapter})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Close(ctx)
		hs.Close()
		_ = cl.Close()
	})
	return &goNode{srv: srv, url: hs.URL}
}

func privateClient(t *testing.T, addr string) *goredis.Client {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DialTimeout: 500 * time.Millisecond, MaxRetries: 1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestRedisRestart kills Redis (SIGKILL; AOF with fsync always, so that an
// acknowledged XADD is durable) while one node broadcasts continuously and
// starts it again: no crash, the reader resumes after the last entry it
// delivered, and every broadcast whose Emit returned nil reaches the
// client on the other node exactly once, in order.
func TestRedisRestart(t *testing.T) {
	r := startPrivateRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	c := privateClient(t, r.addr)
	opts := &redis.Options{BlockTime: time.Second}
	c1, c2 := redis.New(c, opts), redis.New(c, opts)
	g1, g2 := startGoNodeOn(t, c1), startGoNodeOn(t, c2)
	p := dial(t, "p", g2.url, "m")

	var (
		mu       sync.Mutex
		acked    []string
		failed   = map[string]bool{}
		stop     = make(chan struct{})
		finished = make(chan struct{})
	)
	go func() {
		defer close(finished)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			msg := "n-" + strconv.Itoa(i)
			err := g1.srv.Emit("m", msg)
			mu.Lock()
			if err == nil {
				acked = append(acked, msg)
			} else {
				failed[msg] = true
			}
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(300 * time.Millisecond)
	r.kill(syscall.SIGKILL)
	time.Sleep(500 * time.Millisecond)
	if c1.Err() == nil && c2.Err() == nil {
		t.Error("Err() stayed nil on both nodes while Redis was down")
	}
	r.start()
	restarted := time.Now()
	// Broadcasts flow again once the nodes reconnect; go on for a second.
	for {
		mu.Lock()
		last := ""
		if len(acked) > 0 {
			last = acked[len(acked)-1]
		}
		mu.Unlock()
		if last != "" && p.count("m", last) == 1 && time.Since(restarted) > time.Second {
			break
		}
		if time.Since(restarted) > waitLimit {
			t.Fatalf("broadcasts did not resume after the restart (last acknowledged %q)", last)
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(stop)
	<-finished
	mu.Lock()
	want := append([]string(nil), acked...)
	nFailed := len(failed)
	mu.Unlock()
	// (An Emit during the outage may also block in the client's retries
	// and succeed once Redis is back, so nFailed may be 0.)
	p.waitEvent(t, "m", want[len(want)-1])
	var got []string
	for _, e := range p.received() {
		var s string
		_ = e.args.Decode(0, &s)
		got = append(got, s)
	}
	// Acknowledged broadcasts arrive once each, in order; a failed one may
	// have been stored by Redis all the same (its reply was lost).
	seen := map[string]int{}
	j := 0
	for _, s := range got {
		seen[s]++
		if j < len(want) && s == want[j] {
			j++
		}
	}
	for _, s := range want {
		if seen[s] != 1 {
			t.Errorf("acknowledged %s received %d times", s, seen[s])
		}
	}
	if j != len(want) {
		t.Errorf("acknowledged broadcasts out of order or missing: matched %d of %d", j, len(want))
	}
	for s, n := range seen {
		if n > 1 {
			t.Errorf("%s received %d times", s, n)
		}
	}
	for c1.Err() != nil || c2.Err() != nil {
		if time.Since(restarted) > waitLimit {
			t.Fatalf("Err() still %v / %v after the restart", c1.Err(), c2.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Pub/sub is back too: requests and responses across nodes.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	waitCount(t, g1, 2)
	answers, err := g1.srv.Timeout(5*time.Second).EmitWithAck(ctx, "q")
	if err != nil || len(answers) != 1 {
		t.Errorf("EmitWithAck after the restart = %v, %v", answers, err)
	}
	t.Logf("%d broadcasts acknowledged, %d failed while Redis was down", len(want), nFailed)
}

func waitCount(t *testing.T, g *goNode, want int) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		n, err := g.srv.Of("/").Adapter().ServerCount(ctx)
		cancel()
		if err == nil && n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ServerCount = %d, %v; want %d", n, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRedisDownAtStart starts two nodes while Redis is down: WaitReady
// fails with a clear error, Err reports it, local clients are still
// served, Emit reports that the cluster missed the broadcast; once Redis
// starts, the nodes join each other without a restart.
func TestRedisDownAtStart(t *testing.T) {
	r := reservePrivateRedis(t)
	c := privateClient(t, r.addr)
	c1, c2 := redis.New(c, nil), redis.New(c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err := c1.WaitReady(ctx)
	cancel()
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("WaitReady with Redis down = %v; want an 'unreachable' error wrapping the deadline", err)
	}
	g1, g2 := startGoNodeOn(t, c1), startGoNodeOn(t, c2)
	if c1.Err() == nil {
		t.Error("Err() = nil with Redis down")
	}
	p1 := dial(t, "p1", g1.url, "m")
	p2 := dial(t, "p2", g2.url, "m")
	if err := g1.srv.Emit("m", "while-down"); err == nil {
		t.Error("Emit with Redis down returned nil")
	}
	p1.waitEvent(t, "m", "while-down") // local delivery goes on

	r.start()
	ctx, cancel = context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	if err := c1.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	waitCount(t, g1, 2)
	// The stream readers start reading once Redis answers; keep
	// broadcasting until one arrives.
	deadline := time.Now().Add(waitLimit)
	for i := 0; !anyPrefix(p2, "after-"); i++ {
		if time.Now().After(deadline) {
			t.Fatal("node 2 never received a broadcast of node 1 after Redis started")
		}
		_ = g1.srv.Emit("m", fmt.Sprint("after-", i))
		time.Sleep(50 * time.Millisecond)
	}
	if p2.count("m", "while-down") != 0 {
		t.Error("node 2 received the broadcast made while Redis was down")
	}
	deadline = time.Now().Add(waitLimit)
	for c1.Err() != nil || c2.Err() != nil {
		if time.Now().After(deadline) {
			t.Fatalf("Err() still %v / %v", c1.Err(), c2.Err())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func anyPrefix(p *peer, prefix string) bool {
	for _, e := range p.received() {
		var s string
		if e.args.Decode(0, &s) == nil && strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
