package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/parser"
)

// adapter is the Adapter of one namespace: the local room index (embedded
// LocalAdapter) plus the cluster messages of socket.io's ClusterAdapter.
type adapter struct {
	*switchboard.LocalAdapter
	c        *Cluster
	ns       *switchboard.Namespace
	nsp      string
	uid      string
	stream   string
	public   string // socket.io#<nsp>#
	private  string // socket.io#<nsp>#<uid>#
	recovery *switchboard.RecoveryOptions

	mu       sync.Mutex
	closed   bool
	requests map[string]*request    // fetchSockets and serverSideEmit
	acks     map[string]*ackRequest // broadcasts with acknowledgements
}

var (
	_ switchboard.Adapter       = (*adapter)(nil)
	_ switchboard.SessionKeeper = (*adapter)(nil)
)

func newAdapter(c *Cluster, ns *switchboard.Namespace) *adapter {
	uid := randomID()
	return &adapter{
		LocalAdapter: switchboard.NewLocal(ns),
		c:            c,
		ns:           ns,
		nsp:          ns.Name(),
		uid:          uid,
		stream:       c.streamFor(ns.Name()),
		public:       c.opts.ChannelPrefix + "#" + ns.Name() + "#",
		private:      c.opts.ChannelPrefix + "#" + ns.Name() + "#" + uid + "#",
		recovery:     ns.Server().RecoveryOptions(),
		requests:     make(map[string]*request),
		acks:         make(map[string]*ackRequest),
	}
}

// request waits for the other nodes' answers to a fetchSockets or a
// serverSideEmit.
type request struct {
	typ      int
	expected int
	got      int
	sockets  []*switchboard.RemoteSocket
	answers  []switchboard.Args
	done     chan struct{}
}

// ackRequest collects the answers to a broadcast with acknowledgements:
// the local client count plus one count per other node is reported once,
// as one total, since switchboard's EmitWithAck expects one count per
// adapter.
type ackRequest struct {
	mu          sync.Mutex
	remaining   int // other nodes yet to report a count
	localDone   bool
	total       int
	reported    bool
	clientCount func(int)
	ack         func(switchboard.Args)
	timer       *time.Timer
}

func (r *ackRequest) count(n int, local bool) {
	r.mu.Lock()
	r.total += n
	if local {
		r.localDone = true
	} else {
		r.remaining--
	}
	report := !r.reported && r.localDone && r.remaining <= 0
	if report {
		r.reported = true
	}
	total := r.total
	r.mu.Unlock()
	if report {
		r.clientCount(total)
	}
}

// opContext bounds a Redis call made by a method without a ctx.
func (a *adapter) opContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), a.c.opts.RequestTimeout)
}

// isClosed reports whether the adapter or its Cluster was closed.
func (a *adapter) isClosed() bool {
	a.mu.Lock()
	closed := a.closed
	a.mu.Unlock()
	if closed {
		return true
	}
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	return a.c.closed
}

// xadd appends a persistent message to the stream and returns its id.
func (a *adapter) xadd(typ int, data any) (string, error) {
	if a.isClosed() {
		return "", ErrClosed
	}
	values, err := streamValues(a.uid, a.nsp, typ, data)
	if err != nil {
		return "", err
	}
	ctx, cancel := a.opContext()
	defer cancel()
	id, err := a.c.client.XAdd(ctx, &goredis.XAddArgs{
		Stream: a.stream,
		MaxLen: a.c.opts.MaxLen,
		Approx: true,
		ID:     "*",
		Values: values,
	}).Result()
	if err != nil {
		return "", fmt.Errorf("redis: XADD %s: %w", a.stream, err)
	}
	return id, nil
}

