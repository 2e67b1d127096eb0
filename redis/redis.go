// Package redis is a switchboard.Adapter for clusters of nodes sharing a
// Redis server, speaking the wire format of the Node package
// @socket.io/redis-streams-adapter 0.3: Go nodes and Node socket.io 4.8 nodes
// can be members of one cluster.
//
// Broadcasts, socketsJoin/Leave and disconnectSockets are entries of a Redis
// stream (default "socket.io") that every node reads with one blocking XREAD
// loop; broadcasts with acknowledgements, fetchSockets and serverSideEmit are
// short-lived pub/sub requests on "socket.io#<nsp>#" answered on the
// requester's channel "socket.io#<nsp>#<uid>#". With connection-state
// recovery on, the stream entry id is the offset of a broadcast, and the
// session of a socket that dropped is kept in Redis under
// "sio:session:<pid>", so a client can resume on any node.
//
// Use it with
//
//	c := redis.New(client, nil)
//	defer c.Close()
//	srv := switchboard.NewServer(&switchboard.Options{Adapter: c.Adapter})
//
// or, when nothing needs the Cluster handle, Options.Adapter =
// redis.NewAdapter(client, nil).
//
// NewStore returns a switchboard.Store for durable rooms on the same Redis
// (one stream per room, cursors in Redis), shared by every node, which also
// wakes the durable deliveries of every node on each publish:
//
//	store := redis.NewStore(client, nil)
//	defer store.Close()
//	srv := switchboard.NewServer(&switchboard.Options{Adapter: c.Adapter, Store: store, Identity: …})
//
// Options.Sharded gives each namespace its own stream for Go-only clusters.
// See docs/cluster.md.
package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/switchboard-io/switchboard"
)

// Options configures a Cluster. A nil *Options or zero fields give the
// defaults of @socket.io/redis-streams-adapter, stated on each field; every
// node of a cluster must use the same StreamName, StreamCount, Sharded,
// ChannelPrefix and SessionKeyPrefix.
type Options struct {
	// StreamName is the Redis stream of persistent messages. Default
	// "socket.io".
	StreamName string
	// StreamCount spreads namespaces over that many streams,
	// "<StreamName>-<i>", with the Node adapter's hash. Default 1 (one
	// stream named StreamName).
	StreamCount int
	// Sharded gives each namespace a stream of its own,
	// "<StreamName>#<namespace>", read only by the nodes that have that
	// namespace, from when its adapter is created until it is closed
	// (StreamCount is then ignored). A node then reads none of the
	// traffic of namespaces it does not serve, each namespace has its own
	// reader (connection and goroutine), MaxLen applies per namespace and
	// a recovering session scans only its namespace's entries. Node
	// socket.io servers cannot join such a cluster (the Node adapter only
	// knows the shared streams): Go-only clusters. Default false: the
	// compatible layout. See docs/cluster.md, "Sharded mode".
	Sharded bool
	// ChannelPrefix starts the pub/sub channel names. Default "socket.io".
	ChannelPrefix string
	// MaxLen is the approximate length the stream is trimmed to on every
	// XADD (MAXLEN ~). It bounds how far back recovery can go. Default
	// 10,000.
	MaxLen int64
	// ReadCount is the most entries one XREAD returns. Default 100.
	ReadCount int64
	// BlockTime is how long one XREAD blocks. Default 5 s.
	BlockTime time.Duration
	// SessionKeyPrefix starts the keys of recovery sessions. Default
	// "sio:session:".
	SessionKeyPrefix string
	// RequestTimeout bounds the wait for the other nodes' answers to
	// fetchSockets and serverSideEmit with acknowledgement (a broadcast
	// timeout or a ctx deadline, when shorter, wins). Default 5 s.
	RequestTimeout time.Duration
	// SubscribeTimeout bounds how long creating a namespace's adapter
	// waits for Redis to confirm its pub/sub subscription, so that the
	// node is counted by the other nodes from the start. Default 2 s.
	SubscribeTimeout time.Duration
	// SessionRefresh is how often the session of each connected socket
	// (with connection-state recovery on) is saved again in Redis, with PX
	// = MaxDisconnectionDuration + SessionRefresh, so that the sessions of
	// a node that dies without disconnecting its sockets stay restorable
	// for at least the recovery window. Each connected socket costs one SET
	// per SessionRefresh, pipelined. Default a third of
	// MaxDisconnectionDuration (40 s for the default 2 minutes).
	SessionRefresh time.Duration
	// Logger receives the adapter's logs. Default slog.Default().
	Logger *slog.Logger
}

