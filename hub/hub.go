package hub

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	goredis "github.com/redis/go-redis/v9"
	"github.com/switchboard-io/switchboard"
	"github.com/switchboard-io/switchboard/web"
)

// Config configures a Hub. Zero fields take the defaults stated on them.
type Config struct {
	// Server configures the Socket.IO server the hub creates. The hub sets
	// its Identity function; Store (nil: no durable rooms), Logger,
	// ConnectionStateRecovery, limits and the adapter are used as given.
	Server switchboard.Options

	// JWTSecret verifies HS256/HS384/HS512 tokens.
	JWTSecret []byte
	// JWTPublicKey verifies RS*/PS* (RSA), ES* (ECDSA) or EdDSA tokens; see
	// ParsePublicKey.
	JWTPublicKey crypto.PublicKey
	// JWTLeeway is the clock skew allowed on exp and nbf. Default 0: none;
	// at most MaxLeeway.
	JWTLeeway time.Duration

	// APIKey is the bearer token of the HTTP API. Without it, the API is
	// open in development mode and closed (401) otherwise.
	APIKey string

	// DurableRooms names the durable rooms (path.Match patterns). Default
	// none.
	DurableRooms Patterns
	// PresenceRooms names the rooms with presence notices. Default none.
	PresenceRooms Patterns

	// DedupeWindow is how long a publish id is remembered. Default 2 min.
	DedupeWindow time.Duration
	// DedupeMaxIDs bounds the ids remembered (oldest forgotten first).
	// Default 100,000.
	DedupeMaxIDs int
	// MaxBodyBytes bounds HTTP API request bodies. Default 1 MiB.
	MaxBodyBytes int64
	// MaxNameLen bounds room and event names, in bytes. Default 256.
	MaxNameLen int
	// StoreTimeout bounds one store operation of a request. Default 10 s.
	StoreTimeout time.Duration

	// Ready, if set, is consulted by /readyz (for example a cluster
	// adapter's health); a non-nil error makes the hub not ready.
	Ready func() error
	// Redis, when set, makes the hub a cluster member: presence and the
	// publish dedupe memory live in Redis and cover every node sharing
	// it and RedisPrefix (see clusterState). Server.Adapter should be the
	// cluster adapter (package redis) on the same Redis, and Server.Store
	// a store shared by the nodes (redis.NewStore).
	Redis goredis.UniversalClient
	// RedisPrefix starts the hub's Redis keys. Default "sb".
	RedisPrefix string
	// NodeTTL is how long a node that stopped renewing its heartbeat (every
	// NodeTTL/3) counts as alive; then the other nodes remove its presence
	// members. Default 15 s.
	NodeTTL time.Duration

	// Version is reported by /metrics (switchboard_build_info) and
	// /healthz.
	Version string

	// ClientJS is served at /socket.io/socket.io.js and /switchboard.js.
	// Default web.ClientJS.
	ClientJS []byte
	// Demo is served at / . Default web.Demo().
	Demo fs.FS

	// Logger receives the hub's logs. Default Server.Logger, then
	// slog.Default().
	Logger *slog.Logger
}

// Error codes of the client protocol and the HTTP API.
const (
	CodeForbidden    = "forbidden"
	CodeNotDurable   = "not_durable"
	CodeInvalidEvent = "invalid_event"
	CodeBadRequest   = "bad_request"
	CodeInternal     = "internal"
	CodeUnauthorized = "unauthorized" // HTTP API only
	CodeNotFound     = "not_found"    // HTTP API only
	CodeTooLarge     = "too_large"    // HTTP API only
	CodeMethod       = "method_not_allowed"
)

// Hub is the standalone Switchboard hub: a Socket.IO server speaking the
// hub client protocol on the default namespace, with JWT authentication,
// durable rooms, presence, idempotent publish, an HTTP API, health checks
// and metrics. Its methods are safe for concurrent use.
type Hub struct {
	cfg            Config
	srv            *switchboard.Server
	ns             *switchboard.Namespace
	store          switchboard.Store
	log            *slog.Logger
	verifier       *verifier // nil in development mode
	rooms          *rooms
	dedupe         *dedupe
	cluster        *clusterState // nil on a single node
	metrics        *metrics
	recoveryWindow time.Duration // 0 when recovery is off
	draining       atomic.Bool
	handler        http.Handler
}