// publish sends a request on the public channel.
func (a *adapter) publish(typ int, data any) error {
	if a.isClosed() {
		return ErrClosed
	}
	ctx, cancel := a.opContext()
	defer cancel()
	if err := a.c.client.Publish(ctx, a.public, pubSubPayload(a.uid, a.nsp, typ, data)).Err(); err != nil {
		return fmt.Errorf("redis: PUBLISH %s: %w", a.public, err)
	}
	return nil
}

// respond sends a response to the requester's channel.
func (a *adapter) respond(requester string, typ int, data any) {
	ch := a.c.opts.ChannelPrefix + "#" + a.nsp + "#" + requester + "#"
	ctx, cancel := a.opContext()
	defer cancel()
	if err := a.c.client.Publish(ctx, ch, pubSubPayload(a.uid, a.nsp, typ, data)).Err(); err != nil {
		a.c.opts.Logger.Warn("redis: cannot answer a cluster request", "nsp", a.nsp, "type", typ, "err", err)
	}
}

// storable reports whether socket.io keeps a broadcast for recovery.
func (a *adapter) storable(p *parser.Packet, opts switchboard.BroadcastOptions) bool {
	return a.recovery != nil && p.Type == parser.Event && !p.HasID && !opts.Flags.Volatile
}

// Broadcast implements switchboard.Adapter: the packet is added to the
// stream, then delivered to the local sockets, with the entry id as its
// offset when connection-state recovery is on. If Redis fails, the local
// sockets still receive it and the error is returned.
func (a *adapter) Broadcast(p *parser.Packet, opts switchboard.BroadcastOptions) error {
	if opts.Flags.Local {
		a.Deliver(p, opts)
		return nil
	}
	data, err := encodeBroadcast(p, opts, "")
	if err != nil {
		return err
	}
	id, err := a.xadd(typeBroadcast, data)
	if err == nil && a.storable(p, opts) {
		q := *p
		q.Data = appendOffset(p.Data, id)
		p = &q
	}
	a.Deliver(p, opts)
	return err
}

// BroadcastWithAck implements switchboard.Adapter. clientCount is called
// once, with the total over every node, when the local node and every
// other node counted; a node that never answers leaves it uncalled, and
// EmitWithAck then ends with its timeout.
func (a *adapter) BroadcastWithAck(p *parser.Packet, opts switchboard.BroadcastOptions, clientCount func(int), ack func(switchboard.Args)) error {
	if opts.Flags.Local {
		return a.LocalAdapter.BroadcastWithAck(p, opts, clientCount, ack)
	}
	ctx, cancel := a.opContext()
	n, err := a.ServerCount(ctx)
	cancel()
	if err != nil {
		_ = a.LocalAdapter.BroadcastWithAck(p, opts, clientCount, ack)
		return err
	}
	req := &ackRequest{remaining: n - 1, clientCount: clientCount, ack: ack}
	if n > 1 {
		rid := randomID()
		data, err := encodeBroadcast(p, opts, rid)
		if err != nil {
			return err
		}
		life := defaultBroadcastAckLifetime
		if opts.Flags.Timeout > 0 {
			life = opts.Flags.Timeout + time.Second
		}
		a.mu.Lock()
		a.acks[rid] = req
		req.timer = time.AfterFunc(life, func() {
			a.mu.Lock()
			delete(a.acks, rid)
			a.mu.Unlock()
		})
		a.mu.Unlock()
		if err := a.publish(typeBroadcast, data); err != nil {
			a.mu.Lock()
			delete(a.acks, rid)
			a.mu.Unlock()
			req.timer.Stop()
			req.remaining = 0
			_ = a.LocalAdapter.BroadcastWithAck(p, opts, func(n int) { req.count(n, true) }, ack)
			return err
		}
	}
	return a.LocalAdapter.BroadcastWithAck(p, opts, func(n int) { req.count(n, true) }, ack)
}

