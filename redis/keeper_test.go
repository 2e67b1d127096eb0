package redis_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/redis"
)

// countHook counts the commands a client sends, pipelined ones included.
type countHook struct{ cmds, pipes atomic.Int64 }

func (h *countHook) DialHook(next goredis.DialHook) goredis.DialHook { return next }
func (h *countHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		h.cmds.Add(1)
		return next(ctx, cmd)
	}
}
func (h *countHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []goredis.Cmder) error {
		h.cmds.Add(int64(len(cmds)))
		h.pipes.Add(1)
		return next(ctx, cmds)
	}
}

// TestSessionKeeperRefreshCost keeps 1,000 sessions with a short refresh
// interval and measures what refreshing them costs in Redis commands and
// round trips, then checks that forgetting deletes them and that the
// sessions are readable as the Node adapter writes them.
func TestSessionKeeperRefreshCost(t *testing.T) {
	shared := sharedRedis(t)
	c := goredis.NewClient(&goredis.Options{Addr: redisAddr()})
	defer c.Close()
	hook := &countHook{}
	c.AddHook(hook)
	opts := isolated(t, shared)
	const refresh = 200 * time.Millisecond
	opts.SessionRefresh = refresh
	cl := redis.New(c, opts)
	defer cl.Close()
	srv := switchboard.NewServer(&switchboard.Options{Adapter: cl.Adapter, ConnectionStateRecovery: &switchboard.RecoveryOptions{}})
	defer srv.Close(context.Background())
	k := srv.Of("/").Adapter().(switchboard.SessionKeeper)

	const n = 1000
	for i := range n {
		k.KeepSession(&switchboard.SessionState{SID: fmt.Sprintf("sid%04d", i), PID: fmt.Sprintf("pid%04d", i),
			Rooms: []string{fmt.Sprintf("sid%04d", i), "lobby"}, Data: map[string]any{"i": i}})
	}
	deadline := time.Now().Add(waitLimit)
	for len(sessionKeys(t, shared, opts)) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d sessions kept", len(sessionKeys(t, shared, opts)), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := storedSession(t, shared, opts.SessionKeyPrefix+"pid0007")
	if st.SID != "sid0007" || len(st.Rooms) != 2 || st.Rooms[1] != "lobby" {
		t.Errorf("kept session = %+v", st)
	}
	if pttl := shared.PTTL(context.Background(), opts.SessionKeyPrefix+"pid0007").Val(); pttl <= 2*time.Minute || pttl > 2*time.Minute+refresh {
		t.Errorf("PTTL %v, want in (window, window+refresh]", pttl)
	}

	sets0, _, pipes0 := redis.KeeperStats(cl)
	cmds0, rtt0 := hook.cmds.Load(), hook.pipes.Load()
	const span = 2 * time.Second
	time.Sleep(span)
	sets1, _, pipes1 := redis.KeeperStats(cl)
	cmds1, rtt1 := hook.cmds.Load(), hook.pipes.Load()
	sets := float64(sets1-sets0) / span.Seconds()
	want := float64(n) / (refresh.Seconds() * 0.9) // refreshed a tenth early
	if sets < want*0.6 || sets > want*1.5 {
		t.Errorf("%.0f SETs/s for %d sessions refreshed every %v, want about %.0f", sets, n, refresh, want)
	}
	t.Logf("%d sessions refreshed every %v: %.0f SETs/s in %.1f pipelines/s (all commands %.0f/s, round trips %.1f/s); scaled to the default 40 s refresh: %.1f SETs/s per 1,000 sockets",
		n, refresh, sets, float64(pipes1-pipes0)/span.Seconds(), float64(cmds1-cmds0)/span.Seconds(), float64(rtt1-rtt0)/span.Seconds(),
		sets*refresh.Seconds()/40*1000/n)

	for i := range n {
		k.ForgetSession(fmt.Sprintf("pid%04d", i))
	}
	deadline = time.Now().Add(waitLimit)
	for len(sessionKeys(t, shared, opts)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions left after ForgetSession", len(sessionKeys(t, shared, opts)))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSessionKeeperLatePersist: a client that came back on another node
// before its first node saw it leave must not find its old session again
// later: the first node's late PersistSession does not resurrect a kept
// session that a restore consumed.
func TestSessionKeeperLatePersist(t *testing.T) {
	c := sharedRedis(t)
	opts := isolated(t, c)
	a := startGoNode(t, c, opts, true)
	b := startGoNode(t, c, opts, true)
	ka := a.srv.Of("/").Adapter()
	st := &switchboard.SessionState{SID: "s1", PID: "p1", Rooms: []string{"s1", "r"}}
	ka.(switchboard.SessionKeeper).KeepSession(st)
	key := opts.SessionKeyPrefix + "p1"
	deadline := time.Now().Add(waitLimit)
	for c.Exists(context.Background(), key).Val() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("session not kept")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// An offset that exists: a broadcast's stream id.
	if err := a.srv.Emit("m", "x"); err != nil {
		t.Fatal(err)
	}
	ids, err := c.XRevRangeN(context.Background(), opts.StreamName, "+", "-", 1).Result()
	if err != nil || len(ids) != 1 {
		t.Fatalf("stream: %v %v", ids, err)
	}
	got, _, err := b.srv.Of("/").Adapter().RestoreSession(context.Background(), "p1", ids[0].ID)
	if err != nil || got.SID != "s1" || len(got.Rooms) != 2 {
		t.Fatalf("restore on B = %+v, %v", got, err)
	}
	if err := ka.PersistSession(context.Background(), st); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(context.Background(), key).Val(); n != 0 {
		t.Error("node A's late PersistSession resurrected a session restored on node B")
	}
	// Without a kept copy, PersistSession saves as before.
	st2 := &switchboard.SessionState{SID: "s2", PID: "p2", Rooms: []string{"s2"}}
	if err := ka.PersistSession(context.Background(), st2); err != nil {
		t.Fatal(err)
	}
	if pttl := c.PTTL(context.Background(), opts.SessionKeyPrefix+"p2").Val(); pttl <= 0 || pttl > 2*time.Minute {
		t.Errorf("persisted session PTTL %v, want the window", pttl)
	}
}