// New creates a hub and its Socket.IO server.
func New(cfg *Config) (*Hub, error) {
	c := *cfg
	if c.DedupeWindow <= 0 {
		c.DedupeWindow = 2 * time.Minute
	}
	if c.DedupeMaxIDs <= 0 {
		c.DedupeMaxIDs = 100_000
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if c.MaxNameLen <= 0 {
		c.MaxNameLen = 256
	}
	if c.StoreTimeout <= 0 {
		c.StoreTimeout = 10 * time.Second
	}
	if c.ClientJS == nil {
		c.ClientJS = web.ClientJS
	}
	if c.Demo == nil {
		c.Demo = web.Demo()
	}
	if c.Logger == nil {
		c.Logger = c.Server.Logger
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Server.Logger == nil {
		c.Server.Logger = c.Logger
	}
	v, err := newVerifier(c.JWTSecret, c.JWTPublicKey, c.JWTLeeway)
	if err != nil {
		return nil, err
	}
	h := &Hub{cfg: c, store: c.Server.Store, log: c.Logger, verifier: v}
	if r := c.Server.ConnectionStateRecovery; r != nil {
		h.recoveryWindow = r.MaxDisconnectionDuration
		if h.recoveryWindow <= 0 {
			h.recoveryWindow = 2 * time.Minute
		}
	}
	if c.RedisPrefix == "" {
		c.RedisPrefix = "sb"
	}
	if c.NodeTTL <= 0 {
		c.NodeTTL = 15 * time.Second
	}
	h.cfg = c
	h.rooms = newRooms(h)
	h.dedupe = newDedupe(c.DedupeWindow, c.DedupeMaxIDs)
	h.metrics = newMetrics(h)

	opts := c.Server
	opts.Identity = func(s *switchboard.Socket) string {
		if info := infoOf(s.Data()); info != nil {
			return info.durableIdentity()
		}
		return ""
	}
	h.srv = switchboard.NewServer(&opts)
	h.ns = h.srv.Of("/")
	h.ns.Use(h.authenticate)
	h.ns.OnRoomEvent(h.rooms.onRoomEvent)
	h.ns.OnConnection(h.onConnection)
	h.handler = h.routes()
	if c.Redis != nil {
		h.cluster = newClusterState(h)
	}
	return h, nil
}

// DevMode reports whether the hub runs without token verification: any
// client may connect, name its identity ({clientId} in the auth payload),
// join and publish anywhere, and the HTTP API is open unless an API key is
// set.
func (h *Hub) DevMode() bool { return h.verifier == nil }

// Server returns the hub's Socket.IO server.
func (h *Hub) Server() *switchboard.Server { return h.srv }

// ServeHTTP serves the hub: Socket.IO at /socket.io/, the JS client, the
// demo page, the HTTP API, /healthz, /readyz and /metrics.
func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.handler.ServeHTTP(w, r) }

// Drain makes /readyz answer 503, so load balancers stop sending new
// clients, while everything else keeps working.
func (h *Hub) Drain() { h.draining.Store(true) }

// Close drains the hub, disconnects every client with reason "server
// shutting down" (a reason after which clients reconnect and may recover
// their session), and waits until ctx ends for the server's goroutines,
// which saves the durable acknowledgements received so far. It does not
// close the store, which belongs to the caller: close it after Close.
func (h *Hub) Close(ctx context.Context) error {
	h.Drain()
	err := h.srv.Close(ctx)
	h.rooms.close()
	if h.cluster != nil {
		h.cluster.close(ctx, h.recoveryWindow)
	}
	return err
}

// authenticate is the default namespace's middleware.
func (h *Hub) authenticate(s *switchboard.Socket) error {
	hs := s.Handshake()
	if h.verifier == nil {
		info := &connInfo{Dev: true}
		var a struct {
			ClientID any `json:"clientId"`
		}
		if len(hs.Auth) > 0 {
			_ = json.Unmarshal(hs.Auth, &a)
		}
		if id, ok := a.ClientID.(string); ok && id != "" && len(id) <= MaxIDLen && utf8.ValidString(id) {
			info.Identity = id
		} else {
			info.Identity, info.Anon = "anon-"+s.ID(), true
		}
		s.SetData(info)
		return nil
	}
	claims, err := h.verifier.verify(tokenFrom(hs.Auth, hs.Headers))
	if err != nil {
		h.metrics.authFailures.Inc()
		h.log.Debug("connection refused", "address", hs.Address, "err", err)
		return &switchboard.ConnectError{Message: CodeUnauthorized}
	}
	s.SetData(&connInfo{Identity: claims.Subject, Rooms: claims.Rooms, Publish: claims.Publish})
	return nil
}

func (h *Hub) onConnection(s *switchboard.Socket) {
	s.On("join", func(a switchboard.Args, ack switchboard.AckFunc) { ack(h.join(s, a)) })
	s.On("leave", func(a switchboard.Args, ack switchboard.AckFunc) { ack(h.leave(s, a)) })
	s.On("publish", func(a switchboard.Args, ack switchboard.AckFunc) {
		h.publishFromSocket(s, a, func(ans answer) { ack(ans) })
	})
	s.On("presence", func(a switchboard.Args, ack switchboard.AckFunc) { ack(h.presence(s, a)) })
	// echo answers with its arguments: a round-trip check for clients.
	s.On("echo", func(a switchboard.Args, ack switchboard.AckFunc) { ack(a.Echo()...) })
	if h.recoveryWindow > 0 {
		sid := s.ID()
		s.On("disconnecting", func(reason string) {
			if switchboard.IsRecoverable(reason) {
				h.rooms.setDropping(sid, true)
			}
		})
		s.On("disconnect", func(string) { h.rooms.setDropping(sid, false) })
	}
}

// answer is an acknowledgement of the client protocol.
type answer map[string]any

func ok(kv ...any) answer {
	a := answer{"ok": true}
	for i := 0; i+1 < len(kv); i += 2 {
		a[kv[i].(string)] = kv[i+1]
	}
	return a
}

func fail(code, format string, args ...any) answer {
	return answer{"ok": false, "error": code, "message": fmt.Sprintf(format, args...)}
}

// reservedEvents may not be published: socket.io's reserved names, and
// anything starting with "switchboard:".
var reservedEvents = map[string]bool{
	"connect": true, "connect_error": true, "disconnect": true, "disconnecting": true,
	"newListener": true, "removeListener": true,
}

// checkEvent validates an event name to publish.
func (h *Hub) checkEvent(event string) answer {
	switch {
	case event == "":
		return fail(CodeInvalidEvent, "event name is empty")
	case len(event) > h.cfg.MaxNameLen || !utf8.ValidString(event):
		return fail(CodeInvalidEvent, "event name is longer than %d bytes or not UTF-8", h.cfg.MaxNameLen)
	case reservedEvents[event] || strings.HasPrefix(event, "switchboard:"):
		return fail(CodeInvalidEvent, "event name %q is reserved", event)
	}
	return nil
}

// checkRoom validates a room name.
func (h *Hub) checkRoom(room string) answer {
	if room == "" {
		return fail(CodeBadRequest, "room name is empty")
	}
	if len(room) > h.cfg.MaxNameLen || !utf8.ValidString(room) {
		return fail(CodeBadRequest, "room name is longer than %d bytes or not UTF-8", h.cfg.MaxNameLen)
	}
	for _, r := range room {
		if r < 0x20 || r == 0x7f {
			return fail(CodeBadRequest, "room name contains a control character")
		}
	}
	return nil
}

// IsDurable reports whether room is durable (matches Config.DurableRooms
// and the hub has a store).
func (h *Hub) IsDurable(room string) bool {
	return h.store != nil && h.cfg.DurableRooms.Match(room)
}

func (h *Hub) isPresence(room string) bool { return h.cfg.PresenceRooms.Match(room) }

func (h *Hub) info(s *switchboard.Socket) *connInfo {
	if info := infoOf(s.Data()); info != nil {
		return info
	}
	return &connInfo{} // allows nothing
}

// clientRoom decodes and checks the room argument of join, leave and
// presence, and the permission to join it.
func (h *Hub) clientRoom(s *switchboard.Socket, a switchboard.Args) (string, answer) {
	var room string
	if a.Len() == 0 || a.Decode(0, &room) != nil {
		return "", fail(CodeBadRequest, "the first argument must be a room name")
	}
	if bad := h.checkRoom(room); bad != nil {
		return "", bad
	}
	if h.ns.Socket(room) != nil || room == s.ID() {
		return "", fail(CodeForbidden, "room %q is a connection's own room", room)
	}
	return room, nil
}

type roomOpts struct {
	Durable bool    `json:"durable"`
	From    *uint64 `json:"from"`
}

func decodeOpts(a switchboard.Args, i int) (roomOpts, answer) {
	var o roomOpts
	if a.Len() <= i || string(a.Raw[i]) == "null" {
		return o, nil
	}
	if err := a.Decode(i, &o); err != nil {
		return o, fail(CodeBadRequest, "options must be an object like {durable: true}: %v", err)
	}
	return o, nil
}

func (h *Hub) storeCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), h.cfg.StoreTimeout)
}

