package engineio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Options configures a Server. The zero value of every field selects the
// default documented on it; a nil *Options selects all defaults.
type Options struct {
	// Path is where the server is meant to be mounted; default "/socket.io/".
	// ServeHTTP itself does not check the path, only the query, so the server
	// also works when mounted elsewhere.
	Path string
	// PingInterval is the time between two server pings; default 25s.
	PingInterval time.Duration
	// PingTimeout is how long the server waits for the pong after a ping
	// before it closes the session with reason "ping timeout"; default 20s.
	PingTimeout time.Duration
	// UpgradeTimeout bounds a polling→websocket upgrade: a probe websocket
	// that has not completed the upgrade after it is closed (the session
	// keeps polling); default 10s.
	UpgradeTimeout time.Duration
	// MaxHTTPBufferSize is the largest accepted polling POST body and
	// websocket message in bytes (after inflation with permessage-deflate);
	// default 1e6. A POST over it gets 413 and the session stays; a websocket
	// message over it closes the connection with status 1009.
	MaxHTTPBufferSize int64
	// Transports lists the allowed transports, "polling" and/or "websocket";
	// default both.
	Transports []string
	// DisableUpgrades stops polling sessions from upgrading to websocket;
	// default false (upgrades offered when "websocket" is allowed).
	DisableUpgrades bool
	// AllowRequest, if non-nil, is called for every handshake request; a
	// non-nil error refuses it with 403 {"code":4,"message":"Forbidden"}.
	// It must be safe for concurrent use.
	AllowRequest func(r *http.Request) error
	// CORS configures cross-origin headers; nil (the default) sends none.
	CORS *CORSOptions
	// PerMessageDeflate enables websocket compression; nil (the default)
	// leaves it off.
	PerMessageDeflate *DeflateOptions
	// MaxBufferedBytes bounds the outbound data queued per connection (the
	// data of queued packets plus one byte each); default 4 MiB. A Send that
	// would exceed it closes the connection with reason "slow consumer".
	MaxBufferedBytes int
	// MaxConnections caps concurrent sessions; default 0 means unlimited.
	// A handshake over the cap gets 503.
	MaxConnections int
	// ReleaseIdleReaderAfter is how long a websocket may receive nothing
	// before its reader goroutine ends (it ends after between one and 1.25
	// times this); the connection then waits in an epoll set (Linux) with
	// no goroutine and no stack until data, the peer's close or the
	// server's close arrives. Default 100ms. Longer keeps readers of
	// connections that send every few hundred ms (saving a park and resume,
	// ~10 µs of CPU, per message) at the cost of memory in connection
	// storms; negative: readers never park (and on systems without epoll,
	// or for connections without a socket descriptor, they never do).
	ReleaseIdleReaderAfter time.Duration
	// Logger receives panics and unexpected errors; default slog.Default().
	Logger *slog.Logger
}

// CORSOptions configures the CORS headers a Server sends, in the manner of
// the Node "cors" package used by engine.io.
type CORSOptions struct {
	// Origins lists the allowed origins, exactly as browsers send them
	// ("https://example.com"); "*" allows any origin. Empty allows none.
	Origins []string
	// Credentials sends Access-Control-Allow-Credentials: true. With "*" the
	// request's Origin is echoed instead of "*", as browsers require.
	Credentials bool
	// AllowedHeaders lists the request headers allowed by a preflight;
	// default: echo Access-Control-Request-Headers.
	AllowedHeaders []string
	// MaxAge lets browsers cache a preflight answer; default 0: header omitted.
	MaxAge time.Duration
}

// DeflateOptions configures permessage-deflate (RFC 7692) on websockets.
// Inflated messages are bounded by Options.MaxHTTPBufferSize.
type DeflateOptions struct {
	// Threshold is the smallest message, in bytes, the server compresses;
	// default 1024 (as engine.io).
	Threshold int
	// Level is the flate compression level, 1 (fastest) to 9 (best); default 1.
	Level int
}

// Defaults.
const (
	defaultPath             = "/socket.io/"
	defaultPingInterval     = 25 * time.Second
	defaultPingTimeout      = 20 * time.Second
	defaultUpgradeTimeout   = 10 * time.Second
	defaultMaxHTTPBuffer    = 1_000_000
	defaultMaxBufferedBytes = 4 << 20
	defaultDeflateThreshold = 1024

	transportPolling   = "polling"
	transportWebsocket = "websocket"
)

