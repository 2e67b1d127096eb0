package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard-io/switchboard"
)

// Store is a switchboard.Store on Redis, shared by every node of a
// cluster: the log of each durable room is a Redis stream whose entry ids
// are the room's offsets ("<offset>-0"), and subscribers' cursors live in
// Redis too, so a durable subscriber can reconnect to any node and resume.
// It implements switchboard.StoreWatcher: every Append is announced on a
// pub/sub channel, so the durable deliveries of every node start as soon as
// any node published. See docs/cluster.md, "Durable rooms in Redis".
//
// Keys, for the default prefix "sb" (every key of a room carries the hash
// tag "{sb:<room>}", so a Redis Cluster keeps a room on one shard and the
// scripts that update it stay atomic):
//
//	{sb:<room>}:log      stream: id <offset>-0, fields t (Unix ns) and d (data)
//	{sb:<room>}:meta     hash: epoch, first, last, bytes
//	{sb:<room>}:cursors  hash: subscriber → "cursor[,acked,…]"
//	{sb:<room>}:tokens   sorted set: the last appends' tokens → first offset
//	{sb:sub:<sub>}:rooms set: the rooms a subscriber has a cursor in
//	{sb}:rooms           set: every room that has (or had) a log
//	sb:notify            pub/sub channel: room names, one per Append
//
// Methods are safe for concurrent use, by one Store or by several Stores
// (nodes) on the same Redis and prefix.
type Store struct {
	client  goredis.UniversalClient
	opts    StoreOptions
	ret     switchboard.Retention
	prefix  string
	channel string
	roomsIx string // {prefix}:rooms

	seen sync.Map // room → *seenState, to detect a log that lost its tail

	closed atomic.Bool
	done   chan struct{} // closed by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ switchboard.Store        = (*Store)(nil)
	_ switchboard.StoreWatcher = (*Store)(nil)
)

// StoreOptions configures a Store. A nil *StoreOptions or zero fields give
// the defaults stated on each field. Every node sharing a store must use the
// same Prefix and Retention.
type StoreOptions struct {
	// Prefix starts every key and the notification channel. It must not
	// contain '{' or '}'. Default "sb".
	Prefix string
	// Retention bounds what each room keeps. Nil means
	// switchboard.DefaultRetention; a non-nil zero Retention keeps
	// everything. MaxEvents and MaxBytes are applied by Append itself;
	// MaxAge by a trimmer every MaxAge/10 (10 ms to 1 min) on every node.
	Retention *switchboard.Retention
	// WaitReplicas, when positive, makes Append wait (Redis WAIT) until
	// that many replicas acknowledged the write, up to WaitTimeout, so that
	// a confirmed event survives a failover to one of them. Fewer
	// acknowledgements fail the Append with ErrNotReplicated (the events
	// may still be stored). Default 0: the confirmation means the primary
	// executed the write; what survives its crash then depends on its
	// persistence (AOF with appendfsync always: everything confirmed).
	WaitReplicas int
	// WaitTimeout bounds the wait for replicas. Default 1 s.
	WaitTimeout time.Duration
	// Logger receives the store's warnings. Default slog.Default().
	Logger *slog.Logger
}

// ErrNotReplicated is returned (wrapped) by Append when fewer than
// StoreOptions.WaitReplicas replicas acknowledged the write in time. The
// events were stored on the primary and may be delivered.
var ErrNotReplicated = errors.New("redis store: write not acknowledged by enough replicas")

// tokensKept is how many recent append tokens each room remembers, so that
// a retried Append (go-redis retries a command whose connection broke, and
// the store re-runs a script Redis forgot) is applied once.
const tokensKept = 256