// AddSockets implements switchboard.Adapter.
func (a *adapter) AddSockets(opts switchboard.BroadcastOptions, rooms []string) error {
	var err error
	if !opts.Flags.Local {
		data, _ := treeToJSON(obj{{"opts", optsTree(opts)}, {"rooms", strs(rooms)}})
		_, err = a.xadd(typeSocketsJoin, data)
	}
	if lerr := a.LocalAdapter.AddSockets(opts, rooms); lerr != nil && err == nil {
		err = lerr
	}
	return err
}

// DelSockets implements switchboard.Adapter.
func (a *adapter) DelSockets(opts switchboard.BroadcastOptions, rooms []string) error {
	var err error
	if !opts.Flags.Local {
		data, _ := treeToJSON(obj{{"opts", optsTree(opts)}, {"rooms", strs(rooms)}})
		_, err = a.xadd(typeSocketsLeave, data)
	}
	if lerr := a.LocalAdapter.DelSockets(opts, rooms); lerr != nil && err == nil {
		err = lerr
	}
	return err
}

// DisconnectSockets implements switchboard.Adapter.
func (a *adapter) DisconnectSockets(opts switchboard.BroadcastOptions, close bool) error {
	var err error
	if !opts.Flags.Local {
		data, _ := treeToJSON(obj{{"opts", optsTree(opts)}, {"close", close}})
		_, err = a.xadd(typeDisconnectSockets, data)
	}
	if lerr := a.LocalAdapter.DisconnectSockets(opts, close); lerr != nil && err == nil {
		err = lerr
	}
	return err
}

// ServerCount implements switchboard.Adapter: the subscribers of the
// namespace's public channel (PUBSUB NUMSUB), this node included.
func (a *adapter) ServerCount(ctx context.Context) (int, error) {
	if cc, ok := a.c.client.(*goredis.ClusterClient); ok {
		var mu sync.Mutex
		total := 0
		err := cc.ForEachShard(ctx, func(ctx context.Context, shard *goredis.Client) error {
			m, err := shard.PubSubNumSub(ctx, a.public).Result()
			mu.Lock()
			total += int(m[a.public])
			mu.Unlock()
			return err
		})
		if err != nil {
			return 0, fmt.Errorf("redis: PUBSUB NUMSUB: %w", err)
		}
		return total, nil
	}
	m, err := a.c.client.PubSubNumSub(ctx, a.public).Result()
	if err != nil {
		return 0, fmt.Errorf("redis: PUBSUB NUMSUB: %w", err)
	}
	return int(m[a.public]), nil
}

// newRequest registers a request expecting n answers.
func (a *adapter) newRequest(typ, n int) (string, *request) {
	rid := randomID()
	r := &request{typ: typ, expected: n, done: make(chan struct{})}
	a.mu.Lock()
	a.requests[rid] = r
	a.mu.Unlock()
	return rid, r
}

// await waits for a request's answers until ctx ends or timeout passes,
// and forgets it. It reports whether every answer arrived.
func (a *adapter) await(ctx context.Context, rid string, r *request, timeout time.Duration) bool {
	t := time.NewTimer(timeout)
	defer t.Stop()
	ok := false
	select {
	case <-r.done:
		ok = true
	case <-t.C:
	case <-ctx.Done():
	}
	a.mu.Lock()
	delete(a.requests, rid)
	a.mu.Unlock()
	return ok
}