// Engine.IO HTTP error codes.
const (
	errUnknownTransport    = 0
	errUnknownSID          = 1
	errBadHandshakeMethod  = 2
	errBadRequest          = 3
	errForbidden           = 4
	errUnsupportedProtocol = 5
)

var errorMessages = [...]string{
	errUnknownTransport:    "Transport unknown",
	errUnknownSID:          "Session ID unknown",
	errBadHandshakeMethod:  "Bad handshake method",
	errBadRequest:          "Bad request",
	errForbidden:           "Forbidden",
	errUnsupportedProtocol: "Unsupported protocol version",
}

// OpenInfo is the payload of the open packet that starts every session.
// Durations are in milliseconds.
type OpenInfo struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   int      `json:"maxPayload"`
}

// Server is an Engine.IO v4 server: it accepts sessions over HTTP
// long-polling and websocket, upgrades polling sessions to websocket, and
// keeps them alive with heartbeats. Create it with NewServer and mount it on
// an http.ServeMux; its methods are safe for concurrent use.
type Server struct {
	opts     Options
	log      *slog.Logger
	onConn   func(*Conn)
	upgrader websocket.Upgrader
	polling  bool // polling allowed
	wsOK     bool // websocket allowed
	upgrades []string
	poller   *poller // nil when idle readers never park

	mu       sync.Mutex
	conns    map[string]*Conn
	reserved int // handshakes counted against MaxConnections but not yet registered
	closed   bool
	// wg counts the open ServeHTTP calls, the live sessions (one each, from
	// handshake until onClose returned) and every goroutine the package starts.
	wg sync.WaitGroup
}

// NewServer returns a Server configured by opts (nil: defaults) that calls
// onConnection for every new session, before any message of the session is
// delivered. onConnection runs on the handshake request's goroutine; it should
// call Conn.SetHandlers and return promptly. A panic in it closes that
// session only.
func NewServer(opts *Options, onConnection func(*Conn)) *Server {
	s := &Server{conns: make(map[string]*Conn), onConn: onConnection}
	if opts != nil {
		s.opts = *opts
	}
	o := &s.opts
	if o.Path == "" {
		o.Path = defaultPath
	}
	if o.PingInterval <= 0 {
		o.PingInterval = defaultPingInterval
	}
	if o.PingTimeout <= 0 {
		o.PingTimeout = defaultPingTimeout
	}
	if o.UpgradeTimeout <= 0 {
		o.UpgradeTimeout = defaultUpgradeTimeout
	}
	if o.MaxHTTPBufferSize <= 0 {
		o.MaxHTTPBufferSize = defaultMaxHTTPBuffer
	}
	if len(o.Transports) == 0 {
		o.Transports = []string{transportPolling, transportWebsocket}
	} else {
		o.Transports = slices.Clone(o.Transports)
	}
	if o.MaxBufferedBytes <= 0 {
		o.MaxBufferedBytes = defaultMaxBufferedBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ReleaseIdleReaderAfter == 0 {
		o.ReleaseIdleReaderAfter = defaultReleaseIdleReaderAfter
	}
	if d := o.PerMessageDeflate; d != nil {
		dc := *d
		if dc.Threshold <= 0 {
			dc.Threshold = defaultDeflateThreshold
		}
		if dc.Level < 1 || dc.Level > 9 {
			dc.Level = 1
		}
		o.PerMessageDeflate = &dc
	}
	s.log = o.Logger
	if o.ReleaseIdleReaderAfter > 0 {
		s.poller = newPoller(s.log.Warn, o.ReleaseIdleReaderAfter)
	}
	s.polling = slices.Contains(o.Transports, transportPolling)
	s.wsOK = slices.Contains(o.Transports, transportWebsocket)
	if s.wsOK && !o.DisableUpgrades {
		s.upgrades = []string{transportWebsocket}
	} else {
		s.upgrades = []string{}
	}
	s.upgrader = websocket.Upgrader{
		// No ReadBufferSize: gorilla reads through the small bufio.Reader
		// hijackWriter hands it (wsReadBufferSize) instead of net/http's
		// 4 KiB one, which it would keep for the connection's life.
		WriteBufferPool:   &sync.Pool{},
		EnableCompression: o.PerMessageDeflate != nil,
		// Origins are the business of CORS and AllowRequest, as in engine.io.
		CheckOrigin: func(*http.Request) bool { return true },
		Error: func(w http.ResponseWriter, _ *http.Request, status int, _ error) {
			writeError(w, status, errBadRequest)
		},
	}
	return s
}

// wsReadBufferSize is the websocket's read buffer: gorilla takes over a
// hijacked reader only above 256 bytes; larger payloads are read straight
// into the pooled message buffers.
const wsReadBufferSize = 272

// ParkedReaders returns the websockets that hold no reader goroutine now,
// idle for Options.ReleaseIdleReaderAfter.
func (s *Server) ParkedReaders() int {
	if s.poller == nil {
		return 0
	}
	return s.poller.count()
}

// Count returns the number of open sessions.
func (s *Server) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Close closes every session with reason "server shutting down" (websockets
// get what is queued, briefly, then a close frame; a pending long-poll gets
// its queue and a close packet), refuses new requests with 503, and waits
// until every goroutine of the server has ended and every onClose returned.
// If ctx ends first, the remaining connections are dropped and ctx.Err() is
// returned. Close is safe to call more than once.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	conns := make([]*Conn, 0, len(s.conns))
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close("server shutting down", closeShutdown)
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	conns = conns[:0]
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.close("server shutting down", closeImmediate)
	}
	return ctx.Err()
}