// NewStore returns a Store on client (a *goredis.Client, *goredis.ClusterClient
// or failover client; the store never closes it). It does no I/O: a Redis
// that is down makes the calls fail until it is back. With a Retention
// MaxAge it starts the age trimmer; Close stops it.
func NewStore(client goredis.UniversalClient, opts *StoreOptions) *Store {
	var o StoreOptions
	if opts != nil {
		o = *opts
	}
	if o.Prefix == "" {
		o.Prefix = "sb"
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	ret := switchboard.DefaultRetention
	if o.Retention != nil {
		ret = *o.Retention
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Store{
		client:  client,
		opts:    o,
		ret:     ret,
		prefix:  o.Prefix,
		channel: o.Prefix + ":notify",
		roomsIx: "{" + o.Prefix + "}:rooms",
		done:    make(chan struct{}),
		cancel:  cancel,
	}
	if ret.MaxAge > 0 {
		s.wg.Add(1)
		go s.trimLoop(ctx)
	}
	return s
}

func (s *Store) roomKey(room, kind string) string { return "{" + s.prefix + ":" + room + "}:" + kind }

func (s *Store) subKey(sub string) string { return "{" + s.prefix + ":sub:" + sub + "}:rooms" }

var (
	errNoEvents  = errors.New("redis store: append of no events")
	errEmptyName = errors.New("redis store: empty room or subscriber name")
	errBadLimit  = errors.New("redis store: read limit must be positive")
)

// check is the start of every method: closed store, ended ctx.
func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return switchboard.ErrStoreClosed
	}
	return ctx.Err()
}

// wrap turns a Redis error into the store's: a ctx error stays recognisable.
func wrap(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return ctx.Err()
	}
	return fmt.Errorf("redis store: %s: %w", op, err)
}

func newEpoch() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// appendScript appends events to a room, creating its log, and applies
// the count and byte bounds. KEYS: log, meta, tokens. ARGV: token, epoch,
// maxEvents, maxBytes, tokensKept, seenEpoch and seenLast (the epoch and
// highest last offset this Store saw in the room), then time and data of
// each event. Returns {first offset, epoch}.
//
// A new log gets the new epoch (and a leftover stream of a lost meta is
// dropped). A log still in the epoch this Store saw whose last offset is
// below what it saw lost its tail (Redis restarted from an older AOF or RDB, or failed over to a
// lagging replica): it gets the new epoch too, since its next offsets
// would reuse offsets subscribers may hold.
// Returns the first offset (a string: Lua numbers print in exponent form
// past 1e14, so offsets are formatted with %d everywhere).
var appendScript = goredis.NewScript(`
local log, meta, tokens = KEYS[1], KEYS[2], KEYS[3]
local done = redis.call('ZSCORE', tokens, ARGV[1])
if done then return {done, redis.call('HGET', meta, 'epoch')} end
if redis.call('HSETNX', meta, 'epoch', ARGV[2]) == 1 then
  redis.call('HSET', meta, 'first', '1', 'last', '0', 'bytes', '0')
  redis.call('DEL', log)
end
local m = redis.call('HMGET', meta, 'first', 'last', 'bytes', 'epoch')
local first, last, bytes, epoch = tonumber(m[1]), tonumber(m[2]), tonumber(m[3]), m[4]
if epoch == ARGV[6] and last < tonumber(ARGV[7]) then
  epoch = ARGV[2]
  redis.call('HSET', meta, 'epoch', epoch)
end
local n = (#ARGV - 7) / 2
for i = 1, n do
  local d = ARGV[7 + 2*i]
  redis.call('XADD', log, string.format('%d-0', last + i), 't', ARGV[6 + 2*i], 'd', d)
  bytes = bytes + #d
end
local newlast = last + n
local maxEvents, maxBytes = tonumber(ARGV[3]), tonumber(ARGV[4])
local newfirst = first
if maxEvents > 0 and newlast - newfirst + 1 > maxEvents then
  local drop = newlast - newfirst + 1 - maxEvents
  local gone = redis.call('XRANGE', log, string.format('%d-0', newfirst), string.format('%d-0', newfirst + drop - 1))
  for _, e in ipairs(gone) do bytes = bytes - #e[2][4] end
  newfirst = newfirst + drop
end
if maxBytes > 0 then
  while bytes > maxBytes and newfirst <= newlast do
    local page = redis.call('XRANGE', log, string.format('%d-0', newfirst), '+', 'COUNT', 64)
    for _, e in ipairs(page) do
      if bytes <= maxBytes then break end
      bytes = bytes - #e[2][4]
      newfirst = newfirst + 1
    end
  end
end
if newfirst > first then
  redis.call('XTRIM', log, 'MINID', string.format('%d-0', newfirst))
end
redis.call('HSET', meta, 'first', string.format('%d', newfirst), 'last', string.format('%d', newlast), 'bytes', string.format('%d', bytes))
local res = string.format('%d', last + 1)
redis.call('ZADD', tokens, res, ARGV[1])
local kept = tonumber(ARGV[5])
if redis.call('ZCARD', tokens) > kept then
  redis.call('ZREMRANGEBYRANK', tokens, 0, -kept - 1)
end
return {res, epoch}
`)

