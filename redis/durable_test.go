package redis_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/client"
	"github.com/switchboard-io/switchboard/redis"
)

// authIdentity takes the socket's identity from its auth payload {id}.
func authIdentity(s *switchboard.Socket) string {
	var a struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(s.Handshake().Auth, &a)
	return a.ID
}

// durableNode is a node of a cluster sharing a Redis adapter and a Redis
// store: its own Cluster and its own Store on the same Redis and prefixes,
// as separate processes would have.
type durableNode struct {
	srv   *switchboard.Server
	store *redis.Store
	url   string
}

// startDurableNode starts a node whose "sub" event subscribes the socket
// to a durable room.
// A nil logger is slog.Default().
func startDurableNode(t *testing.T, c goredis.UniversalClient, aopts *redis.Options, sopts *redis.StoreOptions, durable switchboard.DurableOptions, logger *slog.Logger) *durableNode {
	t.Helper()
	store := redis.NewStore(c, sopts)
	cl := redis.New(c, aopts)
	srv := switchboard.NewServer(&switchboard.Options{
		Adapter:  cl.Adapter,
		Store:    store,
		Identity: authIdentity,
		Durable:  durable,
		Logger:   logger,
	})
	srv.OnConnection(func(s *switchboard.Socket) {
		s.On("sub", func(room string, ack switchboard.AckFunc) {
			if err := s.JoinDurable(context.Background(), room); err != nil {
				ack(err.Error())
				return
			}
			ack("ok")
		})
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Close(ctx); err != nil {
			t.Errorf("server close: %v", err)
		}
		hs.Close()
		_ = cl.Close()
		_ = store.Close()
	})
	return &durableNode{srv: srv, store: store, url: hs.URL}
}

// durableSub is a durable subscriber: a Go client that records the
// deliveries of event "m" and acknowledges them while ackUpTo allows.
type durableSub struct {
	t    *testing.T
	m    *client.Manager
	sock *client.Socket

	mu      sync.Mutex
	offsets []uint64
	values  []int
	ackUpTo uint64 // acknowledge offsets <= this (0: all)
	arrived chan struct{}
}

func connectDurableSub(t *testing.T, url, identity, room string, ackUpTo uint64) *durableSub {
	t.Helper()
	d := &durableSub{t: t, ackUpTo: ackUpTo, arrived: make(chan struct{}, 1)}
	d.m = client.NewManager(url, &client.Options{
		Transports:          []string{"websocket"},
		Auth:                map[string]string{"id": identity},
		DisableReconnection: true,
	})
	d.sock = d.m.Socket("/")
	d.sock.On("m", func(v int, meta switchboard.DeliveryMeta, ack client.AckFunc) {
		d.mu.Lock()
		d.offsets = append(d.offsets, meta.Offset)
		d.values = append(d.values, v)
		ok := d.ackUpTo == 0 || meta.Offset <= d.ackUpTo
		d.mu.Unlock()
		if ok {
			ack()
		}
		select {
		case d.arrived <- struct{}{}:
		default:
		}
	})
	connected := make(chan struct{}, 1)
	d.sock.On("connect", func() {
		select {
		case connected <- struct{}{}:
		default:
		}
	})
	d.sock.Connect()
	select {
	case <-connected:
	case <-time.After(waitLimit):
		t.Fatalf("%s: connect timed out", identity)
	}
	t.Cleanup(func() { _ = d.m.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	res, err := d.sock.EmitWithAck(ctx, "sub", room)
	var s string
	if err != nil || res.Decode(0, &s) != nil || s != "ok" {
		t.Fatalf("%s: sub %s: %v %v", identity, room, res, err)
	}
	return d
}

// waitCount waits until n deliveries arrived and returns them.
func (d *durableSub) waitCount(n int) ([]uint64, []int) {
	d.t.Helper()
	deadline := time.After(waitLimit)
	for {
		d.mu.Lock()
		got := len(d.offsets)
		offs, vals := append([]uint64(nil), d.offsets...), append([]int(nil), d.values...)
		d.mu.Unlock()
		if got >= n {
			return offs, vals
		}
		select {
		case <-d.arrived:
		case <-time.After(100 * time.Millisecond):
		case <-deadline:
			d.t.Fatalf("got %d deliveries, want %d", got, n)
		}
	}
}

func (d *durableSub) close() { _ = d.m.Close() }

// waitStoreCursor waits until subscriber's cursor in the store reaches want.
func waitStoreCursor(t *testing.T, s switchboard.Store, key, sub string, want uint64) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		c, _, err := s.Cursor(context.Background(), key, sub)
		if err == nil && c.Cursor == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("cursor of %s in %s = %+v (%v), want %d", sub, key, c, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publishRange(t *testing.T, n *durableNode, room string, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		if _, err := n.srv.Of("/").Publish(context.Background(), room, "m", i); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
}

// TestDurableAcrossNodes runs two nodes sharing the Redis adapter and the
// Redis store: a durable subscriber on node B gets, in order, what node A
// publishes (woken by the store's watcher), and a subscriber that leaves
// node A resumes on node B from its cursor.
func TestDurableAcrossNodes(t *testing.T) {
	c := sharedRedis(t)
	aopts := isolated(t, c)
	prefix := "sbtest:" + runID + ":durable"
	deleteKeysAtEnd(t, c, prefix)
	sopts := &redis.StoreOptions{Prefix: prefix}
	nodeA := startDurableNode(t, c, aopts, sopts, switchboard.DurableOptions{}, nil)
	nodeB := startDurableNode(t, c, aopts, sopts, switchboard.DurableOptions{}, nil)

	// Published on A, delivered on B, in order.
	alice := connectDurableSub(t, nodeB.url, "alice", "news", 0)
	const n = 300
	publishRange(t, nodeA, "news", 0, n)
	offs, vals := alice.waitCount(n)
	for i := range n {
		if offs[i] != uint64(i+1) || vals[i] != i {
			t.Fatalf("delivery %d on node B = offset %d value %d, want offset %d value %d", i, offs[i], vals[i], i+1, i)
		}
	}
	waitStoreCursor(t, nodeA.store, "/#news", "alice", n)

	// Bob reads on A, acknowledges the first 100 of 150 and leaves.
	bob := connectDurableSub(t, nodeA.url, "bob", "orders", 100)
	publishRange(t, nodeB, "orders", 0, 150)
	bob.waitCount(150)
	waitStoreCursor(t, nodeB.store, "/#orders", "bob", 100)
	bob.close()
	// More events while he is away, from both nodes.
	publishRange(t, nodeA, "orders", 150, 200)
	publishRange(t, nodeB, "orders", 200, 250)
	// On B he gets everything after his cursor, in order, then live ones.
	bob2 := connectDurableSub(t, nodeB.url, "bob", "orders", 0)
	offs, vals = bob2.waitCount(150)
	for i := range 150 {
		if offs[i] != uint64(101+i) || vals[i] != 100+i {
			t.Fatalf("resumed delivery %d = offset %d value %d, want offset %d value %d", i, offs[i], vals[i], 101+i, 100+i)
		}
	}
	publishRange(t, nodeA, "orders", 250, 260)
	offs, _ = bob2.waitCount(160)
	if offs[159] != 260 {
		t.Fatalf("live delivery after resuming: offset %d, want 260", offs[159])
	}
	waitStoreCursor(t, nodeA.store, "/#orders", "bob", 260)
	alice.mu.Lock()
	got := len(alice.offsets)
	alice.mu.Unlock()
	if got != n {
		t.Fatalf("alice got %d deliveries, want %d (nothing of another room)", got, n)
	}
}