// enter registers a request with the WaitGroup unless the server is closed.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// ServeHTTP handles Engine.IO requests: handshakes (GET), long-polls (GET),
// polling data (POST), websocket handshakes and upgrades, and CORS
// preflights. It dispatches on the query (EIO, transport, sid) only.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.enter() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return
	}
	defer s.wg.Done()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("engineio: panic serving request", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	if s.cors(w, r) {
		return
	}
	q := r.URL.Query()
	transport := q.Get("transport")
	if !(transport == transportPolling && s.polling) && !(transport == transportWebsocket && s.wsOK) {
		writeError(w, http.StatusBadRequest, errUnknownTransport)
		return
	}
	isUpgrade := websocket.IsWebSocketUpgrade(r)
	if sid := q.Get("sid"); sid != "" {
		c := s.lookup(sid)
		if c == nil {
			writeError(w, http.StatusBadRequest, errUnknownSID)
			return
		}
		cur := c.Transport()
		switch {
		case transport == transportWebsocket && isUpgrade:
			if cur == transportPolling && s.opts.DisableUpgrades {
				writeError(w, http.StatusBadRequest, errBadRequest)
				return
			}
			s.serveUpgrade(w, r, c)
		case transport != cur || transport != transportPolling:
			writeError(w, http.StatusBadRequest, errBadRequest)
		case r.Method == http.MethodGet:
			c.servePoll(w, r)
		case r.Method == http.MethodPost:
			c.servePost(w, r)
		default:
			writeError(w, http.StatusBadRequest, errBadRequest)
		}
		return
	}
	if r.Method != http.MethodGet {
		writeError(w, http.StatusBadRequest, errBadHandshakeMethod)
		return
	}
	if transport == transportWebsocket && !isUpgrade {
		writeError(w, http.StatusBadRequest, errBadRequest)
		return
	}
	if s.opts.AllowRequest != nil {
		if err := s.opts.AllowRequest(r); err != nil {
			writeError(w, http.StatusForbidden, errForbidden)
			return
		}
	}
	if q.Get("EIO") != "4" {
		writeError(w, http.StatusBadRequest, errUnsupportedProtocol)
		return
	}
	if !s.reserve() {
		http.Error(w, "too many connections", http.StatusServiceUnavailable)
		return
	}
	if transport == transportWebsocket {
		s.handshakeWebsocket(w, r)
		return
	}
	c := s.newConn(r, transportPolling, nil)
	if !s.connected(c) {
		http.Error(w, "internal server error", http.StatusInternalServerError)
		return
	}
	c.servePoll(w, r)
}

func (s *Server) lookup(sid string) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns[sid]
}

// reserve counts a handshake against MaxConnections.
func (s *Server) reserve() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MaxConnections > 0 && len(s.conns)+s.reserved >= s.opts.MaxConnections {
		return false
	}
	s.reserved++
	return true
}

