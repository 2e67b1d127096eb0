package redis

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard-io/switchboard"
)

// The session keeper saves the recovery session of every connected socket
// (with connection-state recovery on) ahead of time, in the form
// PersistSession writes and the Node adapter reads, so that a node that
// dies without running its disconnect code (SIGKILL, OOM, power loss)
// leaves its sockets' sessions in Redis: upstream loses them
// (redis-streams-adapter #27).
//
// One goroutine per Cluster writes: KeepSession only marks the pid dirty
// (several changes before a write make one SET), and each write is a
// pipeline of SETs and compare-and-deletes. Every session is SET again
// every refresh interval (Options.SessionRefresh, default a third of the
// recovery window) with PX = window + interval, so that it outlives a
// SIGKILL by at least the window.

// keepBatch is how many commands one pipeline of the keeper carries.
const keepBatch = 1000

// casDelete deletes a session only if it still holds the value this node
// wrote: a restore on another node may have consumed it, and the node
// holding the socket now may have rewritten it.
var casDelete = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// casPersist replaces a kept session by the one of the socket's disconnect
// only if it still holds the value this node wrote: if a restore consumed
// it (the client came back elsewhere before this node saw it leave) or
// another node now holds the socket, the late save must not resurrect it.
var casPersist = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0`)

type keeper struct {
	c    *Cluster
	wake chan struct{}
	tick atomic.Int64 // ns between scans for due refreshes

	// flushMu is held while a batch is built and written, so that
	// PersistSession can wait for a write in flight.
	flushMu sync.Mutex

	mu     sync.Mutex
	live   map[string]*kept // pid → session of a connected socket
	dirty  map[string]bool  // pids of live to write
	forget []*kept          // sessions to delete (if still ours)

	// Figures for tests and docs.
	sets, dels, pipelines atomic.Int64
}

// kept is the session of one connected socket.
type kept struct {
	a     *adapter
	pid   string
	snap  switchboard.SessionState // as of the last KeepSession
	last  string                   // value last written, "" before the first write
	due   time.Time                // next refresh
	every time.Duration
	ttl   time.Duration
}

func newKeeper(c *Cluster) *keeper {
	k := &keeper{c: c, wake: make(chan struct{}, 1), live: make(map[string]*kept), dirty: make(map[string]bool)}
	k.tick.Store(int64(time.Second))
	return k
}

func (k *keeper) signal() {
	select {
	case k.wake <- struct{}{}:
	default:
	}
}

// refreshEvery is the refresh interval of sessions kept by a.
func (a *adapter) refreshEvery() time.Duration {
	if d := a.c.opts.SessionRefresh; d > 0 {
		return d
	}
	return max(a.recovery.MaxDisconnectionDuration/3, time.Millisecond)
}

// KeepSession implements switchboard.SessionKeeper: the session of a
// connected socket is saved in the background and refreshed until the
// socket disconnects.
func (a *adapter) KeepSession(st *switchboard.SessionState) {
	if a.recovery == nil || st == nil || st.PID == "" || a.isClosed() {
		return
	}
	k := a.c.keep
	every := a.refreshEvery()
	k.mu.Lock()
	e := k.live[st.PID]
	if e == nil || e.a != a {
		e = &kept{a: a, pid: st.PID}
		k.live[st.PID] = e
	}
	e.snap = switchboard.SessionState{SID: st.SID, PID: st.PID, Rooms: append([]string(nil), st.Rooms...), Data: st.Data}
	e.every = every
	e.ttl = a.recovery.MaxDisconnectionDuration + every
	k.dirty[st.PID] = true
	k.mu.Unlock()
	if t := max(min(every/10, time.Second), 10*time.Millisecond); int64(t) < k.tick.Load() {
		k.tick.Store(int64(t))
	}
	k.signal()
}

// ForgetSession implements switchboard.SessionKeeper: the kept session of
// a socket that left for good is deleted in the background, unless it was
// already consumed or rewritten by another node.
func (a *adapter) ForgetSession(pid string) {
	k := a.c.keep
	k.mu.Lock()
	e := k.live[pid]
	if e == nil || e.a != a {
		k.mu.Unlock()
		return
	}
	delete(k.live, pid)
	delete(k.dirty, pid)
	k.forget = append(k.forget, e)
	k.mu.Unlock()
	k.signal()
}

// take stops keeping the session of pid and returns the value last
// written for it ("" if none), after any write in flight has ended.
func (k *keeper) take(a *adapter, pid string) string {
	k.mu.Lock()
	e := k.live[pid]
	if e == nil || e.a != a {
		k.mu.Unlock()
		return ""
	}
	delete(k.live, pid)
	delete(k.dirty, pid)
	k.mu.Unlock()
	k.flushMu.Lock()
	//nolint:staticcheck // an empty critical section: wait for the write in flight
	k.flushMu.Unlock()
	k.mu.Lock()
	defer k.mu.Unlock()
	return e.last
}

// dropAdapter forgets, without deleting, the sessions kept for a closed
// adapter (its sockets persisted theirs when they were closed).
func (k *keeper) dropAdapter(a *adapter) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for pid, e := range k.live {
		if e.a == a {
			delete(k.live, pid)
			delete(k.dirty, pid)
		}
	}
}

// loop writes the sessions until ctx ends, then deletes the sessions still
// to forget (with a short deadline).
func (k *keeper) loop(ctx context.Context) {
	tick := time.Duration(k.tick.Load())
	t := time.NewTicker(tick)
	defer t.Stop()
	var b backoff
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), time.Second)
			k.mu.Lock()
			k.dirty = make(map[string]bool) // the sockets' own disconnects saved them
			k.mu.Unlock()
			_ = k.flush(fctx)
			cancel()
			return
		case <-k.wake:
		case now := <-t.C:
			k.markDue(now)
		}
		if d := time.Duration(k.tick.Load()); d != tick {
			tick = d
			t.Reset(tick)
		}
		if err := k.flush(ctx); err != nil {
			if ctx.Err() != nil {
				continue
			}
			k.c.setErr("sessions", err)
			b.wait(ctx)
			k.signal()
			continue
		}
		k.c.setErr("sessions", nil)
		b.reset()
	}
}

// markDue marks the sessions whose refresh is due.
func (k *keeper) markDue(now time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for pid, e := range k.live {
		if !e.due.IsZero() && !now.Before(e.due) {
			k.dirty[pid] = true
		}
	}
}

// state is the current session of a kept socket: its live rooms and
// data, or snap, the last snapshot, if the socket is going.
func (op *keepOp) state() *switchboard.SessionState {
	a, sid := op.e.a, op.snap.SID
	if s := a.ns.Socket(sid); s != nil && s.Connected() {
		if rooms := a.Rooms(sid); len(rooms) > 0 {
			return &switchboard.SessionState{SID: sid, PID: op.snap.PID, Rooms: rooms, Data: s.Data()}
		}
	}
	return &op.snap
}

// keepOp is one write of the keeper, with the fields of its kept copied
// under keeper.mu.
type keepOp struct {
	e     *kept
	del   bool
	key   string
	snap  switchboard.SessionState
	ttl   time.Duration
	every time.Duration
	last  string
	val   string // SET value
}

// flush writes the dirty sessions and deletes the forgotten ones.
func (k *keeper) flush(ctx context.Context) error {
	k.flushMu.Lock()
	defer k.flushMu.Unlock()
	k.mu.Lock()
	var ops []keepOp
	for pid := range k.dirty {
		if e := k.live[pid]; e != nil {
			ops = append(ops, keepOp{e: e, key: e.a.c.opts.SessionKeyPrefix + pid, snap: e.snap, ttl: e.ttl, every: e.every})
		}
	}
	clear(k.dirty)
	for _, e := range k.forget {
		if e.last != "" { // never written: nothing of ours to delete
			ops = append(ops, keepOp{e: e, del: true, key: e.a.c.opts.SessionKeyPrefix + e.pid, last: e.last})
		}
	}
	k.forget = nil
	k.mu.Unlock()
	if len(ops) == 0 {
		return nil
	}
	// Encode outside the lock: reading sockets' data may take a while.
	for i := range ops {
		op := &ops[i]
		if op.del {
			continue
		}
		val, err := encodeSession(op.state())
		if err != nil {
			k.c.opts.Logger.Warn("redis: cannot keep a session", "pid", op.e.pid, "err", err)
			op.e = nil
			continue
		}
		op.val = val
	}
	var firstErr error
	for start := 0; start < len(ops); start += keepBatch {
		chunk := ops[start:min(start+keepBatch, len(ops))]
		_, err := k.c.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for _, op := range chunk {
				switch {
				case op.e == nil:
				case op.del:
					casDelete.Eval(ctx, p, []string{op.key}, op.last)
				default:
					p.Set(ctx, op.key, op.val, op.ttl)
				}
			}
			return nil
		})
		k.pipelines.Add(1)
		now := time.Now()
		k.mu.Lock()
		for _, op := range chunk {
			switch {
			case op.e == nil:
			case err != nil && op.del:
				k.forget = append(k.forget, op.e) // retry
			case err != nil:
				if k.live[op.e.pid] == op.e {
					k.dirty[op.e.pid] = true // retry
				}
			case op.del:
				k.dels.Add(1)
			default:
				k.sets.Add(1)
				op.e.last = op.val
				// A tenth early: the scan for due refreshes runs every
				// tenth of the interval at most (1 s at most), so the
				// session is always rewritten before PX - window runs out.
				op.e.due = now.Add(op.every - op.every/10)
			}
		}
		k.mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
	}
	return firstErr
}
