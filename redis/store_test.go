package redis_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/redis"
	"github.com/switchboard-io/switchboard/storetest"
)

// storeOpener opens Redis stores each under a prefix of its own, reopens
// them on the same prefix, and deletes their keys at the end of the test.
type storeOpener struct {
	c     goredis.UniversalClient
	n     atomic.Int64
	mu    sync.Mutex
	byPtr map[switchboard.Store]redis.StoreOptions
}

func newStoreOpener(c goredis.UniversalClient) *storeOpener {
	return &storeOpener{c: c, byPtr: make(map[switchboard.Store]redis.StoreOptions)}
}

func (o *storeOpener) openWith(tb testing.TB, opts redis.StoreOptions) switchboard.Store {
	s := redis.NewStore(o.c, &opts)
	o.mu.Lock()
	o.byPtr[s] = opts
	o.mu.Unlock()
	return s
}

func (o *storeOpener) open(tb testing.TB, r switchboard.Retention) switchboard.Store {
	prefix := fmt.Sprintf("sbtest:%s:%s:%d", runID, strings.ReplaceAll(tb.Name(), "/", ":"), o.n.Add(1))
	deleteKeysAtEnd(tb, o.c, prefix)
	return o.openWith(tb, redis.StoreOptions{Prefix: prefix, Retention: &r})
}

func (o *storeOpener) reopen(tb testing.TB, s switchboard.Store) switchboard.Store {
	tb.Helper()
	o.mu.Lock()
	opts, ok := o.byPtr[s]
	o.mu.Unlock()
	if !ok {
		tb.Fatal("reopen of a store this opener did not open")
	}
	if err := s.Close(); err != nil {
		tb.Fatalf("Close before reopening: %v", err)
	}
	s2 := o.openWith(tb, opts)
	tb.Cleanup(func() { _ = s2.Close() })
	return s2
}

// deleteKeysAtEnd removes every key of a store prefix after the test.
func deleteKeysAtEnd(tb testing.TB, c goredis.UniversalClient, prefix string) {
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var keys []string
		iter := c.Scan(ctx, 0, "{"+prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			c.Del(ctx, keys[:n]...)
			keys = keys[n:]
		}
	})
}

func TestStoreSuite(t *testing.T) {
	c := sharedRedis(t)
	o := newStoreOpener(c)
	storetest.Run(t, o.open, o.reopen)
}

