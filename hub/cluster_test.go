package hub

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard-io/switchboard/memory"
)

// sharedRedis returns a client of the shared Redis (127.0.0.1:6379, or
// SWITCHBOARD_REDIS_ADDR) and a key prefix of the test's own, whose keys
// are deleted at cleanup. Without Redis the test is skipped loudly, and
// fails when SWITCHBOARD_REQUIRE_ALL=1.
func sharedRedis(t *testing.T) (*goredis.Client, string) {
	t.Helper()
	addr := os.Getenv("SWITCHBOARD_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	rdb := goredis.NewClient(&goredis.Options{Addr: addr})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		rdb.Close()
		msg := fmt.Sprintf("SKIPPING: no Redis at %s: %v (SWITCHBOARD_REQUIRE_ALL=1 makes this a failure)", addr, err)
		fmt.Fprintln(os.Stderr, "\n*** "+msg+" ***")
		if os.Getenv("SWITCHBOARD_REQUIRE_ALL") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	prefix := fmt.Sprintf("hubtest-%d-%d", os.Getpid(), time.Now().UnixNano())
	t.Cleanup(func() {
		ctx := context.Background()
		for _, pat := range []string{prefix + ":*", "{" + prefix + ":*"} {
			iter := rdb.Scan(ctx, 0, pat, 100).Iterator()
			for iter.Next(ctx) {
				rdb.Del(ctx, iter.Val())
			}
		}
		rdb.Close()
	})
	return rdb, prefix
}

// TestClusterDedupeConcurrent: two hubs sharing Redis and a store, the
// same publish id sent to both at once, many times: one publish, one
// offset.
func TestClusterDedupeConcurrent(t *testing.T) {
	rdb, prefix := sharedRedis(t)
	store := memory.NewStore(nil)
	durable, _ := ParsePatterns("durable-*")
	var hubs []*Hub
	for range 2 {
		cfg := Config{RedisPrefix: prefix, NodeTTL: time.Second, DurableRooms: durable}
		cfg.Redis = rdb
		cfg.Server.Store = store
		h, err := New(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h.Close(ctx)
		})
		hubs = append(hubs, h)
	}
	t.Cleanup(func() { store.Close() })
	var published atomic.Int32
	for round := range 20 {
		id := fmt.Sprintf("id-%d", round)
		answers := make([]answer, 8)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = hubs[i%2].doPublish(nil, "backend", publishRequest{Room: "durable-x", Event: "e", Data: round, ID: &id})
			}()
		}
		wg.Wait()
		fresh := 0
		for _, a := range answers {
			if a["ok"] != true {
				t.Fatalf("round %d: %v", round, a)
			}
			if a["offset"] != answers[0]["offset"] {
				t.Errorf("round %d: offsets differ: %v", round, answers)
			}
			if a["duplicate"] != true {
				fresh++
			}
		}
		if fresh != 1 {
			t.Errorf("round %d: %d publishes were not duplicates, want 1: %v", round, fresh, answers)
		}
		published.Add(1)
	}
	info, _, err := store.Info(context.Background(), durableKey("durable-x"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Last != uint64(published.Load()) {
		t.Errorf("the log has %d events, want %d", info.Last, published.Load())
	}
}
