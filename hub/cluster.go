package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// clusterState is the hub's shared state in Redis when it is a cluster
// member (Config.Redis): presence and the publish dedupe memory.
//
// Presence. Each node counts its own connections per (room, identity) as
// on a single node (rooms); only the transitions of that local count
// between 0 and 1 reach Redis, in order per room, through a few worker
// goroutines (one per shard of rooms). Keys, for prefix P (every key of a
// room carries the hash tag {P:presence:<room>}, so the scripts stay atomic
// on a Redis Cluster):
//
//	{P:presence:<room>}:ids        hash: identity → number of nodes where it is present
//	{P:presence:<room>}:n:<node>   set: the identities present through node
//	{P:node:<node>}:rooms          set: the rooms node has presence in
//	P:nodes                        set: the node ids
//	P:node:<node>:alive            string with a TTL (Config.NodeTTL), renewed every TTL/3
//
// A node's join adds the identity to its set and increments the count in
// ids; the increment from 0 to 1 is the identity's first connection in the
// cluster, and that node announces switchboard:join to the room (through
// the adapter, so every node's members get it). A leave is the reverse;
// the count reaching 0 announces switchboard:leave. Both are one script,
// so two nodes never both announce.
//
// A node that stops renewing its alive key (killed, or cut from Redis for
// longer than the TTL) is dead: every survivor checks the node list on its
// heartbeat, and the first to remove a dead node from P:nodes (SREM
// answers 1 to one of them) removes the dead node's identities from every
// room it had, announcing the leaves of those that were present nowhere
// else. A node that finds its own alive key gone (it was presumed dead)
// writes its presence again.
//
// Dedupe. {P:dedupe:<room>}:<id> is set with SET NX to "p" (pending, with
// a TTL of twice the store timeout, at most the window) by the node that
// publishes, then to "o:<offset>" for the dedupe window. Another node
// seeing "p" polls until the answer is there; a failed publish deletes the
// key so that a retry publishes.
type clusterState struct {
	h      *Hub
	rdb    goredis.UniversalClient
	prefix string
	node   string
	ttl    time.Duration

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	shards []*presenceShard

	mu       sync.Mutex
	closed   bool
	lastErr  error
	beats    int // successful heartbeats
	resyncAt int // heartbeats left that write the presence again
}

// presenceOp is one ordered presence operation of a room.
type presenceOp struct {
	join     bool
	query    chan presenceAnswer // non-nil: read the identities instead
	room     string
	identity string
	sid      string // the joining connection, told nothing about itself
}

type presenceAnswer struct {
	ids []string
	err error
}

type presenceShard struct {
	mu    sync.Mutex
	queue []presenceOp
	wake  chan struct{}
}

const presenceShards = 8

var (
	joinScript = goredis.NewScript(`
if redis.call('SADD', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[1], ARGV[1], 1) == 1 then return 1 end
return 0`)
	leaveScript = goredis.NewScript(`
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0`)
	cleanupScript = goredis.NewScript(`
local left = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('HINCRBY', KEYS[1], id, -1) <= 0 then
    redis.call('HDEL', KEYS[1], id)
    table.insert(left, id)
  end
end
redis.call('DEL', KEYS[2])
return left`)
)