// TestStoreKeys checks the key layout: every key of a room carries the
// room's hash tag, so a Redis Cluster keeps them on one shard.
func TestStoreKeys(t *testing.T) {
	c := sharedRedis(t)
	ctx := context.Background()
	prefix := "sbtest:" + runID + ":keys"
	deleteKeysAtEnd(t, c, prefix)
	s := redis.NewStore(c, &redis.StoreOptions{Prefix: prefix, Retention: &switchboard.Retention{}})
	defer s.Close()
	if _, err := s.Append(ctx, "news", []switchboard.StoredEvent{{Data: []byte("x")}, {Data: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor(ctx, "news", "alice", 1, nil); err != nil {
		t.Fatal(err)
	}
	tag := "{" + prefix + ":news}"
	for _, k := range []string{tag + ":log", tag + ":meta", tag + ":cursors", tag + ":tokens",
		"{" + prefix + ":sub:alice}:rooms", "{" + prefix + "}:rooms"} {
		if n, err := c.Exists(ctx, k).Result(); err != nil || n != 1 {
			t.Errorf("key %s: exists = %d, %v", k, n, err)
		}
	}
	ids, err := c.XRange(ctx, tag+":log", "-", "+").Result()
	if err != nil || len(ids) != 2 || ids[0].ID != "1-0" || ids[1].ID != "2-0" {
		t.Fatalf("stream entries = %+v, %v; want ids 1-0 and 2-0", ids, err)
	}
}

// TestStoreAppendScriptReloaded checks that Append works again after Redis
// forgot its scripts (SCRIPT FLUSH, as after a restart).
func TestStoreAppendScriptReloaded(t *testing.T) {
	c := sharedRedis(t)
	ctx := context.Background()
	prefix := "sbtest:" + runID + ":flush"
	deleteKeysAtEnd(t, c, prefix)
	s := redis.NewStore(c, &redis.StoreOptions{Prefix: prefix})
	defer s.Close()
	for i := 1; i <= 3; i++ {
		if i == 2 {
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		first, err := s.Append(ctx, "r", []switchboard.StoredEvent{{Data: []byte("x")}})
		if err != nil || first != uint64(i) {
			t.Fatalf("append %d = %d, %v", i, first, err)
		}
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCursor(ctx, "r", "a", 2, nil); err != nil {
		t.Fatal(err)
	}
}

// TestStoreWatch checks that an Append on one Store reaches Watch on
// another, and that Watch returns when its ctx ends or its store closes.
func TestStoreWatch(t *testing.T) {
	c := sharedRedis(t)
	prefix := "sbtest:" + runID + ":watch"
	deleteKeysAtEnd(t, c, prefix)
	a := redis.NewStore(c, &redis.StoreOptions{Prefix: prefix})
	b := redis.NewStore(c, &redis.StoreOptions{Prefix: prefix})
	defer a.Close()

	got := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	ended := make(chan error, 1)
	go func() { ended <- b.Watch(ctx, func(room string) { got <- room }) }()
	// The subscription is not confirmed to the caller: append until one
	// notification arrives.
	deadline := time.After(waitLimit)
	for done := false; !done; {
		if _, err := a.Append(context.Background(), "r1", []switchboard.StoredEvent{{Data: []byte("x")}}); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-got:
			if r != "r1" {
				t.Fatalf("Watch got %q, want r1", r)
			}
			done = true
		case <-time.After(50 * time.Millisecond):
		case <-deadline:
			t.Fatal("no notification")
		}
	}
	cancel()
	select {
	case err := <-ended:
		if err != nil {
			t.Fatalf("Watch after its ctx ended: %v", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Watch did not return when its ctx ended")
	}

	go func() { ended <- b.Watch(context.Background(), func(string) {}) }()
	time.Sleep(50 * time.Millisecond)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-ended:
		if !errors.Is(err, switchboard.ErrStoreClosed) {
			t.Fatalf("Watch after Close: %v, want ErrStoreClosed", err)
		}
	case <-time.After(waitLimit):
		t.Fatal("Watch did not return when the store closed")
	}
}

func benchOpen(b *testing.B) storetest.OpenFunc {
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr(), PoolSize: 300})
	if err := c.Ping(context.Background()).Err(); err != nil {
		b.Skipf("SKIPPING: no Redis at %s: %v", redisAddr(), err)
	}
	b.Cleanup(func() { _ = c.Close() })
	o := newStoreOpener(c)
	return o.open
}

func BenchmarkStoreAppend(b *testing.B) { storetest.BenchAppend(b, benchOpen(b)) }

func BenchmarkStoreRead(b *testing.B) { storetest.BenchRead(b, benchOpen(b)) }

func redisStoreOptions(prefix string, waitReplicas int) redis.StoreOptions {
	return redis.StoreOptions{Prefix: "sbtest:" + runID + ":" + prefix, WaitReplicas: waitReplicas, WaitTimeout: 50 * time.Millisecond}
}

// TestStoreWaitReplicas: with WaitReplicas and no replica, Append stores
// the event and reports ErrNotReplicated.
func TestStoreWaitReplicas(t *testing.T) {
	c := sharedRedis(t)
	opts := redisStoreOptions("wait", 1)
	deleteKeysAtEnd(t, c, opts.Prefix)
	s := redis.NewStore(c, &opts)
	defer s.Close()
	first, err := s.Append(context.Background(), "r", []switchboard.StoredEvent{{Data: []byte("x")}})
	if first != 1 || !errors.Is(err, redis.ErrNotReplicated) {
		t.Fatalf("Append = %d, %v; want 1 and ErrNotReplicated", first, err)
	}
	if info, ok, err := s.Info(context.Background(), "r"); !ok || err != nil || info.Last != 1 {
		t.Fatalf("Info = %+v, %v, %v; want the event stored", info, ok, err)
	}
}

// TestStoreLostTail simulates Redis losing confirmed writes (a restart from
// an older AOF, a failover to a lagging replica) by restoring a room's keys
// as they were three events earlier: the next Append gives the log a new
// epoch, since its offsets would reuse ones subscribers may hold. Another
// Store (node) that saw the old history does not change it a second time.
func TestStoreLostTail(t *testing.T) {
	c := sharedRedis(t)
	ctx := context.Background()
	opts := redisStoreOptions("lost", 0)
	deleteKeysAtEnd(t, c, opts.Prefix)
	a, b := redis.NewStore(c, &opts), redis.NewStore(c, &opts)
	defer a.Close()
	defer b.Close()
	one := []switchboard.StoredEvent{{Data: []byte("x")}}
	for range 3 {
		if _, err := a.Append(ctx, "r", one); err != nil {
			t.Fatal(err)
		}
	}
	keys := []string{"{" + opts.Prefix + ":r}:log", "{" + opts.Prefix + ":r}:meta"}
	var dumps []string
	for _, k := range keys {
		d, err := c.Dump(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		dumps = append(dumps, d)
	}
	for range 3 {
		if _, err := a.Append(ctx, "r", one); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Append(ctx, "r", one); err != nil {
			t.Fatal(err)
		}
	}
	before, _, _ := a.Info(ctx, "r")
	if before.Last != 9 {
		t.Fatalf("Info = %+v", before)
	}
	for i, k := range keys {
		if err := c.RestoreReplace(ctx, k, 0, dumps[i]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	first, err := a.Append(ctx, "r", one)
	if err != nil || first != 4 {
		t.Fatalf("Append after the loss = %d, %v; want 4", first, err)
	}
	after, _, _ := a.Info(ctx, "r")
	if after.Epoch == before.Epoch {
		t.Fatalf("epoch %q kept after the log lost offsets 4..9", after.Epoch)
	}
	if _, err := b.Append(ctx, "r", one); err != nil {
		t.Fatal(err)
	}
	if again, _, _ := b.Info(ctx, "r"); again.Epoch != after.Epoch || again.Last != 5 {
		t.Fatalf("Info after b's append = %+v, want epoch %q and last 5", again, after.Epoch)
	}
	// Appends go on in the new epoch without further changes.
	if _, err := a.Append(ctx, "r", one); err != nil {
		t.Fatal(err)
	}
	if e, _, _ := a.Info(ctx, "r"); e.Epoch != after.Epoch {
		t.Fatal("epoch changed again")
	}
}