func (h *Hub) join(s *switchboard.Socket, a switchboard.Args) answer {
	room, bad := h.clientRoom(s, a)
	if bad != nil {
		return bad
	}
	opts, bad := decodeOpts(a, 1)
	if bad != nil {
		return bad
	}
	info := h.info(s)
	if !info.canJoin(room) {
		return fail(CodeForbidden, "not allowed to join %q", room)
	}
	if !opts.Durable {
		if opts.From != nil {
			return fail(CodeBadRequest, "from applies to durable joins only")
		}
		if err := s.Join(room); err != nil {
			return h.opError(err)
		}
		return ok()
	}
	if !h.IsDurable(room) {
		return fail(CodeNotDurable, "room %q is not durable", room)
	}
	if info.durableIdentity() == "" {
		return fail(CodeBadRequest, "durable subscriptions need an identity: connect with a token (or a clientId in development mode)")
	}
	ctx, cancel := h.storeCtx()
	defer cancel()
	var err error
	if opts.From != nil {
		err = s.JoinDurableFrom(ctx, room, *opts.From)
	} else {
		err = s.JoinDurable(ctx, room)
	}
	if err != nil {
		return h.opError(err)
	}
	return ok()
}

func (h *Hub) leave(s *switchboard.Socket, a switchboard.Args) answer {
	room, bad := h.clientRoom(s, a)
	if bad != nil {
		return bad
	}
	opts, bad := decodeOpts(a, 1)
	if bad != nil {
		return bad
	}
	if !opts.Durable {
		s.StopDurable(room)
		return ok()
	}
	if !h.IsDurable(room) {
		return fail(CodeNotDurable, "room %q is not durable", room)
	}
	if h.info(s).durableIdentity() == "" {
		return fail(CodeBadRequest, "durable subscriptions need an identity")
	}
	ctx, cancel := h.storeCtx()
	defer cancel()
	if err := s.LeaveDurable(ctx, room); err != nil {
		return h.opError(err)
	}
	return ok()
}

