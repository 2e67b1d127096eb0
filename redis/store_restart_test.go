package redis_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/redis"
)

// TestDurableRedisRestart publishes a 10,000-event durable stream through
// Namespace.Publish on node A while a durable subscriber reads it on node
// B, and SIGKILLs Redis (AOF, appendfsync always) in the middle, starting
// it again 1.5 s later (each publish has a 1 s deadline). Every publish that returned nil reaches
// the subscriber, in offset order (redeliveries are counted and logged);
// publishes during the outage may fail and are counted; nothing crashes
// and no goroutine outlives the nodes.
func TestDurableRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	ignore := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, ignore) }) // runs after every other cleanup

	r := startPrivateRedis(t, "--appendonly", "yes", "--appendfsync", "always")
	c := privateClient(t, r.addr)
	aopts := &redis.Options{BlockTime: time.Second}
	sopts := &redis.StoreOptions{Prefix: "sbtest"}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil)) // the outage logs an error per failed call
	durable := switchboard.DurableOptions{AckTimeout: 2 * time.Second, MaxInflight: 500}
	nodeA := startDurableNode(t, c, aopts, sopts, durable, quiet)
	nodeB := startDurableNode(t, c, aopts, sopts, durable, quiet)
	sub := connectDurableSub(t, nodeB.url, "carol", "feed", 0)

	const total = 10_000
	var (
		mu       sync.Mutex
		ok       = make(map[int]uint64) // value → offset, for publishes that returned nil
		failed   int                    // publishes that returned an error
		progress = make(chan int, total)
		done     = make(chan struct{})
	)
	go func() {
		defer close(done)
		for i := range total {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			off, err := nodeA.srv.Of("/").Publish(ctx, "feed", "m", i)
			cancel()
			mu.Lock()
			if err == nil {
				ok[i] = off
			} else {
				failed++
			}
			mu.Unlock()
			progress <- i
		}
	}()
	for i := range progress {
		if i == total/3 {
			break
		}
	}
	r.kill(syscall.SIGKILL)
	killed := time.Now()
	time.Sleep(1500 * time.Millisecond) // longer than a publish's 1 s deadline
	r.start()
	restarted := time.Now()
	<-done
	published := time.Now()

	mu.Lock()
	want := make(map[int]uint64, len(ok))
	for v, o := range ok {
		want[v] = o
	}
	lastOffset := uint64(0)
	for _, o := range ok {
		lastOffset = max(lastOffset, o)
	}
	nFailed := failed
	mu.Unlock()
	if len(want) < total/2 {
		t.Fatalf("only %d of %d publishes succeeded", len(want), total)
	}

	// Wait until the subscriber has the last acknowledged offset.
	deadline := time.Now().Add(30 * time.Second)
	for {
		sub.mu.Lock()
		high := uint64(0)
		for _, o := range sub.offsets {
			high = max(high, o)
		}
		sub.mu.Unlock()
		if high >= lastOffset {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("subscriber reached offset %d, last acknowledged publish has %d", high, lastOffset)
		}
		time.Sleep(20 * time.Millisecond)
	}
	caughtUp := time.Now()

	sub.mu.Lock()
	offsets := append([]uint64(nil), sub.offsets...)
	values := append([]int(nil), sub.values...)
	sub.mu.Unlock()

	// Deliveries come in offset order: each one is the next offset, or a
	// redelivery of one at or below the highest seen (a duplicate).
	var (
		high       uint64
		dups       int
		lastValue  = -1
		byValue    = make(map[int]uint64)
		firstOff   = offsets[0]
		dupOffsets []uint64
	)
	if firstOff != 1 {
		t.Fatalf("first delivery has offset %d, want 1", firstOff)
	}
	for i, o := range offsets {
		switch {
		case o == high+1:
			high = o
			if values[i] <= lastValue {
				t.Errorf("offset %d holds value %d after value %d: out of publish order", o, values[i], lastValue)
			}
			lastValue = values[i]
			if prev, seen := byValue[values[i]]; seen {
				t.Errorf("value %d stored twice, at offsets %d and %d", values[i], prev, o)
			}
			byValue[values[i]] = o
		case o <= high:
			dups++
			if len(dupOffsets) < 20 {
				dupOffsets = append(dupOffsets, o)
			}
		default:
			t.Fatalf("delivery %d has offset %d after %d: a gap", i, o, high)
		}
	}
	for v, o := range want {
		if got, seen := byValue[v]; !seen || got != o {
			t.Errorf("acknowledged publish %d (offset %d) not delivered (got offset %d, %v)", v, o, got, seen)
		}
	}
	nStored := 0 // failed publishes that were stored all the same (their reply was lost)
	for v := range byValue {
		if _, acked := want[v]; !acked {
			nStored++
		}
	}
	t.Logf("%d publishes acknowledged, %d failed during the outage (%d of them stored all the same); "+
		"%d deliveries, %d duplicates (first offsets %v); Redis down %v; subscriber caught up %v after the last publish (%v after the restart)",
		len(want), nFailed, nStored, len(offsets), dups, dupOffsets, restarted.Sub(killed).Round(time.Millisecond),
		caughtUp.Sub(published).Round(time.Millisecond), caughtUp.Sub(restarted).Round(time.Millisecond))

	// The store agrees: every offset up to the last is there, once.
	info, found, err := nodeB.store.Info(context.Background(), "/#feed")
	if err != nil || !found || info.First != 1 || info.Last < lastOffset {
		t.Fatalf("Info after the restart = %+v, %v, %v", info, found, err)
	}
	waitStoreCursor(t, nodeA.store, "/#feed", "carol", info.Last)
}