// FetchSockets implements switchboard.Adapter: the local sockets plus
// those every other node describes. If a node does not answer within
// Options.RequestTimeout (or the broadcast's timeout), the sockets found
// are returned with an error wrapping switchboard.ErrAckTimeout.
func (a *adapter) FetchSockets(ctx context.Context, opts switchboard.BroadcastOptions) ([]*switchboard.RemoteSocket, error) {
	local, _ := a.LocalAdapter.FetchSockets(ctx, opts)
	if opts.Flags.Local {
		return local, nil
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return local, err
	}
	if n <= 1 {
		return local, nil
	}
	rid, r := a.newRequest(typeFetchSockets, n-1)
	if err := a.publish(typeFetchSockets, obj{{"opts", optsTree(opts)}, {"requestId", rid}}); err != nil {
		a.await(ctx, rid, r, 0)
		return local, err
	}
	timeout := a.c.opts.RequestTimeout
	if opts.Flags.Timeout > 0 {
		timeout = opts.Flags.Timeout
	}
	ok := a.await(ctx, rid, r, timeout)
	a.mu.Lock()
	out := append(local, r.sockets...)
	got := r.got
	a.mu.Unlock()
	if !ok {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		return out, fmt.Errorf("redis: fetchSockets: %d of %d nodes answered: %w", got, n-1, switchboard.ErrAckTimeout)
	}
	return out, nil
}

// ServerSideEmit implements switchboard.Adapter. With wantAck it waits for
// one answer per other node until ctx ends or Options.RequestTimeout
// passes (then the answers received come with an error wrapping
// switchboard.ErrAckTimeout).
func (a *adapter) ServerSideEmit(ctx context.Context, event string, args []any, wantAck bool) ([]switchboard.Args, error) {
	data, atts, err := parser.MarshalEvent(event, args...)
	if err != nil {
		return nil, err
	}
	packet, err := jsonToTree(data, atts)
	if err != nil {
		return nil, err
	}
	if !wantAck {
		return nil, a.publish(typeServerSideEmit, obj{{"packet", packet}})
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return nil, nil
	}
	rid, r := a.newRequest(typeServerSideEmit, n-1)
	if err := a.publish(typeServerSideEmit, obj{{"requestId", rid}, {"packet", packet}}); err != nil {
		a.await(ctx, rid, r, 0)
		return nil, err
	}
	ok := a.await(ctx, rid, r, a.c.opts.RequestTimeout)
	a.mu.Lock()
	answers, got := r.answers, r.got
	a.mu.Unlock()
	if !ok {
		if ctx.Err() != nil {
			return answers, ctx.Err()
		}
		return answers, fmt.Errorf("redis: serverSideEmit: %d of %d nodes answered: %w", got, n-1, switchboard.ErrAckTimeout)
	}
	return answers, nil
}

// Close implements switchboard.Adapter: the namespace leaves the cluster.
func (a *adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	a.mu.Unlock()
	a.c.keep.dropAdapter(a)
	a.c.release(a)
	a.dropRequests()
	return nil
}

// dropRequests ends the pending requests (their callers time out).
func (a *adapter) dropRequests() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for rid, r := range a.acks {
		r.timer.Stop()
		delete(a.acks, rid)
	}
}

// onMessage handles a message from another node; offset is the stream
// entry id ("" for pub/sub messages).
func (a *adapter) onMessage(m *message, offset string) {
	if m.uid == a.uid || m.nsp != a.nsp {
		return
	}
	switch m.typ {
	case typeBroadcast:
		b, err := decodeBroadcast(m)
		if err != nil {
			a.c.opts.Logger.Debug("redis: invalid broadcast", "err", err)
			return
		}
		a.onBroadcast(m.uid, b, offset)
	case typeSocketsJoin, typeSocketsLeave, typeDisconnectSockets:
		d, err := m.tree()
		if err != nil {
			return
		}
		opts, _ := decodeOpts(getObj(d, "opts"))
		switch m.typ {
		case typeSocketsJoin:
			if err := a.LocalAdapter.AddSockets(opts, getStrings(d, "rooms")); err != nil {
				a.c.opts.Logger.Debug("redis: remote socketsJoin", "err", err)
			}
		case typeSocketsLeave:
			_ = a.LocalAdapter.DelSockets(opts, getStrings(d, "rooms"))
		default:
			o, _ := d.(obj)
			cl, _ := o.get("close")
			_ = a.LocalAdapter.DisconnectSockets(opts, cl == true)
		}
	case typeFetchSockets:
		d, err := m.tree()
		if err != nil {
			return
		}
		a.onFetchSockets(m.uid, d)
	case typeServerSideEmit:
		d, err := m.tree()
		if err != nil {
			return
		}
		a.onServerSideEmit(m.uid, d)
	case typeFetchSocketsResponse, typeServerSideEmitResponse, typeBroadcastClientCount, typeBroadcastAck:
		d, err := m.tree()
		if err != nil {
			return
		}
		a.onResponse(m.typ, d)
	}
}