func (o *Options) withDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.StreamName == "" {
		out.StreamName = "socket.io"
	}
	if out.StreamCount <= 0 {
		out.StreamCount = 1
	}
	if out.ChannelPrefix == "" {
		out.ChannelPrefix = "socket.io"
	}
	if out.MaxLen <= 0 {
		out.MaxLen = 10_000
	}
	if out.ReadCount <= 0 {
		out.ReadCount = 100
	}
	if out.BlockTime <= 0 {
		out.BlockTime = 5 * time.Second
	}
	if out.SessionKeyPrefix == "" {
		out.SessionKeyPrefix = "sio:session:"
	}
	if out.RequestTimeout <= 0 {
		out.RequestTimeout = 5 * time.Second
	}
	if out.SubscribeTimeout <= 0 {
		out.SubscribeTimeout = 2 * time.Second
	}
	if out.Logger == nil {
		out.Logger = slog.Default()
	}
	return out
}

// ErrClosed is returned by operations on a closed Cluster.
var ErrClosed = errors.New("redis: cluster adapter closed")

// Cluster is one node's membership of a Redis cluster: the stream readers
// and the pub/sub subscription shared by the adapters of its namespaces.
// Its background work starts with the first adapter and stops when the
// last adapter is closed (Server.Close closes them) or when Close is
// called. Methods are safe for concurrent use.
//
// When Redis is unreachable the adapters keep working for the local node,
// operations that need Redis return errors, and the background loops retry
// with a backoff from 100 ms to 5 s; Err reports the last failure and
// WaitReady waits for Redis. After Redis comes back the stream readers
// resume after the last entry they delivered.
type Cluster struct {
	client goredis.UniversalClient
	opts   Options

	mu       sync.Mutex
	adapters map[string]*adapter // by namespace name
	run      *runState           // nil when stopped
	closed   bool

	errMu sync.Mutex
	errs  map[string]error // by background loop ("pubsub", "stream <name>", "sessions")

	keep *keeper // sessions of connected sockets, saved ahead of time
}

// runState is the background work of a running Cluster.
type runState struct {
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	readers []goredis.UniversalClient // dedicated XREAD connections, closed on stop
	shards  map[string]*shardReader   // Sharded: the reader of each namespace's stream
	ps      *goredis.PubSub

	subMu   sync.Mutex
	subWait map[string][]chan struct{} // channel → waiting for its confirmation

	work *workQueue // server-side event handlers, in order
}

// shardReader reads the stream of one namespace in sharded mode.
type shardReader struct {
	stream string
	cancel context.CancelFunc
	rc     goredis.UniversalClient
	owned  bool // rc is a dedicated connection, closed to interrupt an XREAD
	done   chan struct{}
}

// New returns a Cluster using client (a *goredis.Client, *goredis.ClusterClient
// or failover client) for publishing. It does no I/O: nothing is checked
// until the first adapter is created, and a Redis that is down then is
// retried in the background (see Cluster).
func New(client goredis.UniversalClient, opts *Options) *Cluster {
	c := &Cluster{client: client, opts: opts.withDefaults(), adapters: make(map[string]*adapter)}
	c.keep = newKeeper(c)
	return c
}

// NewAdapter returns an adapter factory for switchboard.Options.Adapter
// backed by a new Cluster. Its background work ends when the server closes
// its adapters; use New to keep a handle for Err, WaitReady and Close.
func NewAdapter(client goredis.UniversalClient, opts *Options) func(*switchboard.Namespace) switchboard.Adapter {
	return New(client, opts).Adapter
}

// Adapter returns the adapter of ns; it fits switchboard.Options.Adapter.
// It panics if two live adapters are created for one namespace name (two
// servers must not share a Cluster).
func (c *Cluster) Adapter(ns *switchboard.Namespace) switchboard.Adapter {
	a := newAdapter(c, ns)
	c.mu.Lock()
	if _, dup := c.adapters[ns.Name()]; dup {
		c.mu.Unlock()
		panic(fmt.Sprintf("redis: a second adapter for namespace %q on one Cluster", ns.Name()))
	}
	if c.closed {
		c.mu.Unlock()
		a.closed = true
		return a
	}
	c.adapters[ns.Name()] = a
	if c.run == nil {
		c.start()
	}
	run := c.run
	if c.opts.Sharded {
		c.startShard(run, a.nsp, a.stream)
	}
	c.mu.Unlock()
	c.subscribe(run, a.public, a.private)
	return a
}