// trimAgeScript drops the oldest events older than a cutoff. KEYS: log,
// meta. ARGV: cutoff (Unix ns). Returns how many it dropped.
var trimAgeScript = goredis.NewScript(`
local log, meta = KEYS[1], KEYS[2]
local m = redis.call('HMGET', meta, 'first', 'last', 'bytes')
if not m[1] then return 0 end
local first, last, bytes = tonumber(m[1]), tonumber(m[2]), tonumber(m[3])
local cutoff = tonumber(ARGV[1])
local newfirst = first
local more = true
while more and newfirst <= last do
  local page = redis.call('XRANGE', log, string.format('%d-0', newfirst), '+', 'COUNT', 64)
  if #page == 0 then break end
  for _, e in ipairs(page) do
    if tonumber(e[2][2]) >= cutoff then more = false; break end
    bytes = bytes - #e[2][4]
    newfirst = newfirst + 1
  end
end
if newfirst == first then return 0 end
redis.call('XTRIM', log, 'MINID', string.format('%d-0', newfirst))
redis.call('HSET', meta, 'first', string.format('%d', newfirst), 'bytes', string.format('%d', bytes))
return newfirst - first
`)

// setCursorScript stores a cursor unless the stored one is higher. KEYS:
// cursors. ARGV: subscriber, cursor, encoded value. Offsets are compared
// as decimal strings (length, then bytes), exact for every uint64.
var setCursorScript = goredis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local c = string.match(cur, '^%d+')
  local n = ARGV[2]
  if #n < #c or (#n == #c and n < c) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