func (a *adapter) onBroadcast(requester string, b *broadcastData, offset string) {
	if b.packetType != packetTypeEvent && b.packetType != packetTypeBinaryEvent {
		return
	}
	p := &parser.Packet{Type: parser.Event, Namespace: a.nsp, Data: b.data, Attachments: b.atts}
	if b.hasRequest {
		rid := b.requestID
		_ = a.LocalAdapter.BroadcastWithAck(p, b.opts,
			func(n int) {
				a.respond(requester, typeBroadcastClientCount, obj{{"requestId", rid}, {"clientCount", int64(n)}})
			},
			func(args switchboard.Args) {
				a.respond(requester, typeBroadcastAck, obj{{"requestId", rid}, {"packet", argsTree(args)}})
			})
		return
	}
	if offset != "" && a.recovery != nil && b.packetType == packetTypeEvent && !b.hasPacketID && !b.hasVolatile {
		p.Data = appendOffset(p.Data, offset)
	}
	a.Deliver(p, b.opts)
}

func (a *adapter) onFetchSockets(requester string, d any) {
	opts, _ := decodeOpts(getObj(d, "opts"))
	rid := getString(d, "requestId")
	socks, _ := a.LocalAdapter.FetchSockets(context.Background(), opts)
	list := make([]any, 0, len(socks))
	for _, s := range socks {
		data, err := goToTree(s.Data)
		if err != nil {
			data = nil
		}
		if data == nil {
			data = obj{} // socket.data defaults to {} in socket.io
		}
		list = append(list, obj{
			{"id", s.ID},
			{"handshake", handshakeTree(s.Handshake)},
			{"rooms", strs(s.Rooms)},
			{"data", data},
		})
	}
	a.respond(requester, typeFetchSocketsResponse, obj{{"requestId", rid}, {"sockets", list}})
}

func (a *adapter) onServerSideEmit(requester string, d any) {
	o, _ := d.(obj)
	packet, _ := o.get("packet")
	arr, ok := packet.([]any)
	if !ok || len(arr) == 0 {
		return
	}
	data, atts := treeToJSON(arr)
	event, args, err := parser.EventName(data)
	if err != nil {
		return
	}
	var ack switchboard.AckFunc
	if rid, ok := o.get("requestId"); ok && rid != nil {
		var once sync.Once
		ack = func(args ...any) {
			once.Do(func() {
				var first any
				if len(args) > 0 {
					j, at, err := parser.MarshalArgs(args[0])
					if err == nil {
						first = argsTree(switchboard.Args{Raw: []json.RawMessage{j[1 : len(j)-1]}, Attachments: at})
					}
				}
				a.respond(requester, typeServerSideEmitResponse, obj{{"requestId", rid}, {"packet", first}})
			})
		}
	}
	a.ns.HandleServerSideEmit(event, args, atts, ack)
}