// Err returns the error of a background loop (stream reader or pub/sub)
// that could not talk to Redis, or nil when every loop's last exchange with
// Redis succeeded. It suits a readiness probe.
func (c *Cluster) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	for _, err := range c.errs {
		return err
	}
	return nil
}

// setErr records the state of one loop.
func (c *Cluster) setErr(loop string, err error) {
	c.errMu.Lock()
	before := len(c.errs)
	if err == nil {
		delete(c.errs, loop)
	} else {
		if c.errs == nil {
			c.errs = make(map[string]error)
		}
		c.errs[loop] = err
	}
	after := len(c.errs)
	c.errMu.Unlock()
	switch {
	case before == 0 && after > 0:
		c.opts.Logger.Warn("redis: Redis unavailable; retrying", "err", err)
	case before > 0 && after == 0:
		c.opts.Logger.Info("redis: Redis available again")
	}
}

// WaitReady pings Redis until it answers or ctx ends, backing off from
// 100 ms to 5 s between tries. It returns nil, or an error wrapping the
// last failure and ctx's error.
func (c *Cluster) WaitReady(ctx context.Context) error {
	var b backoff
	for {
		err := c.client.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		if !b.wait(ctx) {
			return fmt.Errorf("redis: Redis unreachable: %w (%w)", err, ctx.Err())
		}
	}
}

// Close stops the background work and closes the adapters' Redis
// connections (not the client given to New). Adapters created afterwards
// work for the local node only.
func (c *Cluster) Close() error {
	c.mu.Lock()
	c.closed = true
	run := c.run
	c.run = nil
	c.mu.Unlock()
	if run != nil {
		c.stop(run)
	}
	return nil
}

// release forgets a closed adapter and stops the background work after the
// last one.
func (c *Cluster) release(a *adapter) {
	c.mu.Lock()
	if c.adapters[a.nsp] == a {
		delete(c.adapters, a.nsp)
	}
	var run *runState
	if len(c.adapters) == 0 {
		run = c.run
		c.run = nil
	} else if c.run != nil {
		ctx, cancel := context.WithTimeout(c.run.ctx, time.Second)
		_ = c.run.ps.Unsubscribe(ctx, a.public, a.private)
		cancel()
		if sr := c.run.shards[a.nsp]; sr != nil {
			delete(c.run.shards, a.nsp)
			defer c.stopShard(sr)
		}
	}
	c.mu.Unlock()
	if run != nil {
		c.stop(run)
	}
}

// startShard starts the reader of a namespace's stream (sharded mode),
// from the stream's current end; c.mu is held.
func (c *Cluster) startShard(run *runState, nsp, stream string) {
	if run.shards[nsp] != nil {
		return
	}
	rc, owned := c.readerClient()
	ctx, cancel := context.WithCancel(run.ctx)
	sr := &shardReader{stream: stream, cancel: cancel, rc: rc, owned: owned, done: make(chan struct{})}
	run.shards[nsp] = sr
	rctx, rcancel := context.WithTimeout(ctx, c.opts.SubscribeTimeout)
	last, err := lastEntryID(rctx, c.client, stream)
	rcancel()
	if err != nil {
		c.setErr("stream "+stream, err)
		last = ""
	}
	run.wg.Add(1)
	go func() {
		defer close(sr.done)
		c.readLoop(ctx, run, rc, stream, last)
	}()
}

// stopShard stops one namespace's reader and waits for it.
func (c *Cluster) stopShard(sr *shardReader) {
	sr.cancel()
	if sr.owned {
		_ = sr.rc.Close()
	}
	<-sr.done
	c.setErr("stream "+sr.stream, nil)
}

func (c *Cluster) adapterFor(nsp string) *adapter {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.adapters[nsp]
}

// start begins the background work; c.mu is held.
func (c *Cluster) start() {
	ctx, cancel := context.WithCancel(context.Background())
	run := &runState{ctx: ctx, cancel: cancel, subWait: make(map[string][]chan struct{}), work: newWorkQueue(),
		shards: make(map[string]*shardReader)}
	run.ps = c.client.Subscribe(ctx)
	c.run = run
	for _, stream := range c.streamNames() {
		rc, dedicated := c.readerClient()
		if dedicated {
			run.readers = append(run.readers, rc)
		}
		// Resolve where to start now, so that nothing published after
		// this adapter exists is missed; on failure the loop retries.
		rctx, rcancel := context.WithTimeout(ctx, c.opts.SubscribeTimeout)
		last, err := lastEntryID(rctx, c.client, stream)
		rcancel()
		if err != nil {
			c.setErr("stream "+stream, err)
			last = ""
		}
		run.wg.Add(1)
		go c.readLoop(ctx, run, rc, stream, last)
	}
	run.wg.Add(3)
	go func() { defer run.wg.Done(); c.keep.loop(ctx) }()
	go c.subLoop(run)
	go func() { defer run.wg.Done(); run.work.run(ctx) }()
}