func (h *Hub) presence(s *switchboard.Socket, a switchboard.Args) answer {
	room, bad := h.clientRoom(s, a)
	if bad != nil {
		return bad
	}
	if !h.info(s).canJoin(room) {
		return fail(CodeForbidden, "not allowed in %q", room)
	}
	if !h.isPresence(room) {
		return fail(CodeBadRequest, "room %q has no presence (see --presence-rooms)", room)
	}
	ctx, cancel := h.storeCtx()
	defer cancel()
	ids, err := h.rooms.identities(ctx, room)
	if err != nil {
		return h.opError(err)
	}
	return ok("room", room, "identities", ids)
}

// opError turns an error of the switchboard API into an answer.
func (h *Hub) opError(err error) answer {
	switch {
	case errors.Is(err, switchboard.ErrTooManyRooms):
		return fail(CodeBadRequest, "%v", err)
	case errors.Is(err, switchboard.ErrReservedEvent):
		return fail(CodeInvalidEvent, "%v", err)
	case errors.Is(err, switchboard.ErrNoStore):
		return fail(CodeNotDurable, "%v", err)
	}
	h.log.Error("hub operation failed", "err", err)
	return fail(CodeInternal, "internal error")
}

// publishRequest is the argument of publish and the body of POST
// /api/publish.
type publishRequest struct {
	Room  string  `json:"room"`
	Event string  `json:"event"`
	Data  any     `json:"data"` // json.RawMessage, or a generic value holding []byte
	ID    *string `json:"id"`
}