func (s *Server) unreserve() {
	s.mu.Lock()
	s.reserved--
	s.mu.Unlock()
}

func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	if s.conns[c.id] == c {
		delete(s.conns, c.id)
	}
	s.mu.Unlock()
}

// newConn creates and registers a session with its open packet queued and
// its heartbeat running. The caller holds a reservation.
func (s *Server) newConn(r *http.Request, transport string, ws *wsTransport) *Conn {
	c := &Conn{
		srv:       s,
		id:        newSID(),
		req:       newHandshakeInfo(r),
		transport: transport,
		ws:        ws,
	}
	c.ready.Add(1)
	if transport == transportPolling {
		c.wake = make(chan struct{}, 1) // nil for a websocket-only session: nothing waits on it
	}
	upgrades := s.upgrades
	if transport == transportWebsocket {
		upgrades = []string{}
	}
	open, _ := json.Marshal(OpenInfo{
		SID:          c.id,
		Upgrades:     upgrades,
		PingInterval: int(s.opts.PingInterval / time.Millisecond),
		PingTimeout:  int(s.opts.PingTimeout / time.Millisecond),
		MaxPayload:   int(s.opts.MaxHTTPBufferSize),
	})
	s.mu.Lock()
	s.reserved--
	s.conns[c.id] = c
	s.wg.Add(1) // released when onClose has returned
	s.mu.Unlock()

	c.mu.Lock()
	c.pushLocked(Packet{Type: Open, Data: open})
	c.armHeartbeatLocked(s.opts.PingInterval, false)
	c.kickLocked()
	c.mu.Unlock()
	return c
}

// connected runs onConnection; false if it panicked (the session is closed).
// A session created while Close ran is closed once onConnection returned.
func (s *Server) connected(c *Conn) (ok bool) {
	defer func() {
		c.ready.Done()
		s.mu.Lock()
		closed := s.closed
		s.mu.Unlock()
		if closed { // Close may have run before c was registered
			c.close("server shutting down", closeShutdown)
		}
	}()
	if s.onConn == nil {
		return true
	}
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("engineio: panic in onConnection", "sid", c.id, "panic", v, "stack", string(debug.Stack()))
			c.close("transport error", closeImmediate)
			ok = false
		}
	}()
	s.onConn(c)
	return true
}

// cors writes the CORS headers; it returns true when it answered a preflight.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) bool {
	co := s.opts.CORS
	if co == nil {
		return false
	}
	h := w.Header()
	origin := r.Header.Get("Origin")
	allowed := false
	wildcard := slices.Contains(co.Origins, "*")
	if origin != "" {
		allowed = wildcard || slices.Contains(co.Origins, origin)
	}
	switch {
	case wildcard && !co.Credentials:
		h.Set("Access-Control-Allow-Origin", "*")
	case allowed:
		h.Set("Access-Control-Allow-Origin", origin)
		h.Add("Vary", "Origin")
	default:
		h.Add("Vary", "Origin")
	}
	if (allowed || wildcard) && co.Credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if r.Method != http.MethodOptions || r.Header.Get("Access-Control-Request-Method") == "" {
		return false
	}
	if allowed || (wildcard && !co.Credentials) {
		h.Set("Access-Control-Allow-Methods", "GET,POST,OPTIONS")
		if len(co.AllowedHeaders) > 0 {
			h.Set("Access-Control-Allow-Headers", strings.Join(co.AllowedHeaders, ","))
		} else if rh := r.Header.Get("Access-Control-Request-Headers"); rh != "" {
			h.Set("Access-Control-Allow-Headers", rh)
			h.Add("Vary", "Access-Control-Request-Headers")
		}
		if co.MaxAge > 0 {
			h.Set("Access-Control-Max-Age", strconv.Itoa(int(co.MaxAge/time.Second)))
		}
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return true
}

// writeError writes an Engine.IO JSON error.
func writeError(w http.ResponseWriter, status, code int) {
	msg := "Bad request"
	if code >= 0 && code < len(errorMessages) {
		msg = errorMessages[code]
	}
	body := fmt.Sprintf(`{"code":%d,"message":%q}`, code, msg)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(body))
}

// newSID returns 20 random URL-safe characters (120 bits), like engine.io's base64id.
func newSID() string {
	var b [15]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(errors.New("engineio: crypto/rand failed: " + err.Error()))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}