func (c *Cluster) stop(run *runState) {
	run.cancel()
	_ = run.ps.Close()
	for _, rc := range run.readers {
		_ = rc.Close()
	}
	c.mu.Lock()
	shards := run.shards
	run.shards = nil
	c.mu.Unlock()
	for _, sr := range shards {
		c.stopShard(sr)
	}
	run.wg.Wait()
	c.mu.Lock()
	for _, a := range c.adapters {
		a.dropRequests()
	}
	c.mu.Unlock()
}

// streamNames lists the streams this node reads from start to stop (none
// in sharded mode: each namespace's adapter starts the reader of its own).
func (c *Cluster) streamNames() []string {
	if c.opts.Sharded {
		return nil
	}
	if c.opts.StreamCount == 1 {
		return []string{c.opts.StreamName}
	}
	out := make([]string, c.opts.StreamCount)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", c.opts.StreamName, i)
	}
	return out
}

// streamFor returns the stream of a namespace, computed as the Node
// adapter does: a Java-style int32 string hash and JavaScript's %, which
// keeps the sign (a negative index names a stream no reader reads: the
// Node adapter has that bug and a compatible node must share it).
func (c *Cluster) streamFor(nsp string) string {
	if c.opts.Sharded {
		return c.opts.StreamName + "#" + nsp
	}
	if c.opts.StreamCount == 1 {
		return c.opts.StreamName
	}
	return fmt.Sprintf("%s-%d", c.opts.StreamName, jsHashCode(nsp)%int32(c.opts.StreamCount))
}

// jsHashCode is the Node adapter's hashCode over UTF-16 code units.
func jsHashCode(s string) int32 {
	var h int32
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			h = h*31 + int32(0xd800+(r>>10))
			h = h*31 + int32(0xdc00+(r&0x3ff))
			continue
		}
		h = h*31 + int32(r)
	}
	return h
}

// readerClient returns a connection of its own for blocking XREADs, closed
// on stop to interrupt a blocked read, as the Node adapter duplicates its
// client per stream. Clients of unknown types are shared (stopping then
// waits for the current XREAD to time out).
func (c *Cluster) readerClient() (goredis.UniversalClient, bool) {
	// The copies keep the connection settings and drop the per-client
	// machinery (push handlers, client-side cache, auto-pipelining), which
	// cannot be shared and which a reader does not need.
	off := &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	switch cl := c.client.(type) {
	case *goredis.Client:
		o := *cl.Options()
		o.PoolSize, o.MinIdleConns, o.MaxIdleConns, o.MaxActiveConns = 1, 0, 1, 0
		o.PushNotificationProcessor, o.MaintNotificationsConfig, o.AutoPipelineOptions = nil, off, nil
		o.ClientSideCacheConfig, o.ClientSideCache = nil, nil
		return goredis.NewClient(&o), true
	case *goredis.ClusterClient:
		o := *cl.Options()
		o.PushNotificationProcessor, o.MaintNotificationsConfig, o.AutoPipelineOptions = nil, off, nil
		return goredis.NewClusterClient(&o), true
	}
	return c.client, false
}

func lastEntryID(ctx context.Context, client goredis.UniversalClient, stream string) (string, error) {
	msgs, err := client.XRevRangeN(ctx, stream, "+", "-", 1).Result()
	if err != nil {
		return "", fmt.Errorf("redis: read the end of stream %q: %w", stream, err)
	}
	if len(msgs) == 0 {
		return "0-0", nil // a stream created later: read it from its start
	}
	return msgs[0].ID, nil
}

// readLoop reads one stream, in order, and hands its entries to the
// adapters of their namespaces.
// It runs until ctx (run's, or a shard reader's) ends.
func (c *Cluster) readLoop(ctx context.Context, run *runState, rc goredis.UniversalClient, stream, last string) {
	defer run.wg.Done()
	var b backoff
	for ctx.Err() == nil {
		if last == "" {
			id, err := lastEntryID(ctx, rc, stream)
			if err != nil {
				c.setErr("stream "+stream, err)
				b.wait(ctx)
				continue
			}
			c.setErr("stream "+stream, nil)
			last = id
		}
		res, err := rc.XRead(ctx, &goredis.XReadArgs{
			Streams: []string{stream, last},
			Count:   c.opts.ReadCount,
			Block:   c.opts.BlockTime,
		}).Result()
		if errors.Is(err, goredis.Nil) {
			c.setErr("stream "+stream, nil)
			b.reset()
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			c.setErr("stream "+stream, fmt.Errorf("redis: XREAD %s: %w", stream, err))
			b.wait(ctx)
			continue
		}
		c.setErr("stream "+stream, nil)
		b.reset()
		for _, s := range res {
			for _, m := range s.Messages {
				last = m.ID
				c.onStreamEntry(m)
			}
		}
	}
}