// liveMeta is the meta argument of a delivery from a room that is not
// durable (durable rooms use switchboard.DeliveryMeta).
type liveMeta struct {
	Room string `json:"room"`
	From string `json:"from,omitempty"`
}

// publishFromSocket answers a socket's publish through done. A durable
// publish without an id is pipelined: it joins the store's next group commit
// and done runs from the store's confirm, so a client with many publishes in
// flight is not held to one commit each (offsets follow its order). Others
// (live rooms, and durable ones with an id, which go through dedupe) are
// answered before it returns.
func (h *Hub) publishFromSocket(s *switchboard.Socket, a switchboard.Args, done func(answer)) {
	start := time.Now()
	req, from, failed := h.checkSocketPublish(s, a, start)
	if failed != nil {
		done(failed)
		return
	}
	durable := h.IsDurable(req.Room)
	if durable && req.ID == nil && h.checkEvent(req.Event) == nil {
		ctx, cancel := h.storeCtx()
		s.PublishAsync(ctx, req.Room, req.Event, []any{req.Data}, func(offset uint64, err error) {
			cancel()
			out := ok()
			if err != nil {
				out = h.opError(err)
			} else {
				out["offset"] = offset
			}
			done(h.countPublish("socket", start, true, out))
		})
		return
	}
	done(h.countPublish("socket", start, durable, h.doPublish(s, from, req)))
}

// checkSocketPublish decodes and checks a socket's publish; failed is the
// (counted) answer when it cannot go ahead.
func (h *Hub) checkSocketPublish(s *switchboard.Socket, a switchboard.Args, start time.Time) (req publishRequest, from string, failed answer) {
	if a.Len() == 0 {
		return req, "", h.countPublish("socket", start, false, fail(CodeBadRequest, "publish expects {room, event, data, id?}"))
	}
	if len(a.Attachments) > 0 {
		// Binary data: decode generically so that the attachments travel on.
		var whole map[string]any
		if err := a.Decode(0, &whole); err != nil {
			return req, "", h.countPublish("socket", start, false, fail(CodeBadRequest, "publish expects {room, event, data, id?}"))
		}
		req.Room, _ = whole["room"].(string)
		req.Event, _ = whole["event"].(string)
		req.Data = whole["data"]
		if id, ok := whole["id"].(string); ok {
			req.ID = &id
		} else if whole["id"] != nil {
			return req, "", h.countPublish("socket", start, false, fail(CodeBadRequest, "id must be a string"))
		}
	} else {
		var raw struct {
			Room  string          `json:"room"`
			Event string          `json:"event"`
			Data  json.RawMessage `json:"data"`
			ID    *string         `json:"id"`
		}
		if err := a.Decode(0, &raw); err != nil {
			return req, "", h.countPublish("socket", start, false, fail(CodeBadRequest, "publish expects {room, event, data, id?}: %v", err))
		}
		req = publishRequest{Room: raw.Room, Event: raw.Event, Data: rawOrNull(raw.Data), ID: raw.ID}
	}
	info := h.info(s)
	if bad := h.checkRoom(req.Room); bad != nil {
		return req, "", h.countPublish("socket", start, false, bad)
	}
	if h.ns.Socket(req.Room) != nil {
		return req, "", h.countPublish("socket", start, false, fail(CodeForbidden, "room %q is a connection's own room", req.Room))
	}
	if !info.canPublish(req.Room) {
		return req, "", h.countPublish("socket", start, false, fail(CodeForbidden, "not allowed to publish to %q", req.Room))
	}
	return req, info.Identity, nil
}