func newClusterState(h *Hub) *clusterState {
	var b [8]byte
	_, _ = rand.Read(b[:])
	c := &clusterState{
		h:      h,
		rdb:    h.cfg.Redis,
		prefix: h.cfg.RedisPrefix,
		node:   hex.EncodeToString(b[:]),
		ttl:    h.cfg.NodeTTL,
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for range presenceShards {
		s := &presenceShard{wake: make(chan struct{}, 1)}
		c.shards = append(c.shards, s)
		c.wg.Add(1)
		go c.runShard(s)
	}
	c.wg.Add(1)
	go c.heartbeatLoop()
	return c
}

func (c *clusterState) roomTag(room string) string { return "{" + c.prefix + ":presence:" + room + "}" }
func (c *clusterState) idsKey(room string) string  { return c.roomTag(room) + ":ids" }
func (c *clusterState) nodeSetKey(room, node string) string {
	return c.roomTag(room) + ":n:" + node
}
func (c *clusterState) nodeRoomsKey(node string) string {
	return "{" + c.prefix + ":node:" + node + "}:rooms"
}
func (c *clusterState) nodesKey() string            { return c.prefix + ":nodes" }
func (c *clusterState) aliveKey(node string) string { return c.prefix + ":node:" + node + ":alive" }
func (c *clusterState) dedupeKey(room, id string) string {
	return "{" + c.prefix + ":dedupe:" + room + "}:" + id
}

// Err reports the last failed exchange with Redis of the presence
// machinery, nil once one succeeded since.
func (c *clusterState) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

func (c *clusterState) setErr(err error) {
	c.mu.Lock()
	c.lastErr = err
	c.mu.Unlock()
}

func (c *clusterState) shard(room string) *presenceShard {
	f := fnv.New32a()
	f.Write([]byte(room))
	return c.shards[f.Sum32()%presenceShards]
}

func (c *clusterState) enqueue(op presenceOp) {
	s := c.shard(op.room)
	s.mu.Lock()
	s.queue = append(s.queue, op)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// join and leave record a transition of this node's count of an identity's
// connections in a room (0 → 1 and 1 → 0).
func (c *clusterState) join(room, identity, sid string) {
	c.enqueue(presenceOp{join: true, room: room, identity: identity, sid: sid})
}

func (c *clusterState) leave(room, identity string) {
	c.enqueue(presenceOp{room: room, identity: identity})
}

// identities returns the identities present in room anywhere in the
// cluster, after this node's earlier presence operations on it.
func (c *clusterState) identities(ctx context.Context, room string) ([]string, error) {
	ch := make(chan presenceAnswer, 1)
	c.enqueue(presenceOp{room: room, query: ch})
	select {
	case a := <-ch:
		return a.ids, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *clusterState) runShard(s *presenceShard) {
	defer c.wg.Done()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-c.ctx.Done():
				return
			}
		}
		op := s.queue[0]
		s.queue[0] = presenceOp{}
		s.queue = s.queue[1:]
		s.mu.Unlock()
		c.apply(op)
	}
}