`)

// runScript runs a script, loading it when Redis does not know it (after a
// restart, or on a new shard).
func runScript(ctx context.Context, c goredis.Scripter, sc *goredis.Script, keys []string, args ...any) *goredis.Cmd {
	return sc.Run(ctx, c, keys, args...)
}

// Append adds events to the end of room's log; see switchboard.Store.
//
// One script per call, atomic on the room's shard: it reads the room's
// last offset from its meta hash, XADDs each event with the explicit id
// "<offset>-0", applies MaxEvents and MaxBytes (XTRIM MINID), updates the
// meta and records the call's token (so a retry after a lost reply is not
// applied twice). The room is announced on the notification channel in
// the same pipeline.
func (s *Store) Append(ctx context.Context, room string, events []switchboard.StoredEvent) (uint64, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	if room == "" {
		return 0, errEmptyName
	}
	if len(events) == 0 {
		return 0, errNoEvents
	}
	now := time.Now()
	seenEpoch, seenLast := s.seenOf(room)
	args := make([]any, 0, 7+2*len(events))
	args = append(args, newEpoch()+newEpoch(), newEpoch(), s.ret.MaxEvents, s.ret.MaxBytes, tokensKept, seenEpoch, seenLast)
	for _, e := range events {
		t := e.Time
		if t.IsZero() {
			t = now
		}
		args = append(args, strconv.FormatInt(t.UnixNano(), 10), e.Data)
	}
	keys := []string{s.roomKey(room, "log"), s.roomKey(room, "meta"), s.roomKey(room, "tokens")}

	// One round trip: the rooms index first (Rooms filters out a room
	// whose append then failed), the script, WAIT on the same connection,
	// and the notification.
	var pipeClient goredis.UniversalClient = s.client
	if cc, ok := s.client.(*goredis.ClusterClient); ok && s.opts.WaitReplicas > 0 {
		// WAIT has no key: send it with the script to the room's primary.
		node, err := cc.MasterForKey(ctx, keys[0])
		if err != nil {
			return 0, wrap(ctx, "append", err)
		}
		pipeClient = node
		if _, err := s.client.SAdd(ctx, s.roomsIx, room).Result(); err != nil {
			return 0, wrap(ctx, "append", err)
		}
	}
	var (
		scmd *goredis.Cmd
		wcmd *goredis.Cmd
		pcmd *goredis.IntCmd
	)
	run := func(load bool) error {
		_, err := pipeClient.Pipelined(ctx, func(p goredis.Pipeliner) error {
			if pipeClient == s.client {
				p.SAdd(ctx, s.roomsIx, room)
			}
			if load {
				scmd = appendScript.Eval(ctx, p, keys, args...)
			} else {
				scmd = appendScript.EvalSha(ctx, p, keys, args...)
			}
			if s.opts.WaitReplicas > 0 {
				wcmd = p.Do(ctx, "wait", s.opts.WaitReplicas, s.opts.WaitTimeout.Milliseconds())
			}
			// The notification is best effort (its error is ignored):
			// missing one only delays delivery on the other nodes until
			// the next publish. Sent before the WAIT's answer, it may
			// wake a node for events not yet replicated; that only
			// matters after a failover, which WaitReplicas is about.
			pcmd = p.Publish(ctx, s.channel, room)
			return nil
		})
		return err
	}
	err := run(false)
	if err != nil && isNoScript(scmd.Err()) {
		err = run(true)
	}
	if err != nil && errors.Is(err, pcmd.Err()) && scmd.Err() == nil && (wcmd == nil || wcmd.Err() == nil) {
		err = nil // only the notification failed
	}
	if err != nil {
		return 0, wrap(ctx, "append to "+strconv.Quote(room), err)
	}
	reply, _ := scmd.Val().([]any)
	if len(reply) != 2 {
		return 0, fmt.Errorf("redis store: append to %q: bad reply %v", room, scmd.Val())
	}
	first, err := parseOffset(reply[0])
	if err != nil {
		return 0, fmt.Errorf("redis store: append to %q: %w", room, err)
	}
	epoch, _ := reply[1].(string)
	if epoch != seenEpoch && seenEpoch != "" && seenLast >= first {
		s.opts.Logger.Warn("redis store: the room's log lost events that were confirmed (Redis lost writes); it has a new epoch",
			"room", room, "last_seen", seenLast, "last_now", first-1)
	}
	s.saw(room, epoch, first+uint64(len(events))-1)
	if wcmd != nil {
		if n, _ := wcmd.Int64(); n < int64(s.opts.WaitReplicas) {
			return first, fmt.Errorf("%w: offset %d of %q reached %d of %d replicas within %v",
				ErrNotReplicated, first, room, n, s.opts.WaitReplicas, s.opts.WaitTimeout)
		}
	}
	return first, nil
}

// parseOffset reads the append script's reply: a decimal string, or the
// score of a remembered token (which Redis may print as a float).
func parseOffset(v any) (uint64, error) {
	str := fmt.Sprint(v)
	if n, err := strconv.ParseUint(str, 10, 64); err == nil {
		return n, nil
	}
	if f, err := strconv.ParseFloat(str, 64); err == nil && f >= 1 && f == float64(uint64(f)) {
		return uint64(f), nil
	}
	return 0, fmt.Errorf("bad reply %q", str)
}

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

// Read returns up to limit events of room from offset from; see
// switchboard.Store. It is one XRANGE "<from>-0" + COUNT limit.
func (s *Store) Read(ctx context.Context, room string, from uint64, limit int) ([]switchboard.StoredEvent, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if room == "" {
		return nil, errEmptyName
	}
	if limit < 1 {
		return nil, errBadLimit
	}
	res, err := s.client.Do(ctx, "XRANGE", s.roomKey(room, "log"), strconv.FormatUint(from, 10)+"-0", "+", "COUNT", limit).Slice()
	if err != nil {
		return nil, wrap(ctx, "read "+strconv.Quote(room), err)
	}
	out := make([]switchboard.StoredEvent, 0, len(res))
	for _, r := range res {
		e, err := parseEntry(r)
		if err != nil {
			return nil, fmt.Errorf("redis store: read %q: %w", room, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// parseEntry decodes one XRANGE entry: [id, [t, time, d, data]].
func parseEntry(r any) (switchboard.StoredEvent, error) {
	var e switchboard.StoredEvent
	pair, ok := r.([]any)
	if !ok || len(pair) != 2 {
		return e, fmt.Errorf("%w: stream entry %v", switchboard.ErrCorrupt, r)
	}
	id, _ := pair[0].(string)
	off, seq, ok := strings.Cut(id, "-")
	var err error
	if e.Offset, err = strconv.ParseUint(off, 10, 64); !ok || err != nil || seq != "0" {
		return e, fmt.Errorf("%w: stream entry id %q", switchboard.ErrCorrupt, id)
	}
	fields, _ := pair[1].([]any)
	var haveT, haveD bool
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch k {
		case "t":
			ns, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return e, fmt.Errorf("%w: offset %d: time %q", switchboard.ErrCorrupt, e.Offset, v)
			}
			e.Time, haveT = time.Unix(0, ns), true
		case "d":
			e.Data, haveD = []byte(v), true
		}
	}
	if !haveT || !haveD {
		return e, fmt.Errorf("%w: offset %d: missing fields", switchboard.ErrCorrupt, e.Offset)
	}
	return e, nil
}

// seenState is what a Store last saw of a room's log.
type seenState struct {
	mu    sync.Mutex
	epoch string
	last  uint64
}

// seenOf returns the epoch and highest last offset this Store saw in room.
func (s *Store) seenOf(room string) (string, uint64) {
	v, ok := s.seen.Load(room)
	if !ok {
		return "", 0
	}
	st := v.(*seenState)
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.epoch, st.last
}

// saw records that room's log, in epoch, reached offset last.
func (s *Store) saw(room, epoch string, last uint64) {
	v, ok := s.seen.Load(room)
	if !ok {
		v, _ = s.seen.LoadOrStore(room, &seenState{})
	}
	st := v.(*seenState)
	st.mu.Lock()
	if epoch != st.epoch {
		st.epoch, st.last = epoch, last
	} else {
		st.last = max(st.last, last)
	}
	st.mu.Unlock()
}

// Info describes room's log; see switchboard.Store.
func (s *Store) Info(ctx context.Context, room string) (switchboard.LogInfo, bool, error) {
	if err := s.check(ctx); err != nil {
		return switchboard.LogInfo{}, false, err
	}
	if room == "" {
		return switchboard.LogInfo{}, false, errEmptyName
	}
	m, err := s.client.HMGet(ctx, s.roomKey(room, "meta"), "epoch", "first", "last", "bytes").Result()
	if err != nil {
		return switchboard.LogInfo{}, false, wrap(ctx, "info "+strconv.Quote(room), err)
	}
	return parseMeta(room, m)
}

func parseMeta(room string, m []any) (switchboard.LogInfo, bool, error) {
	var info switchboard.LogInfo
	epoch, ok := m[0].(string)
	if !ok {
		return info, false, nil
	}
	var nums [3]int64
	for i := range nums {
		v, _ := m[i+1].(string)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return info, false, fmt.Errorf("redis store: room %q: %w: meta field %d = %q", room, switchboard.ErrCorrupt, i+1, v)
		}
		nums[i] = n
	}
	info.Epoch = epoch
	info.First, info.Last, info.Bytes = uint64(nums[0]), uint64(nums[1]), nums[2]
	info.Count = int(info.Last + 1 - info.First)
	return info, true, nil
}

// Rooms lists the rooms that have a log, sorted.
func (s *Store) Rooms(ctx context.Context) ([]string, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	rooms, err := s.client.SMembers(ctx, s.roomsIx).Result()
	if err != nil {
		return nil, wrap(ctx, "rooms", err)
	}
	// An index entry whose append failed has no log.
	cmds := make([]*goredis.IntCmd, len(rooms))
	if _, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, r := range rooms {
			cmds[i] = p.Exists(ctx, s.roomKey(r, "meta"))
		}
		return nil
	}); err != nil {
		return nil, wrap(ctx, "rooms", err)
	}
	out := rooms[:0]
	for i, r := range rooms {
		if cmds[i].Val() == 1 {
			out = append(out, r)
		}
	}
	slices.Sort(out)
	return out, nil
}

// encodeCursor is the stored value of a subscription: "cursor[,acked…]",
// acked sorted, unique and above cursor.
func encodeCursor(cursor uint64, acked []uint64) string {
	b := strconv.AppendUint(nil, cursor, 10)
	for _, a := range acked {
		b = append(b, ',')
		b = strconv.AppendUint(b, a, 10)
	}
	return string(b)
}

func decodeCursor(room, sub, v string) (switchboard.Subscription, error) {
	out := switchboard.Subscription{Room: room, Subscriber: sub}
	parts := strings.Split(v, ",")
	var err error
	if out.Cursor, err = strconv.ParseUint(parts[0], 10, 64); err != nil {
		return out, fmt.Errorf("redis store: cursor of %q in %q: %w: %q", sub, room, switchboard.ErrCorrupt, v)
	}
	for _, p := range parts[1:] {
		a, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return out, fmt.Errorf("redis store: cursor of %q in %q: %w: %q", sub, room, switchboard.ErrCorrupt, v)
		}
		out.Acked = append(out.Acked, a)
	}
	return out, nil
}

// SetCursor records subscriber's position in room; see switchboard.Store.
// The forward-only check and the write are one script on the room's
// shard; the subscriber's index set is updated after it.
func (s *Store) SetCursor(ctx context.Context, room, subscriber string, cursor uint64, acked []uint64) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if room == "" || subscriber == "" {
		return errEmptyName
	}
	clean := make([]uint64, 0, len(acked))
	for _, a := range acked {
		if a > cursor {
			clean = append(clean, a)
		}
	}
	slices.Sort(clean)
	clean = slices.Compact(clean)
	err := runScript(ctx, s.client, setCursorScript, []string{s.roomKey(room, "cursors")},
		subscriber, strconv.FormatUint(cursor, 10), encodeCursor(cursor, clean)).Err()
	if err != nil {
		return wrap(ctx, "set cursor", err)
	}
	// After the cursor: a DeleteCursor racing with this call re-checks the
	// cursor after removing the index entry (see DeleteCursor).
	if err := s.client.SAdd(ctx, s.subKey(subscriber), room).Err(); err != nil {
		return wrap(ctx, "set cursor", err)
	}
	return nil
}

// Cursor returns subscriber's position in room; see switchboard.Store.
func (s *Store) Cursor(ctx context.Context, room, subscriber string) (switchboard.Subscription, bool, error) {
	if err := s.check(ctx); err != nil {
		return switchboard.Subscription{}, false, err
	}
	if room == "" || subscriber == "" {
		return switchboard.Subscription{}, false, errEmptyName
	}
	v, err := s.client.HGet(ctx, s.roomKey(room, "cursors"), subscriber).Result()
	if errors.Is(err, goredis.Nil) {
		return switchboard.Subscription{}, false, nil
	}
	if err != nil {
		return switchboard.Subscription{}, false, wrap(ctx, "cursor", err)
	}
	sub, err := decodeCursor(room, subscriber, v)
	return sub, err == nil, err
}

// DeleteCursor ends subscriber's subscription to room; see
// switchboard.Store. The cursor and the index entry live on different
// shards in a Redis Cluster: the cursor goes first, then the index entry,
// then the cursor is checked again and the entry restored if a concurrent
// SetCursor recreated it, so that the index never misses a cursor.
func (s *Store) DeleteCursor(ctx context.Context, room, subscriber string) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	if room == "" || subscriber == "" {
		return errEmptyName
	}
	ckey := s.roomKey(room, "cursors")
	if err := s.client.HDel(ctx, ckey, subscriber).Err(); err != nil {
		return wrap(ctx, "delete cursor", err)
	}
	if err := s.client.SRem(ctx, s.subKey(subscriber), room).Err(); err != nil {
		return wrap(ctx, "delete cursor", err)
	}
	back, err := s.client.HExists(ctx, ckey, subscriber).Result()
	if err != nil {
		return wrap(ctx, "delete cursor", err)
	}
	if back {
		if err := s.client.SAdd(ctx, s.subKey(subscriber), room).Err(); err != nil {
			return wrap(ctx, "delete cursor", err)
		}
	}
	return nil
}

// Subscriptions returns the rooms subscriber is subscribed to, sorted by
// room.
func (s *Store) Subscriptions(ctx context.Context, subscriber string) ([]switchboard.Subscription, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if subscriber == "" {
		return nil, errEmptyName
	}
	rooms, err := s.client.SMembers(ctx, s.subKey(subscriber)).Result()
	if err != nil {
		return nil, wrap(ctx, "subscriptions", err)
	}
	cmds := make([]*goredis.StringCmd, len(rooms))
	if _, err := s.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, r := range rooms {
			cmds[i] = p.HGet(ctx, s.roomKey(r, "cursors"), subscriber)
		}
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, wrap(ctx, "subscriptions", err)
	}
	out := make([]switchboard.Subscription, 0, len(rooms))
	for i, r := range rooms {
		v, err := cmds[i].Result()
		if errors.Is(err, goredis.Nil) {
			continue // an index entry left by an interrupted SetCursor
		}
		if err != nil {
			return nil, wrap(ctx, "subscriptions", err)
		}
		sub, err := decodeCursor(r, subscriber, v)
		if err != nil {
			return nil, err
		}
		out = append(out, sub)
	}
	slices.SortFunc(out, func(a, b switchboard.Subscription) int { return strings.Compare(a.Room, b.Room) })
	return out, nil
}

// Subscribers returns the subscribers of room, sorted by subscriber.
func (s *Store) Subscribers(ctx context.Context, room string) ([]switchboard.Subscription, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	if room == "" {
		return nil, errEmptyName
	}
	all, err := s.client.HGetAll(ctx, s.roomKey(room, "cursors")).Result()
	if err != nil {
		return nil, wrap(ctx, "subscribers", err)
	}
	out := make([]switchboard.Subscription, 0, len(all))
	for sub, v := range all {
		c, err := decodeCursor(room, sub, v)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b switchboard.Subscription) int { return strings.Compare(a.Subscriber, b.Subscriber) })
	return out, nil
}

// Watch calls fn with the name of each room any node appended to, until
// ctx ends or the store is closed (switchboard.StoreWatcher). It holds one
// pub/sub connection, which go-redis re-establishes after a Redis restart;
// after such a reconnection fn is called for every room, since
// notifications sent meanwhile were lost.
func (s *Store) Watch(ctx context.Context, fn func(room string)) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	ps := s.client.Subscribe(ctx, s.channel)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
		case <-s.done:
		case <-stop:
		}
		_ = ps.Close() // interrupts Receive
	}()
	defer func() {
		close(stop)
		wg.Wait()
	}()
	subscribed := false
	var b backoff
	for {
		msg, err := ps.Receive(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if s.closed.Load() {
			return switchboard.ErrStoreClosed
		}
		if err != nil {
			// The next Receive reconnects and subscribes again; an end of
			// ctx or of the store is seen at the top of the loop.
			b.waitOr(ctx, s.done)
			continue
		}
		b.reset()
		switch m := msg.(type) {
		case *goredis.Subscription:
			if m.Kind == "subscribe" {
				if subscribed {
					s.notifyAll(ctx, fn)
				}
				subscribed = true
			}
		case *goredis.Message:
			fn(m.Payload)
		}
	}
}

// notifyAll calls fn for every room.
func (s *Store) notifyAll(ctx context.Context, fn func(string)) {
	rooms, err := s.client.SMembers(ctx, s.roomsIx).Result()
	if err != nil {
		s.opts.Logger.Warn("redis store: rooms not listed after a reconnection; their deliveries wait for the next publish", "err", err)
		return
	}
	for _, r := range rooms {
		fn(r)
	}
}

// waitOr is wait that also ends when done is closed.
func (b *backoff) waitOr(ctx context.Context, done <-chan struct{}) bool {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	return b.wait(ctx)
}

// trimInterval is how often the age trimmer runs: a tenth of MaxAge,
// between 10 ms and a minute (as the other stores).
func trimInterval(maxAge time.Duration) time.Duration {
	return min(max(maxAge/10, 10*time.Millisecond), time.Minute)
}

// trimLoop drops expired events of every room. Every node sharing the
// store runs one; the script is idempotent.
func (s *Store) trimLoop(ctx context.Context) {
	defer s.wg.Done()
	t := time.NewTicker(trimInterval(s.ret.MaxAge))
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			err := s.trimAll(ctx, now.Add(-s.ret.MaxAge))
			switch {
			case err != nil && ctx.Err() == nil && !failing:
				s.opts.Logger.Warn("redis store: age trimming failed; retrying", "err", err)
				failing = true
			case err == nil && failing:
				failing = false
			}
		}
	}
}

func (s *Store) trimAll(ctx context.Context, cutoff time.Time) error {
	arg := strconv.FormatInt(cutoff.UnixNano(), 10)
	var cursor uint64
	for {
		rooms, next, err := s.client.SScan(ctx, s.roomsIx, cursor, "", 256).Result()
		if err != nil {
			return err
		}
		for _, r := range rooms {
			keys := []string{s.roomKey(r, "log"), s.roomKey(r, "meta")}
			if err := runScript(ctx, s.client, trimAgeScript, keys, arg).Err(); err != nil {
				return fmt.Errorf("room %q: %w", r, err)
			}
		}
		if next == 0 {
			return nil
		}
		cursor = next
	}
}

// Close stops the age trimmer and ends Watch calls; every later call
// returns switchboard.ErrStoreClosed. The client is not closed.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return switchboard.ErrStoreClosed
	}
	close(s.done)
	s.cancel()
	s.wg.Wait()
	return nil
}