func (a *adapter) onResponse(typ int, d any) {
	rid := getString(d, "requestId")
	switch typ {
	case typeBroadcastClientCount, typeBroadcastAck:
		a.mu.Lock()
		r := a.acks[rid]
		a.mu.Unlock()
		if r == nil {
			return
		}
		if typ == typeBroadcastClientCount {
			n, _ := getNumber(d, "clientCount")
			r.count(int(n), false)
			return
		}
		o, _ := d.(obj)
		v, _ := o.get("packet")
		r.ack(treeArgs(v))
	case typeFetchSocketsResponse, typeServerSideEmitResponse:
		a.mu.Lock()
		defer a.mu.Unlock()
		r := a.requests[rid]
		if r == nil || r.got >= r.expected {
			return
		}
		r.got++
		o, _ := d.(obj)
		if typ == typeFetchSocketsResponse {
			socks, _ := o.get("sockets")
			list, _ := socks.([]any)
			for _, s := range list {
				r.sockets = append(r.sockets, remoteSocket(s))
			}
		} else {
			v, _ := o.get("packet")
			r.answers = append(r.answers, treeArgs(v))
		}
		if r.got == r.expected {
			close(r.done)
		}
	}
}

// remoteSocket reads a socket described by another node.
func remoteSocket(v any) *switchboard.RemoteSocket {
	s := &switchboard.RemoteSocket{ID: getString(v, "id"), Rooms: getStrings(v, "rooms")}
	o, _ := v.(obj)
	if d, ok := o.get("data"); ok {
		s.Data = sessionData(d)
	}
	h := getObj(v, "handshake")
	s.Handshake = switchboard.Handshake{
		Headers: http.Header{},
		Query:   url.Values{},
		Address: getString(h, "address"),
		URL:     getString(h, "url"),
	}
	if x, _ := h.get("secure"); x == true {
		s.Handshake.Secure = true
	}
	if x, _ := h.get("xdomain"); x == true {
		s.Handshake.XDomain = true
	}
	if ms, ok := getNumber(h, "issued"); ok {
		s.Handshake.Time = time.UnixMilli(int64(ms))
	}
	for _, e := range getObj(h, "headers") {
		s.Handshake.Headers[http.CanonicalHeaderKey(e.Key)] = stringValues(e.Val)
	}
	for _, e := range getObj(h, "query") {
		s.Handshake.Query[e.Key] = stringValues(e.Val)
	}
	if auth, ok := h.get("auth"); ok && auth != nil {
		j, _ := treeToJSON(auth)
		s.Handshake.Auth = j
	}
	return s
}

func stringValues(v any) []string {
	switch x := v.(type) {
	case string:
		return []string{x}
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	case nil:
		return nil
	}
	j, _ := treeToJSON(v)
	return []string{string(j)}
}

// handshakeTree describes a handshake as socket.io's Socket.handshake.
func handshakeTree(h switchboard.Handshake) obj {
	headers := obj{}
	for k, vs := range h.Headers {
		k = strings.ToLower(k)
		if k == "set-cookie" {
			headers = append(headers, kv{k, strs(vs)})
		} else {
			headers = append(headers, kv{k, strings.Join(vs, ", ")})
		}
	}
	query := obj{}
	for k, vs := range h.Query {
		if len(vs) == 1 {
			query = append(query, kv{k, vs[0]})
		} else {
			query = append(query, kv{k, strs(vs)})
		}
	}
	var auth any = obj{}
	if len(h.Auth) > 0 {
		if t, err := jsonToTree(h.Auth, nil); err == nil {
			auth = t
		}
	}
	return obj{
		{"headers", headers},
		{"time", jsDateString(h.Time)},
		{"address", h.Address},
		{"xdomain", h.XDomain},
		{"secure", h.Secure},
		{"issued", h.Time.UnixMilli()},
		{"url", h.URL},
		{"query", query},
		{"auth", auth},
	}
}

// jsDateString formats t as JavaScript's Date.prototype.toString in UTC.
func jsDateString(t time.Time) string {
	return t.UTC().Format("Mon Jan 02 2006 15:04:05") + " GMT+0000 (Coordinated Universal Time)"
}

// sessionData converts socket data from the wire: socket.io's default {}
// becomes nil, the Go default.
func sessionData(v any) any {
	if o, ok := v.(obj); ok && len(o) == 0 {
		return nil
	}
	return treeToGo(v)
}

var offsetRE = regexp.MustCompile(offsetPattern)