func (c *Cluster) onStreamEntry(m goredis.XMessage) {
	nsp, _ := m.Values["nsp"].(string)
	if nsp == "" {
		return
	}
	a := c.adapterFor(nsp)
	if a == nil {
		return
	}
	msg, err := decodeStreamEntry(m.Values)
	if err != nil {
		c.opts.Logger.Debug("redis: invalid stream entry", "id", m.ID, "err", err)
		return
	}
	a.onMessage(msg, m.ID)
}

// subscribe subscribes to channels and waits, up to SubscribeTimeout, for
// Redis to confirm.
func (c *Cluster) subscribe(run *runState, channels ...string) {
	if run == nil {
		return
	}
	waits := make([]chan struct{}, len(channels))
	run.subMu.Lock()
	for i, ch := range channels {
		waits[i] = make(chan struct{})
		run.subWait[ch] = append(run.subWait[ch], waits[i])
	}
	run.subMu.Unlock()
	ctx, cancel := context.WithTimeout(run.ctx, c.opts.SubscribeTimeout)
	defer cancel()
	if err := run.ps.Subscribe(ctx, channels...); err != nil {
		c.setErr("pubsub", fmt.Errorf("redis: SUBSCRIBE: %w", err))
		return // the subscription is renewed when the connection is
	}
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return
		}
	}
}

// subLoop receives the pub/sub messages of every namespace.
func (c *Cluster) subLoop(run *runState) {
	defer run.wg.Done()
	var b backoff
	for run.ctx.Err() == nil {
		msg, err := run.ps.Receive(run.ctx)
		if err != nil {
			if run.ctx.Err() != nil {
				return
			}
			c.setErr("pubsub", fmt.Errorf("redis: pub/sub: %w", err))
			b.wait(run.ctx) // the PubSub reconnects and resubscribes
			continue
		}
		b.reset()
		c.setErr("pubsub", nil)
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				run.subMu.Lock()
				for _, w := range run.subWait[m.Channel] {
					close(w)
				}
				delete(run.subWait, m.Channel)
				run.subMu.Unlock()
			}
		case *goredis.Message:
			c.onPubSub(run, []byte(m.Payload))
		}
	}
}

func (c *Cluster) onPubSub(run *runState, payload []byte) {
	msg, err := decodePubSub(payload)
	if err != nil {
		c.opts.Logger.Debug("redis: invalid pub/sub message", "err", err)
		return
	}
	a := c.adapterFor(msg.nsp)
	if a == nil {
		return
	}
	if msg.typ == typeServerSideEmit {
		// Handlers may block, even on requests whose answers this loop
		// delivers: they run on their own goroutine, in order.
		run.work.push(func() { a.onMessage(msg, "") })
		return
	}
	a.onMessage(msg, "")
}

// backoff waits 100 ms, doubling up to 5 s, between retries.
type backoff struct{ d time.Duration }

func (b *backoff) reset() { b.d = 0 }

// wait sleeps for the next delay; false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	switch {
	case b.d == 0:
		b.d = 100 * time.Millisecond
	case b.d < 5*time.Second:
		b.d = min(2*b.d, 5*time.Second)
	}
	t := time.NewTimer(b.d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// workQueue runs functions one at a time, in order, without bounding the
// queue (server-side events are rare).
type workQueue struct {
	mu    sync.Mutex
	items []func()
	wake  chan struct{}
}

func newWorkQueue() *workQueue { return &workQueue{wake: make(chan struct{}, 1)} }

func (q *workQueue) push(fn func()) {
	q.mu.Lock()
	q.items = append(q.items, fn)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *workQueue) run(ctx context.Context) {
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		q.mu.Unlock()
		for _, fn := range items {
			fn()
		}
		select {
		case <-q.wake:
		case <-ctx.Done():
			return
		}
	}
}

// randomID returns 8 random bytes as 16 hex characters, like socket.io's
// adapter uids and request ids.
func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