// apply runs one operation, retrying a failed exchange with Redis with a
// backoff (100 ms to 5 s) until it succeeds or the hub closes: order
// matters more than latency here.
func (c *clusterState) apply(op presenceOp) {
	backoff := 100 * time.Millisecond
	for {
		err := c.try(op)
		if err == nil {
			c.setErr(nil)
			return
		}
		if c.ctx.Err() != nil {
			if op.query != nil {
				op.query <- presenceAnswer{err: err}
			}
			return
		}
		if op.query != nil {
			op.query <- presenceAnswer{err: err}
			return
		}
		c.setErr(err)
		c.h.log.Warn("presence: Redis operation failed; retrying", "room", op.room, "err", err, "retry_in", backoff.String())
		select {
		case <-time.After(backoff):
		case <-c.ctx.Done():
			return
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (c *clusterState) try(op presenceOp) error {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if op.query != nil {
		ids, err := c.rdb.HKeys(ctx, c.idsKey(op.room)).Result()
		if err != nil {
			return err
		}
		slices.Sort(ids)
		op.query <- presenceAnswer{ids: ids}
		return nil
	}
	keys := []string{c.idsKey(op.room), c.nodeSetKey(op.room, c.node)}
	if op.join {
		if err := c.rdb.SAdd(ctx, c.nodeRoomsKey(c.node), op.room).Err(); err != nil {
			return err
		}
		n, err := joinScript.Run(ctx, c.rdb, keys, op.identity).Int()
		if err != nil {
			return err
		}
		if n == 1 {
			c.h.rooms.announce(PresenceJoinEvent, op.room, op.identity, op.sid)
		}
		return nil
	}
	n, err := leaveScript.Run(ctx, c.rdb, keys, op.identity).Int()
	if err != nil {
		return err
	}
	if n == 1 {
		c.h.rooms.announce(PresenceLeaveEvent, op.room, op.identity, "")
	}
	return nil
}

// heartbeatLoop renews this node's alive key and reaps dead nodes every
// TTL/3.
func (c *clusterState) heartbeatLoop() {
	defer c.wg.Done()
	every := max(c.ttl/3, 10*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c.heartbeat()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return
		}
	}
}

func (c *clusterState) heartbeat() {
	ctx, cancel := context.WithTimeout(c.ctx, max(c.ttl, time.Second))
	defer cancel()
	// SET ... GET answers nil when the key was missing: this node was
	// presumed dead (or Redis lost its data), so write its presence again
	// (twice, in case a survivor was reaping it meanwhile).
	err := c.rdb.SetArgs(ctx, c.aliveKey(c.node), "1", goredis.SetArgs{TTL: c.ttl, Get: true}).Err()
	missing := errors.Is(err, goredis.Nil)
	if err != nil && !missing {
		c.setErr(err)
		c.h.log.Warn("cluster heartbeat failed", "err", err)
		return
	}
	if err := c.rdb.SAdd(ctx, c.nodesKey(), c.node).Err(); err != nil {
		c.setErr(err)
		return
	}
	c.setErr(nil)
	c.mu.Lock()
	first := c.beats == 0
	c.beats++
	if missing && !first {
		c.resyncAt = 2
	}
	resync := c.resyncAt > 0
	if resync {
		c.resyncAt--
	}
	c.mu.Unlock()
	if missing && !first {
		c.h.log.Warn("this node's cluster heartbeat had expired; writing its presence again", "node", c.node)
	}
	if resync {
		for _, p := range c.h.rooms.localPresence() {
			c.join(p.room, p.identity, "")
		}
	}
	c.reap(ctx)
}

// reap removes the presence of nodes whose alive key expired.
func (c *clusterState) reap(ctx context.Context) {
	nodes, err := c.rdb.SMembers(ctx, c.nodesKey()).Result()
	if err != nil {
		c.setErr(err)
		return
	}
	for _, n := range nodes {
		if n == c.node {
			continue
		}
		alive, err := c.rdb.Exists(ctx, c.aliveKey(n)).Result()
		if err != nil || alive == 1 {
			continue
		}
		// One survivor wins the removal from the node list.
		if won, err := c.rdb.SRem(ctx, c.nodesKey(), n).Result(); err != nil || won != 1 {
			continue
		}
		c.h.log.Info("cluster node gone: removing its presence", "node", n)
		c.cleanupNode(ctx, n)
	}
}

func (c *clusterState) cleanupNode(ctx context.Context, node string) {
	rooms, err := c.rdb.SMembers(ctx, c.nodeRoomsKey(node)).Result()
	if err != nil {
		c.h.log.Warn("presence cleanup failed", "node", node, "err", err)
		return
	}
	for _, room := range rooms {
		left, err := cleanupScript.Run(ctx, c.rdb, []string{c.idsKey(room), c.nodeSetKey(room, node)}).StringSlice()
		if err != nil {
			c.h.log.Warn("presence cleanup failed", "node", node, "room", room, "err", err)
			_ = c.rdb.SAdd(ctx, c.nodesKey(), node).Err() // try again later
			return
		}
		for _, id := range left {
			c.h.rooms.announce(PresenceLeaveEvent, room, id, "")
		}
	}
	c.rdb.Del(ctx, c.nodeRoomsKey(node))
}

// close stops the workers after they wrote the operations queued so far
// (until ctx ends), and keeps this node's alive key for linger (the
// recovery window: its clients may resume on another node, which then
// counts them before this node's presence is reaped).
func (c *clusterState) close(ctx context.Context, linger time.Duration) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	for _, s := range c.shards {
		for {
			s.mu.Lock()
			n := len(s.queue)
			s.mu.Unlock()
			if n == 0 || ctx.Err() != nil {
				break
			}
			select {
			case <-time.After(5 * time.Millisecond):
			case <-ctx.Done():
			}
		}
	}
	c.cancel()
	c.wg.Wait()
	ttl := max(c.ttl, linger)
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = c.rdb.Set(sctx, c.aliveKey(c.node), "1", ttl).Err()
}

// dedupe is dedupe.do across the cluster.
func (c *clusterState) dedupe(ctx context.Context, room, id string, window, pending time.Duration, publish func() (publishResult, error)) (publishResult, bool, error) {
	key := c.dedupeKey(room, id)
	pending = min(pending, window)
	for {
		won, err := c.rdb.SetNX(ctx, key, "p", pending).Result()
		if err != nil {
			return publishResult{}, false, err
		}
		if won {
			res, err := publish()
			if err != nil {
				dctx, cancel := context.WithTimeout(context.Background(), time.Second)
				c.rdb.Del(dctx, key)
				cancel()
				return res, false, err
			}
			if err := c.rdb.Set(ctx, key, "o:"+strconv.FormatUint(res.Offset, 10), window).Err(); err != nil {
				c.h.log.Warn("dedupe: cannot record a publish id", "room", room, "err", err)
			}
			return res, false, nil
		}
		for {
			v, err := c.rdb.Get(ctx, key).Result()
			if errors.Is(err, goredis.Nil) {
				break // the first publish failed or expired: try again
			}
			if err != nil {
				return publishResult{}, true, err
			}
			if s, ok := strings.CutPrefix(v, "o:"); ok {
				off, _ := strconv.ParseUint(s, 10, 64)
				return publishResult{Offset: off}, true, nil
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-ctx.Done():
				return publishResult{}, true, ctx.Err()
			}
		}
	}
}