// doPublish publishes a checked request (room and permission already
// checked) from a socket (nil for the HTTP API), with dedupe.
func (h *Hub) doPublish(s *switchboard.Socket, from string, req publishRequest) answer {
	if bad := h.checkEvent(req.Event); bad != nil {
		return bad
	}
	if req.ID != nil && (*req.ID == "" || len(*req.ID) > MaxIDLen) {
		return fail(CodeBadRequest, "id must be a string of 1 to %d bytes", MaxIDLen)
	}
	durable := h.IsDurable(req.Room)
	publish := func() (publishResult, error) {
		if durable {
			ctx, cancel := h.storeCtx()
			defer cancel()
			var offset uint64
			var err error
			if s != nil {
				offset, err = s.Publish(ctx, req.Room, req.Event, req.Data)
			} else {
				offset, err = h.ns.Publish(ctx, req.Room, req.Event, req.Data)
			}
			return publishResult{Offset: offset}, err
		}
		meta := liveMeta{Room: req.Room, From: from}
		b := h.ns.To(req.Room)
		if s != nil {
			b = s.To(req.Room)
		}
		return publishResult{}, b.Emit(req.Event, req.Data, meta)
	}
	var (
		res publishResult
		dup bool
		err error
	)
	if req.ID != nil {
		ctx, cancel := h.storeCtx()
		if h.cluster != nil {
			res, dup, err = h.cluster.dedupe(ctx, req.Room, *req.ID, h.cfg.DedupeWindow, 2*h.cfg.StoreTimeout, publish)
		} else {
			res, dup, err = h.dedupe.do(ctx, req.Room, *req.ID, publish)
		}
		cancel()
	} else {
		res, err = publish()
	}
	if err != nil {
		return h.opError(err)
	}
	out := ok()
	if durable {
		out["offset"] = res.Offset
	}
	if dup {
		out["duplicate"] = true
	}
	return out
}

// countPublish records a publish's result and latency.
func (h *Hub) countPublish(source string, start time.Time, durable bool, a answer) answer {
	result := "ok"
	switch {
	case a["ok"] != true:
		switch a["error"] {
		case CodeForbidden:
			result = "forbidden"
		case CodeInternal:
			result = "error"
		default:
			result = "invalid"
		}
	case a["duplicate"] == true:
		result = "duplicate"
	}
	h.metrics.publishes.WithLabelValues(source, result).Inc()
	if result == "ok" || result == "duplicate" {
		d := "false"
		if durable {
			d = "true"
		}
		h.metrics.publishLatency.WithLabelValues(source, d).Observe(time.Since(start).Seconds())
	}
	return a
}

// durableRoomNames lists the default namespace's durable rooms with a log.
func (h *Hub) durableRoomNames(ctx context.Context) ([]string, error) {
	keys, err := h.store.Rooms(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, k := range keys {
		if room, ok := strings.CutPrefix(k, "/#"); ok {
			out = append(out, room)
		}
	}
	slices.Sort(out)
	return out, nil
}

// durableKey is the store's name of a room of the default namespace.
func durableKey(room string) string { return "/#" + room }

func rawOrNull(b json.RawMessage) json.RawMessage {
	if len(b) == 0 {
		return json.RawMessage("null")
	}
	return b
}
